"""Helpers for end-to-end tests: run the real ``hqexp`` CLI against a temporary MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HQEXP = [sys.executable, "-m", "hqexp.cli"]
TINY = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false"]


def hqexp(args, tmp: Path, check=True, timeout=300) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
        "HYDRA_FULL_ERROR": "0",
        "PYTHONWARNINGS": "ignore",
    }
    dirs = [
        d
        for d in (f"hydra.run.dir={tmp}/run_{time.time_ns()}", f"hydra.sweep.dir={tmp}/sweep_{time.time_ns()}")
        if not any(a.startswith(d.split("=")[0] + "=") for a in args)
    ]
    out = subprocess.run([*HQEXP, *args, *dirs], capture_output=True, text=True, env=env, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(
            f"hqexp {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out


def client(tmp: Path):
    from hqexp.tracking.store import open_client

    return open_client(f"sqlite:///{tmp}/mlflow.db")


def runs(tmp: Path, filter_string: str = ""):
    c = client(tmp)
    exp_ids = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(exp_ids, filter_string=filter_string, max_results=1000)


def artifacts(tmp: Path, run_id: str, path: str = "") -> set[str]:
    c, out = client(tmp), set()
    for a in c.list_artifacts(run_id, path):
        out |= artifacts(tmp, run_id, a.path) if a.is_dir else {a.path}
    return out


def free_port() -> int:
    """A TCP port nothing listens on now (for a server a test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def error_line(out: subprocess.CompletedProcess) -> str:
    """The one ``hqexp: error:`` line of a refused command (no traceback, exactly one line)."""
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("hqexp: error:")]
    assert len(lines) == 1, out.stderr[-2000:]
    return lines[0]


def hqexp_here(args, tmp: Path, check=True) -> subprocess.CompletedProcess:
    """The CLI in this process: same arguments, exit codes and output as :func:`hqexp`, without
    starting Python and importing torch, Lightning and MLflow again. For tests where the process
    boundary is not what is tested (signals, DDP, servers and Flower keep :func:`hqexp`)."""
    import contextlib
    import io

    from hqexp.cli import main

    dirs = [
        d
        for d in (f"hydra.run.dir={tmp}/run_{time.time_ns()}", f"hydra.sweep.dir={tmp}/sweep_{time.time_ns()}")
        if not any(a.startswith(d.split("=")[0] + "=") for a in args)
    ]
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "HYDRA_FULL_ERROR")}
    os.environ.update({"MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "HYDRA_FULL_ERROR": "0"})
    out, err, code = io.StringIO(), io.StringIO(), 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([*args, *dirs])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    done = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"hqexp {' '.join(args)} failed ({code}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def wait_until_up(uri: str, proc: subprocess.Popen | None = None, timeout_s: float = 120.0) -> None:
    """Until ``uri``/health answers (an MLflow server a test started); fails the test when ``proc``
    exits first or nothing answers within ``timeout_s``."""
    import urllib.request

    import pytest

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(uri + "/health", timeout=1).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"the server exited ({proc.returncode}) before answering")
            time.sleep(0.25)
    pytest.fail(f"no server answered at {uri} within {timeout_s:.0f} s")
