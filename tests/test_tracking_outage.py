"""A tracking server that dies mid-run, with a real ``mlflow server`` killed (SIGKILL) and
restarted on the same store: back within MLflow's retry window, every metric arrives once; gone
for good, the run finishes on disk and ``hqexp runs sync`` uploads it — once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import HQEXP, free_port, hqexp, wait_until_up

EPOCHS = 40


class Server:
    """``mlflow server`` on a fixed port and store, which the test can kill and start again."""

    def __init__(self, tmp) -> None:
        self.tmp, self.port, self.proc = tmp, free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.tmp}/m.db"]
        cmd += ["--artifacts-destination", str(self.tmp / "artifacts"), "--serve-artifacts"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until_up(self.uri, self.proc)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "server")
    (tmp_path / "server").mkdir()
    s.start()
    yield s
    if s.proc.poll() is None:
        s.kill()


def _train(tmp_path, server: Server, env: dict) -> subprocess.Popen:
    args = ["train", "model=vqc_classifier", "dataset=iris", f"trainer.max_epochs={EPOCHS}"]
    args += ["trainer.enable_progress_bar=false", "callbacks.early_stopping.enabled=false"]
    args += [f"mlflow.tracking_uri={server.uri}", f"hydra.run.dir={tmp_path}/run"]
    full = {**os.environ, "PYTHONWARNINGS": "ignore", **env}
    return subprocess.Popen([*HQEXP, *args], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epochs(server: Server, n: int):
    """The run, once the server holds ``n`` epochs of it."""
    from mlflow.tracking import MlflowClient

    c, deadline = MlflowClient(server.uri), time.time() + 240
    while time.time() < deadline:
        for exp in c.search_experiments():
            for r in c.search_runs([exp.experiment_id]):
                if len(c.get_metric_history(r.info.run_id, "val/loss")) >= n:
                    return r
        time.sleep(0.2)
    pytest.fail(f"no run reached {n} epochs")


def _history(server: Server, run_id: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    return sorted(m.step for m in MlflowClient(server.uri).get_metric_history(run_id, "val/loss"))


def test_a_server_back_within_the_retry_window_loses_and_doubles_nothing(tmp_path, server):
    proc = _train(tmp_path, server, {})
    run = _wait_for_epochs(server, 3)
    server.kill()
    time.sleep(3)  # the run's calls wait in MLflow's retries meanwhile
    server.start()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    steps = _history(server, run.info.run_id)
    assert steps == sorted(set(steps)) and len(steps) == EPOCHS, steps  # each epoch once, none missing
    from mlflow.tracking import MlflowClient

    assert MlflowClient(server.uri).get_run(run.info.run_id).info.status == "FINISHED"
    assert "runs sync" not in err


def test_a_server_that_stays_gone_keeps_the_run_on_disk_for_runs_sync(tmp_path, server):
    from mlflow.tracking import MlflowClient

    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    proc = _train(tmp_path, server, quick)
    run = _wait_for_epochs(server, 3)
    server.kill()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    kept = tmp_path / "run" / "mlflow_offline" / run.info.run_id
    assert f"did not come back: run {run.info.run_id} (FINISHED) is kept in {kept}" in err
    assert f"hqexp runs sync {kept}" in err and "Traceback" not in err
    assert (kept / "journal.jsonl").exists()

    server.start()
    assert MlflowClient(server.uri).get_run(run.info.run_id).info.status == "RUNNING"
    synced = hqexp(["runs", "sync", str(tmp_path / "run")], tmp_path)
    assert "1 run(s) uploaded" in synced.stdout
    c = MlflowClient(server.uri)
    got = c.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and "test/acc" in got.data.metrics
    steps = _history(server, run.info.run_id)
    assert steps == sorted(set(steps)) and len(steps) == EPOCHS, steps
    assert {a.path for a in c.list_artifacts(run.info.run_id)} >= {"checkpoints", "plots"}
    again = hqexp(["runs", "sync", str(kept)], tmp_path)
    assert "already uploaded" in again.stdout and "0 run(s) uploaded" in again.stdout
    assert _history(server, run.info.run_id) == steps
    out = hqexp(["runs", "sync", str(tmp_path / "nothing")], tmp_path, check=False)
    assert out.returncode == 2 and "does not exist" in out.stderr
