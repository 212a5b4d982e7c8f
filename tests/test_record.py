"""A record that never lies: eval overrides take effect, every signal ends every open run
with a truthful status and exit code, stale runs are found and closed, every run has its own
folder, resume reproduces the uninterrupted run, and bad input is one line — real processes,
a real MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from helpers import HQEXP, TINY, client, hqexp, runs

from hqexp.errors import ConfigError, DataError


def _env(tmp: Path, **extra) -> dict:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
        "PYTHONWARNINGS": "ignore",
        "HQEXP_OUTPUT_DIR": str(tmp / "outputs"),
        **extra,
    }


def _start(tmp: Path, args: list[str], **env) -> subprocess.Popen:
    return subprocess.Popen(
        [*HQEXP, *args], env=_env(tmp, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for(proc: subprocess.Popen, cond, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def _has_run(tmp: Path, status: str = "RUNNING", metric: str | None = None) -> bool:
    if not (tmp / "mlflow.db").exists():
        return False
    try:
        found = runs(tmp, f"attributes.status = '{status}'")
    except Exception:  # the store is being created
        return False
    return any(metric is None or metric in r.data.metrics for r in found)


LONG = ["trainer.max_epochs=100000", "callbacks.early_stopping.enabled=false", "trainer.enable_progress_bar=false"]


# ------------------------------------------------------------------ 1. eval overrides take effect
def test_eval_honours_every_override_and_the_checkpoint_experiment(tmp_path):
    hqexp(["train", *TINY, "mlflow.experiment_name=ecg_like"], tmp_path)
    (run,) = runs(tmp_path)
    ckpt = next(Path(run.data.tags["hqexp.output_dir"], "checkpoints").glob("best-*.ckpt"))
    hqexp(["eval", f"ckpt_path={ckpt}", "backend=default_qubit", "trainer.enable_progress_bar=false"], tmp_path)
    ev = next(r for r in runs(tmp_path) if r.data.tags["hqexp.command"] == "eval")
    assert ev.data.tags["backend"] == ev.data.tags["backend_used"] == "default_qubit"  # not torch in disguise
    assert ev.info.experiment_id == run.info.experiment_id  # the checkpoint's experiment
    assert ev.data.metrics["test/acc"] == pytest.approx(run.data.metrics["test/acc"], abs=1e-6)  # exact backends
    out = hqexp(["eval", f"ckpt_path={ckpt}", "model.hidden=8"], tmp_path, check=False)
    assert (
        out.returncode == 2
        and "does not fit the model: shape (checkpoint vs model): model.encoder.0.bias [16] vs [8]" in out.stderr
    )


# ------------------------------------------------------------------ 2. signals and stale runs
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_during_fit_ends_the_run_killed_with_its_name(tmp_path, sig, code):
    proc = _start(tmp_path, ["train", *LONG, f"hydra.run.dir={tmp_path}/run"])
    try:
        _wait_for(proc, lambda: any((tmp_path / "run" / "checkpoints").glob("*.ckpt")))
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    out = proc.stdout.read()
    assert proc.returncode == code, out[-2000:]
    (run,) = runs(tmp_path)
    assert run.info.status == "KILLED" and run.data.tags["hqexp.error"] == f"interrupted by {sig.name}"
    assert "Traceback" not in out


def test_an_interrupt_in_any_phase_closes_every_open_run(tmp_path, monkeypatch):
    """The guard itself: whatever raised Interrupted (setup, fit, test, artifacts), every run
    the job opened ends KILLED with the signal named, and the exit code is 128 + signal."""
    from omegaconf import OmegaConf

    from hqexp import entrypoints
    from hqexp.interrupts import Interrupted
    from hqexp.tracking.store import Recorder

    mcfg = {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment_name": "x", "create_dirs": True}
    cfg = OmegaConf.create({"mlflow": mcfg})

    def work(_cfg):
        Recorder.start(mcfg, run_name="parent")
        Recorder.start(mcfg, run_name="child")
        raise Interrupted(signal.SIGTERM)  # e.g. while plots are being written

    with pytest.raises(SystemExit) as exc:
        entrypoints._guard(work, cfg)
    assert exc.value.code == 143
    found = runs(tmp_path)
    assert len(found) == 2 and all(r.info.status == "KILLED" for r in found)
    assert {r.data.tags["hqexp.error"] for r in found} == {"interrupted by SIGTERM"}


def test_ctrl_c_on_a_sequential_sweep_ends_parent_and_child(tmp_path):
    proc = _start(tmp_path, ["sweep", *LONG, "seed=1,2", f"hydra.sweep.dir={tmp_path}/sweep"])
    try:
        _wait_for(proc, lambda: _has_run(tmp_path, metric="train/loss"))
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    found = runs(tmp_path)
    assert {r.info.status for r in found} == {"KILLED"} and len(found) == 2  # parent + the running child


def test_sigterm_to_a_joblib_sweep_leaves_nothing_running(tmp_path):
    proc = _start(
        tmp_path,
        [
            "sweep",
            *LONG,
            "seed=1,2",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
    )
    try:
        _wait_for(
            proc,
            lambda: (
                sum(1 for r in runs(tmp_path, "attributes.status = 'RUNNING'") if "train/loss" in r.data.metrics) >= 2
                if _has_run(tmp_path)
                else False
            ),
            timeout=180,
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 143
    time.sleep(1)
    found = runs(tmp_path)
    assert len(found) == 3 and all(r.info.status == "KILLED" for r in found), [r.info.status for r in found]


def test_a_sigkilled_run_is_found_stale_and_closed(tmp_path):
    proc = _start(tmp_path, ["train", *LONG, f"hydra.run.dir={tmp_path}/run"])
    try:
        _wait_for(proc, lambda: _has_run(tmp_path, metric="train/loss"))
    finally:
        proc.kill()  # SIGKILL: nothing in the process can react
    proc.wait()
    (run,) = runs(tmp_path)
    assert run.info.status == "RUNNING" and run.data.tags["hqexp.pid"] == str(proc.pid)
    out = hqexp(["runs", "stale"], tmp_path)
    assert run.info.run_id in out.stdout and f"process {proc.pid}" in out.stdout and "is gone" in out.stdout
    assert runs(tmp_path)[0].info.status == "RUNNING"  # listing changes nothing
    hqexp(["runs", "close-stale"], tmp_path)
    (closed,) = runs(tmp_path)
    assert closed.info.status == "KILLED" and "closed by hqexp runs close-stale" in closed.data.tags["hqexp.error"]


def test_staleness_from_another_host_is_the_heartbeat():
    from hqexp.runs import why_stale

    now = 10_000.0
    assert why_stale({"hqexp.host": "elsewhere", "hqexp.heartbeat": str(now - 30)}, 0, 600, now) is None
    assert "no heartbeat for 20 min" in why_stale(
        {"hqexp.host": "elsewhere", "hqexp.heartbeat": str(now - 1200)}, 0, 600, now
    )


# ------------------------------------------------------------------ 3. one folder per run
def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    args = ["train", "model=mlp_classifier", "dataset=iris", *TINY]
    procs = [_start(tmp_path, args) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stdout.read()[-2000:]
    a, b = runs(tmp_path)
    da, db = Path(a.data.tags["hqexp.output_dir"]), Path(b.data.tags["hqexp.output_dir"])
    assert da != db and (da / ".hydra").is_dir() and (db / ".hydra").is_dir()
    assert not [p for p in (da / "checkpoints").iterdir() if "-v1" in p.name]


# ------------------------------------------------------------------ 4. resume
def test_an_interrupted_run_resumed_reproduces_the_uninterrupted_one(tmp_path):
    base = [
        "train",
        "model=mlp_classifier",
        "dataset=wine",
        "trainer.max_epochs=12",
        "callbacks.early_stopping.enabled=false",
        "trainer.enable_progress_bar=false",
        "seed=3",
    ]
    hqexp([*base, f"hydra.run.dir={tmp_path}/a"], tmp_path)
    proc = _start(tmp_path, [*base, f"hydra.run.dir={tmp_path}/b"])
    last = tmp_path / "b" / "checkpoints" / "last.ckpt"

    def past_epoch_3() -> bool:
        try:
            return torch.load(last, weights_only=True)["epoch"] >= 3
        except Exception:
            return False

    try:
        _wait_for(proc, past_epoch_3)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    stopped = torch.load(last, weights_only=True)["epoch"]
    assert proc.returncode == 130 and stopped < 11
    hqexp([*base, f"ckpt_path={last}", f"hydra.run.dir={tmp_path}/c"], tmp_path)
    a = torch.load(tmp_path / "a/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    c = torch.load(tmp_path / "c/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], c[k]) for k in a)  # bit for bit
    resumed = next(r for r in runs(tmp_path) if r.data.tags.get("resumed_from"))
    import pandas as pd

    rows = pd.read_csv(client(tmp_path).download_artifacts(resumed.info.run_id, "logs/epochs.csv", str(tmp_path)))
    assert list(rows.epoch) == list(range(stopped + 1, 12))  # the epoch table goes on where it stopped
    summary = pd.read_csv(
        client(tmp_path).download_artifacts(resumed.info.run_id, "summary/run_summary.csv", str(tmp_path))
    )
    assert int(summary.epochs[0]) == 12 == int(resumed.data.metrics["time/epochs"])
    done = hqexp([*base, f"ckpt_path={tmp_path}/a/checkpoints/last.ckpt"], tmp_path, check=False)
    assert (
        done.returncode == 2
        and "has already trained 12 epoch(s), and trainer.max_epochs=12: nothing to resume" in done.stderr
    )
    more = hqexp(
        [*base[:4], "trainer.max_epochs=14", *base[5:], f"ckpt_path={tmp_path}/a/checkpoints/last.ckpt"], tmp_path
    )
    assert "resume_schedule=stretch stretches it to 14 epochs" in more.stdout


# ------------------------------------------------------------------ 5. one line for every bad input
@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["callbacks.checkpoint.monitor=val/nope", "trainer.max_epochs=1"],
            "callbacks.checkpoint.monitor=val/nope is not a metric this run logs; "
            "choose one of: lr, train/loss, val/acc",
        ),
        (
            ["+trainer.max_epoch=2"],
            "trainer.max_epoch is not a lightning.Trainer argument; did you mean trainer.max_epochs?",
        ),
        (["trainer.max_epoch=2"], "unknown config key 'trainer.max_epoch'; did you mean 'trainer.max_epochs'?"),
        (["foo=1"], "unknown config key 'foo'"),
        (
            ["model.quantum.n_qubits=26", "backend=default_qubit"],
            "default_qubit backend: 26 qubits x batch 32 needs about",
        ),
        (["mlflow.tracking_uri=sqlite:////nonexistent/dir/x.db"], "folder /nonexistent/dir does not exist"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    out = hqexp(["train", *args], tmp_path, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("hqexp: error:")]
    assert len(lines) == 1 and message in lines[0], out.stderr[-2000:]
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize(
    "content,match",
    [
        (b'date,expiry,strike\n"2024-01-02,2024,1\n', "cannot be parsed"),
        (b"", "is empty"),
        (b"\x00\x01\x02binary", "is binary, not text"),
    ],
)
def test_unparseable_csv_files_are_one_line(tmp_path, content, match):
    from hqexp.data.finance import read_prices
    from hqexp.data.options import read_option_chain

    f = tmp_path / "x.csv"
    f.write_bytes(content)
    for reader in (read_option_chain, read_prices):
        with pytest.raises(DataError, match=match):
            reader(f)
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_prices(tmp_path)


def test_malformed_ptbxl_tables_are_one_line(tmp_path):
    from hqexp.data.ecg_sources import ptbxl_labels

    (tmp_path / "ptbxl_database.csv").write_text(
        "ecg_id,scp_codes,strat_fold,filename_lr,filename_hr\n1,\"{'NORM': 100.0\",1,a,b\n"
    )
    (tmp_path / "scp_statements.csv").write_text(",diagnostic,diagnostic_class\nNORM,1,NORM\n")
    with pytest.raises(DataError, match=r"ecg_id 1: scp_codes \"\{'NORM': 100.0\" is not a dict"):
        ptbxl_labels(tmp_path)
    (tmp_path / "ptbxl_database.csv").write_bytes(b'ecg_id,"scp_codes\n1,2\n')
    with pytest.raises(DataError, match="cannot be parsed"):
        ptbxl_labels(tmp_path)


# ------------------------------------------------------------------ 6-8. the store
def test_an_unreachable_tracking_server_fails_fast_in_one_line(tmp_path):
    t0 = time.time()
    out = hqexp(
        ["train", "mlflow.tracking_uri=http://127.0.0.1:9", "mlflow.connect_timeout_s=2"], tmp_path, check=False
    )
    assert time.time() - t0 < 60 and out.returncode == 2
    assert "cannot reach the MLflow tracking server http://127.0.0.1:9 within 2 s" in out.stderr


def test_artifacts_go_beside_the_store_not_into_the_project(tmp_path):
    project = tmp_path / "project"
    env = _env(tmp_path, HQEXP_ROOT=str(project))
    env.pop("HQEXP_OUTPUT_DIR")
    out = subprocess.run(
        [*HQEXP, "train", *TINY, "model=mlp_classifier", "dataset=iris", f"hydra.run.dir={tmp_path}/run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = runs(tmp_path)
    assert run.info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())
    assert not (project / "outputs" / "mlartifacts").exists()


def test_a_store_folder_outside_outputs_is_created_only_when_asked(tmp_path):
    from hqexp.tracking.store import open_store

    uri = f"sqlite:///{tmp_path}/new/dir/m.db"
    with pytest.raises(ConfigError, match="does not exist .*mlflow.create_dirs=true"):
        open_store(uri, "x")
    open_store(uri, "x", create_dirs=True)
    assert (tmp_path / "new" / "dir" / "m.db").exists()


# ------------------------------------------------------------------ 9-10. what a person sees
def test_output_to_a_pipe_is_one_line_per_epoch_and_names_hqexp(tmp_path):
    out = hqexp(["train", "trainer.max_epochs=3", "dataset=iris"], tmp_path)
    text = out.stdout + out.stderr
    assert "\r" not in text and len(text) < 20_000  # no progress-bar redraws into a pipe
    assert sum(ln.startswith("epoch ") for ln in out.stdout.splitlines()) == 3 and "Lat: " in out.stdout
    (run,) = runs(tmp_path)
    c = client(tmp_path)
    assert len(c.get_metric_history(run.info.run_id, "test/acc")) == 1  # logged once
    help_text = hqexp(["train", "--help"], tmp_path).stdout
    assert "entrypoints" not in help_text and "hqexp" in help_text
    run_dir = Path(run.data.tags["hqexp.output_dir"])
    assert (run_dir / "hqexp.log").exists() and not (run_dir / "entrypoints.log").exists()


def test_long_commands_show_progress(tmp_path):
    out = hqexp(
        ["bench", "backends", "grid=[[3,1,4],[4,1,4]]", "repeats=1", "warmup=1", "backends=[torch,default_qubit]"],
        tmp_path,
    )
    assert "[1/4] n=3 L=1 B=4 torch ..." in out.stdout and "[4/4] n=4 L=1 B=4 default_qubit" in out.stdout
    out = hqexp(
        [
            "diagnose",
            "qubits=[2,3]",
            "depths=[2]",
            "samples=10",
            "bootstrap=5",
            "expressibility.pairs=20",
            "entanglement.samples=10",
            "log_to_mlflow=false",
        ],
        tmp_path,
    )
    assert "[1/2] depth 2, 2 qubits (2 layers) ..." in out.stdout
