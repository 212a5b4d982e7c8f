"""Beyond one process, with real processes on localhost: a real MLflow tracking server (sweeps,
artifacts, eval by run id), data-parallel training on CPU (DDP with gloo), jobs in processes
of their own (submitit), Optuna tuning."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from helpers import TINY, client, error_line, free_port, hqexp, wait_until_up


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp}/m.db",
            "--artifacts-destination",
            str(tmp / "artifacts"),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(uri, proc)
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_sweep_records_parent_children_and_artifacts_on_a_server(tmp_path, server):
    from mlflow.tracking import MlflowClient

    hqexp(
        [
            "sweep",
            "seed=1,2",
            "model=mlp_classifier",
            "dataset=iris",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            f"mlflow.tracking_uri={server}",
            "mlflow.experiment_name=team",
        ],
        tmp_path,
    )
    c = MlflowClient(server)
    exp = c.get_experiment_by_name("team")
    found = c.search_runs([exp.experiment_id])
    (parent,) = [r for r in found if r.data.tags["hqexp.command"] == "sweep"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and all(r.info.status == "FINISHED" for r in children)
    assert parent.info.status == "FINISHED"
    for r in children:
        arts = {a.path for a in c.list_artifacts(r.info.run_id, "plots")}
        assert "plots/loss.png" in arts and c.list_artifacts(r.info.run_id, "checkpoints")
    # another machine needs only the run id and the server
    hqexp(
        [
            "eval",
            f"run_id={children[0].info.run_id}",
            f"mlflow.tracking_uri={server}",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    ev = [r for r in c.search_runs([exp.experiment_id]) if r.data.tags["hqexp.command"] == "eval"]
    assert len(ev) == 1 and ev[0].data.tags["source_run_id"] == children[0].info.run_id
    assert ev[0].data.metrics["test/acc"] == pytest.approx(children[0].data.metrics["test/acc"], abs=1e-6)
    out = hqexp(["eval", "run_id=nope", f"mlflow.tracking_uri={server}"], tmp_path, check=False)
    assert out.returncode == 2 and "run_id 'nope': no such run" in out.stderr


def test_a_crafted_checkpoint_on_the_server_runs_no_code_where_it_is_evaluated(tmp_path, server):
    """Anyone who can write an artifact to the team's server could plant a checkpoint; every machine
    that evaluates it by run id reads it as data and refuses it."""
    from mlflow.tracking import MlflowClient
    from test_safeload import craft

    c = MlflowClient(server)
    exp = c.get_experiment_by_name("planted") or c.get_experiment(c.create_experiment("planted"))
    run = c.create_run(exp.experiment_id)
    marker = tmp_path / "ran"
    c.log_artifact(run.info.run_id, str(craft(tmp_path / "best.ckpt", marker)), "checkpoints")
    c.set_terminated(run.info.run_id)
    out = hqexp(["eval", f"run_id={run.info.run_id}", f"mlflow.tracking_uri={server}"], tmp_path, check=False)
    assert out.returncode == 2 and not marker.exists()
    line = error_line(out)
    assert "holds posix.system" in line and "refused, nothing in it was run" in line


def test_ddp_on_cpu_is_one_process_with_the_global_batch_and_records_once(tmp_path):
    """Two gloo processes, 16 rows each, against one process on 32: every step sees the same rows
    (batches dealt round-robin from one epoch order) and the gradients, quantum ones included, are
    all-reduced, so the losses, gradient norms and test metrics agree. (The iris split here is
    96/24/30 rows, divisible by the global batch; otherwise DDP pads the last batch.)"""
    common = [
        "model=vqc_classifier",
        "dataset=iris",
        "dataset.val_fraction=0.16",
        "scheduler=none",
        "trainer.max_epochs=2",
        "callbacks.early_stopping.enabled=false",
        "trainer.enable_progress_bar=false",
        "seed=2",
    ]
    hqexp(["train", *common, "dataset.batch_size=32", "mlflow.experiment_name=single"], tmp_path)
    hqexp(["train", *common, "hardware=ddp_cpu", "dataset.batch_size=16", "mlflow.experiment_name=ddp"], tmp_path)

    c = client(tmp_path)
    (single,) = c.search_runs([c.get_experiment_by_name("single").experiment_id])
    ddp = c.search_runs([c.get_experiment_by_name("ddp").experiment_id])
    assert len(ddp) == 1 and ddp[0].info.status == "FINISHED"  # rank 0 records; rank 1 does not
    (ddp,) = ddp
    assert ddp.data.tags["hardware"] == "ddp_cpu"
    for key in ("train/loss", "val/loss", "grad_norm/quantum", "grad_norm/total"):
        a = [h.value for h in c.get_metric_history(single.info.run_id, key)]
        b = [h.value for h in c.get_metric_history(ddp.info.run_id, key)]
        assert len(a) == len(b) > 1 and b == pytest.approx(a, rel=1e-4, abs=1e-6), key
    tests = {k: v for k, v in single.data.metrics.items() if k.startswith("test/")}
    assert {k: ddp.data.metrics[k] for k in tests} == pytest.approx(tests, rel=1e-4, abs=1e-6)


def test_ddp_refuses_what_it_cannot_run(tmp_path):
    out = hqexp(["train", "hardware=ddp_cpu", "federation=sl", "dataset=iris"], tmp_path, check=False)
    assert out.returncode == 2 and "federation=sl runs its own engine" in out.stderr
    out = hqexp(["train", "hardware=ddp_cpu", "cv.folds=3", "dataset=iris"], tmp_path, check=False)
    assert out.returncode == 2 and "cv.fold=i" in out.stderr
    out = hqexp(["sweep", "hardware=ddp_cpu", "seed=1,2", "dataset=iris"], tmp_path, check=False)
    assert "inside a local multirun" in out.stdout + out.stderr


def test_tuning_with_optuna_scores_trials_on_validation(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep_dir = tmp_path / "tune"
    hqexp(
        [
            "sweep",
            "sweep=tune",
            "hydra.sweeper.n_trials=3",
            "model=mlp_classifier",
            "dataset=iris",
            *TINY,
            f"hydra.sweep.dir={sweep_dir}",
        ],
        tmp_path,
    )
    c = client(tmp_path)
    found = c.search_runs([c.get_experiment_by_name("tune").experiment_id])
    (parent,) = [r for r in found if r.data.tags["hqexp.command"] == "sweep"]
    trials = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 3 and len({r.data.params["optim.lr"] for r in trials}) == 3
    best = min(r.data.metrics["val/best"] for r in trials)  # direction: minimize val/loss
    assert parent.data.metrics["sweep/best_value"] == pytest.approx(best, rel=1e-6)
    winner = [r for r in trials if r.data.metrics["val/best"] == pytest.approx(best, rel=1e-6)][0]
    assert float(parent.data.tags["sweep.best.optim.lr"]) == pytest.approx(float(winner.data.params["optim.lr"]))


def _sweep_jobs(tmp_path, experiment: str):
    c = client(tmp_path)
    found = c.search_runs([c.get_experiment_by_name(experiment).experiment_id])
    (parent,) = [r for r in found if r.data.tags["hqexp.command"] == "sweep"]
    return parent, [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def test_a_submitit_sweep_runs_each_job_in_its_own_process_under_one_parent(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    hqexp(
        [
            "sweep",
            "hydra/launcher=submitit_local",
            "seed=1,2",
            "model=mlp_classifier",
            "dataset=iris",
            *TINY,
            "mlflow.experiment_name=sub",
        ],
        tmp_path,
    )
    parent, jobs = _sweep_jobs(tmp_path, "sub")
    assert len(jobs) == 2 and all(r.info.status == "FINISHED" for r in jobs)
    pids = {r.data.tags["hqexp.pid"] for r in jobs} | {parent.data.tags["hqexp.pid"]}
    assert len(pids) == 3  # the parent and each job in a process of its own


def test_a_ray_sweep_runs_four_jobs_on_two_workers_under_one_parent(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install 'hqexp[ray]'")
    hqexp(
        [
            "sweep",
            "hydra/launcher=ray",
            "hydra.launcher.ray.init.address=local",
            "+hydra.launcher.ray.init.num_cpus=2",
            "seed=1,2,3,4",
            "model=mlp_classifier",
            "dataset=iris",
            *TINY,
            "mlflow.experiment_name=ray",
        ],
        tmp_path,
        timeout=600,
    )
    parent, jobs = _sweep_jobs(tmp_path, "ray")
    assert len(jobs) == 4 and all(r.info.status == "FINISHED" for r in jobs) and parent.info.status == "FINISHED"
    workers = {r.data.tags["hqexp.pid"] for r in jobs}
    assert 1 <= len(workers) <= 2 and parent.data.tags["hqexp.pid"] not in workers


def test_a_ray_sweep_on_a_running_cluster_records_into_the_sweeps_store(tmp_path):
    """`ray start --head` as its own process; its workers know nothing of this store."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install 'hqexp[ray]'")
    import os
    import signal
    import tempfile
    from pathlib import Path

    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short (socket paths) and private (no other ray.init finds it)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            "--num-cpus",
            "2",
            "--port",
            str(port),
            "--temp-dir",
            temp,
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 90
        while not socket.socket().connect_ex(("127.0.0.1", port)) == 0:
            assert time.time() < deadline and head.poll() is None, "ray head did not start"
            time.sleep(0.5)
        os.environ["RAY_ADDRESS"] = f"127.0.0.1:{port}"
        try:
            hqexp(
                [
                    "sweep",
                    "hydra/launcher=ray_cluster",
                    "seed=1,2,3,4",
                    "model=mlp_classifier",
                    "dataset=iris",
                    *TINY,
                    "mlflow.experiment_name=cluster",
                ],
                tmp_path,
                timeout=600,
            )
        finally:
            del os.environ["RAY_ADDRESS"]
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
    parent, jobs = _sweep_jobs(tmp_path, "cluster")
    assert len(jobs) == 4 and all(r.info.status == "FINISHED" for r in jobs)


