"""federation.engine=flower: the protocols on Flower's simulation engine (virtual SuperNodes
as Ray actors) equal the in-process engine — every metric and every byte of the ledger —
and what the Flower engine does not run is refused with one line."""

from __future__ import annotations

import pytest
from helpers import artifacts, client, error_line, free_port, hqexp, runs

pytest.importorskip("flwr", reason="Flower is not installed (pip install 'hqexp[fed]')")

BASE = ["dataset=iris", "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "federation.n_clients=3"]
VQC = ["model=vqc_classifier", *BASE]
CONV = ["model=split_conv1d", *BASE, "model.quantum.n_qubits=2", "model.channels=[4,8]"]  # BatchNorm on clients


def _both(tmp_path, args: list[str]) -> dict:
    for engine in ("inprocess", "flower"):
        hqexp(["train", *args, f"federation.engine={engine}"], tmp_path / engine, timeout=600)
    return {engine: runs(tmp_path / engine)[0] for engine in ("inprocess", "flower")}


def _ledger(tmp, run) -> str:
    path = client(tmp).download_artifacts(run.info.run_id, "comm/ledger.csv", str(tmp))
    return open(path).read()


@pytest.mark.parametrize(
    "args",
    [[*VQC, "federation=fl"], [*VQC, "federation=sflv2"], [*CONV, "federation=sflv1"]],
    ids=["fl", "sflv2", "sflv1-conv1d"],
)
def test_simulation_equals_the_inprocess_engine(tmp_path, args):
    got = _both(tmp_path, args)
    a, b = got["inprocess"], got["flower"]
    assert b.info.status == "FINISHED" and b.data.tags["federation.engine"] == "flower"
    ma, mb = a.data.metrics, b.data.metrics
    assert set(ma) == set(mb)
    compared = [k for k in ma if not k.startswith(("time/", "latency/"))]
    assert any(k.startswith("grad_norm/") for k in compared) and "test/loss" in compared
    # Clients run single-threaded in Ray actors: float sums in another order, so agreement is to
    # rounding; the privacy attacks train models of their own on top and amplify it.
    for k in compared:
        tol = 2e-2 if k.startswith("privacy/") else 1e-4
        assert mb[k] == pytest.approx(ma[k], rel=tol, abs=1e-5), k
    for k in (k for k in compared if k.startswith("comm/") and k.endswith("_bytes")):
        assert mb[k] == ma[k], k
    # the ledger, row by row (round, client, direction, kind: bytes and messages)
    assert _ledger(tmp_path / "flower", b) == _ledger(tmp_path / "inprocess", a)
    assert {"checkpoints/best.ckpt", "plots/f1_vs_round.png"} <= artifacts(tmp_path / "flower", b.info.run_id)


@pytest.mark.parametrize(
    "args, message",
    [
        (["federation=sl"], "runs federation=fl|sflv1|sflv2"),
        (["federation=sflv1", "privacy.noise_std=0.1"], "client-side defences"),
        (["federation=sflv1", "+federation.flower.bogus=1"], "unknown federation.flower key"),
        (["federation=sflv1", "federation.flower.superlink=nowhere"], "must be host:port"),
        (["federation=fl", "federation.flower.timeout_s=0"], "timeout_s must be > 0"),
        (["federation=none"], "federation=none trains centrally"),
        (
            ["federation=fl", "federation.flower.superlink=127.0.0.1:1", "federation.flower.insecure=true"],
            "Connection to the SuperLink is unavailable",
        ),
        (["federation=fl", "federation.flower.insecure=maybe"], "insecure must be true or false"),
        (["federation=fl", "federation.flower.root_certificates=/no/ca.crt"], "is not a file"),
    ],
)
def test_what_flower_does_not_run_is_one_line(tmp_path, args, message):
    out = hqexp(["train", *VQC, *args, "federation.engine=flower"], tmp_path, check=False)
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in error_line(out), out.stderr[-2000:]
    assert all(r.info.status != "RUNNING" for r in runs(tmp_path))


# ------------------------------------------------------------------ the Deployment Engine
def _federation(tmp, tls: bool):
    """A SuperLink and two SuperNodes (partition-id 0 and 1), each its own OS process; with
    ``tls``: HTTPS from a test CA (scripts/flower_certs.py) and only registered SuperNodes
    admitted (``--enable-supernode-auth``, their keys registered with ``flwr supernode register``).
    Yields ``(address, start, certs)``."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    bindir = Path(sys.executable).parent
    port, procs, certs = free_port(), [], tmp / "certs"

    def start(name: str, args: list[str]) -> subprocess.Popen:
        home = tmp / name
        home.mkdir(exist_ok=True)
        log = open(tmp / f"{name}.log", "w")
        env = {**os.environ, "FLWR_HOME": str(home), "PATH": f"{bindir}:{os.environ['PATH']}"}  # its helpers
        procs.append(
            subprocess.Popen(
                [str(bindir / args[0]), *args[1:]],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        return procs[-1]

    if tls:
        root = Path(__file__).resolve().parents[1]
        subprocess.run(
            [sys.executable, str(root / "scripts" / "flower_certs.py"), "--out", str(certs), "--supernodes", "3"],
            check=True,
            capture_output=True,
        )
        link = ["--ssl-ca-certfile", f"{certs}/ca.crt", "--ssl-certfile", f"{certs}/server.pem"]
        link += ["--ssl-keyfile", f"{certs}/server.key", "--enable-supernode-auth"]
    else:
        link = ["--insecure"]
    start("link", ["flower-superlink", *link, "--port", str(port), "--disable-runtime-dependency-installation"])
    scheme = "https" if tls else "http"
    ctx = __import__("ssl").create_default_context(cafile=str(certs / "ca.crt")) if tls else None
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/", timeout=1, context=ctx)
            break
        except urllib.error.HTTPError:
            break  # it answers
        except OSError:
            assert time.time() < deadline and procs[0].poll() is None, (tmp / "link.log").read_text()[-2000:]
            time.sleep(0.3)
    if tls:  # the SuperLink admits only these two
        cli = tmp / "cli"
        cli.mkdir()
        (cli / "config.toml").write_text(
            f'[superlink]\ndefault = "t"\n\n[superlink.t]\naddress = "127.0.0.1:{port}"\n'
            f'root-certificates = "{certs}/ca.crt"\n'
        )
        for k in (0, 1):
            subprocess.run(
                [str(bindir / "flwr"), "supernode", "register", f"{certs}/supernode_{k}.pub", "t"],
                env={**os.environ, "FLWR_HOME": str(cli)},
                check=True,
                capture_output=True,
                timeout=120,
            )
    for k in (0, 1):
        auth = ["--root-certificates", f"{certs}/ca.crt", "--auth-supernode-private-key", f"{certs}/supernode_{k}"]
        node = ["flower-supernode", *(auth if tls else ["--insecure"]), "--superlink", f"127.0.0.1:{port}"]
        start(f"node{k}", [*node, "--port", str(free_port()), "--node-config", f"partition-id={k}"])
    yield f"127.0.0.1:{port}", start, certs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        p.wait(timeout=30)


@pytest.fixture(scope="module")
def superlink(tmp_path_factory):
    """A plain-HTTP federation (``federation.flower.insecure=true``)."""
    gen = _federation(tmp_path_factory.mktemp("flower"), tls=False)
    address, _, _ = next(gen)
    yield address
    next(gen, None)  # the processes end


@pytest.fixture(scope="module")
def tls_superlink(tmp_path_factory):
    """A federation over TLS with authenticated SuperNodes: ``(address, start, certs)``."""
    yield from _federation(tmp_path_factory.mktemp("flower_tls"), tls=True)


def _deployed_equals_inprocess(tmp_path, args: list[str], link: list[str]) -> None:
    args = [*args, "federation.n_clients=2"]
    out = hqexp(
        ["train", *args, "federation.engine=flower", *link, "federation.flower.timeout_s=300"],
        tmp_path / "flower",
        timeout=900,
    )
    assert "hqexp train (" in out.stdout
    hqexp(["train", *args], tmp_path / "inprocess")
    (a,), (b,) = runs(tmp_path / "inprocess"), runs(tmp_path / "flower")
    assert b.info.status == "FINISHED" and b.data.tags["federation.engine"] == "flower"
    for k, v in a.data.metrics.items():
        if not k.startswith(("time/", "latency/")):
            tol = 2e-2 if k.startswith("privacy/") else 1e-4
            assert b.data.metrics[k] == pytest.approx(v, rel=tol, abs=1e-5), k
    assert _ledger(tmp_path / "flower", b) == _ledger(tmp_path / "inprocess", a)


@pytest.mark.parametrize(
    "args",
    [[*VQC, "federation=fl"], [*VQC, "federation=sflv1", "trainer.max_epochs=1", "dataset.batch_size=64"]],
    ids=["fl", "sflv1"],
)
def test_deployment_engine_equals_the_inprocess_engine(tmp_path, superlink, args):
    link = [f"federation.flower.superlink={superlink}", "federation.flower.insecure=true"]
    _deployed_equals_inprocess(tmp_path, args, link)


def test_a_tls_federation_equals_the_inprocess_run_and_admits_only_registered_supernodes(tmp_path, tls_superlink):
    address, start, certs = tls_superlink
    link = [f"federation.flower.superlink={address}", f"federation.flower.root_certificates={certs}/ca.crt"]
    _deployed_equals_inprocess(tmp_path, [*VQC, "federation=fl"], link)
    # a SuperNode whose key was never registered is turned away
    stranger = start(
        "stranger",
        [
            "flower-supernode",
            "--root-certificates",
            f"{certs}/ca.crt",
            "--auth-supernode-private-key",
            f"{certs}/supernode_2",
            "--superlink",
            address,
            "--port",
            str(free_port()),
            "--max-retries",
            "1",
            "--node-config",
            "partition-id=1",
        ],
    )
    assert stranger.wait(timeout=120) != 0
    log = (certs.parent / "stranger.log").read_text()
    assert "Failed to activate SuperNode" in log, log[-2000:]
    # TLS is the default: the same SuperLink without the CA, or a client that insists on plain HTTP, fails in one line
    for extra, said in [
        ([], "over TLS: federation.flower.root_certificates must be the CA"),
        (["federation.flower.insecure=true"], "over plain HTTP"),
    ]:
        out = hqexp(
            [
                "train",
                *VQC,
                "federation=fl",
                "federation.engine=flower",
                f"federation.flower.superlink={address}",
                *extra,
            ],
            tmp_path / "refused",
            check=False,
        )
        assert out.returncode == 2 and said in error_line(out), out.stderr[-2000:]


def test_ctrl_c_during_a_simulation_ends_the_run_killed_and_the_process(tmp_path):
    import os
    import signal
    import subprocess

    from helpers import HQEXP

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [
            *HQEXP,
            "train",
            *VQC,
            "federation=sflv1",
            "federation.engine=flower",
            "trainer.max_epochs=100000",
            f"hydra.run.dir={tmp_path}/run",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in proc.stdout:  # wait until rounds are under way
            if line.startswith("round 2/"):
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 130  # not left waiting in Flower's server thread
    finally:
        if proc.poll() is None:
            proc.kill()
    (run,) = runs(tmp_path)
    assert run.info.status == "KILLED" and "SIGINT" in run.data.tags["hqexp.error"]