@pytest.fixture
def flaky(server):
    """A proxy in front of the server that answers every third request with 503."""
    import http.server
    import threading
    import urllib.error

    seen = {"n": 0, "failed": 0}

    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen["n"] += 1
            if seen["n"] % 3 == 0:
                seen["failed"] += 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            req = urllib.request.Request(server + self.path, data=body or None, headers=headers, method=self.command)
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    status, payload, rh = r.status, r.read(), r.headers
            except urllib.error.HTTPError as e:
                status, payload, rh = e.code, e.read(), e.headers
            self.send_response(status)
            for k, v in rh.items():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, *args) -> None:
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{proxy.server_address[1]}", seen
    proxy.shutdown()


def test_transient_server_errors_are_retried_and_the_run_is_whole(tmp_path, flaky):
    from mlflow.tracking import MlflowClient

    uri, seen = flaky
    hqexp(
        [
            "train",
            "model=mlp_classifier",
            "dataset=iris",
            *TINY,
            f"mlflow.tracking_uri={uri}",
            "mlflow.experiment_name=flaky",
        ],
        tmp_path,
        timeout=600,
    )
    assert seen["failed"] >= 5  # the run really met errors
    c = MlflowClient(uri)
    (run,) = c.search_runs([c.get_experiment_by_name("flaky").experiment_id])
    assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
    assert c.list_artifacts(run.info.run_id, "checkpoints") and c.list_artifacts(run.info.run_id, "plots")
