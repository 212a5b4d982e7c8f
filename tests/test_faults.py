"""Faults that lose nothing, tried for real: a disk that fills during a run (a small tmpfs), a
SIGKILL while a checkpoint is being written, a store file that is not a database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pytest
import torch
from helpers import HQEXP, TINY, error_line, hqexp, runs


@pytest.fixture
def small_disk(tmp_path):
    """A 60 KiB tmpfs: room for the run folder and one checkpoint of a small model, not two."""
    where = tmp_path / "full"
    where.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=60k", "tmpfs", str(where)], capture_output=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.decode().strip() or 'not root'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_full_disk_fails_the_run_in_one_line_and_keeps_the_store(tmp_path, small_disk):
    args = ["train", "dataset=iris", "model=mlp_classifier", *TINY, "callbacks.early_stopping.enabled=false"]
    out = hqexp([*args, f"hydra.run.dir={small_disk}/run"], tmp_path, check=False)
    assert out.returncode == 2
    line = error_line(out)
    ckpts = small_disk / "run" / "checkpoints"
    assert f"no space left on the device writing {ckpts}/" in line and "(No space left on device)" in line
    assert not [p for p in ckpts.iterdir() if p.name.endswith(".tmp")], "a half-written checkpoint was left"
    for p in ckpts.glob("*.ckpt"):  # whatever is there is whole
        torch.load(p, map_location="cpu", weights_only=True)
    (run,) = runs(tmp_path)
    assert run.info.status == "FAILED" and "no space left" in run.data.tags["hqexp.error"]
    hqexp([*args, f"hydra.run.dir={tmp_path}/elsewhere"], tmp_path)  # the store is fine: the next run lands
    assert sorted(r.info.status for r in runs(tmp_path)) == ["FAILED", "FINISHED"]


def _kill_mid_checkpoint(tmp_path) -> tuple[bool, object]:
    """Train until a second ``last.ckpt`` is being written, SIGKILL the process then; whether the
    kill landed mid-write (the temporary file is left behind) and the run folder."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "PYTHONWARNINGS": "ignore"}
    run = tmp_path / f"run_{uuid.uuid4().hex[:6]}"
    args = ["train", "dataset=iris", "model=mlp_classifier", "model.hidden=4096", "trainer.max_epochs=100000"]
    args += ["trainer.enable_progress_bar=false", "callbacks.early_stopping.enabled=false", f"hydra.run.dir={run}"]
    proc = subprocess.Popen([*HQEXP, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts, deadline = run / "checkpoints", time.time() + 180
    try:
        while time.time() < deadline:
            try:
                names = os.listdir(ckpts)
            except FileNotFoundError:
                time.sleep(0.01)
                continue
            if "last.ckpt" in names and any(n.startswith(".last.ckpt") and n.endswith(".tmp") for n in names):
                os.kill(proc.pid, signal.SIGKILL)
                break
        else:
            pytest.fail("no checkpoint was written within 180 s")
    finally:
        proc.kill()
        proc.wait()
    return any(n.endswith(".tmp") for n in os.listdir(ckpts)), run


def test_sigkill_while_a_checkpoint_is_written_keeps_the_previous_one(tmp_path):
    for _ in range(3):  # the write takes milliseconds: try until the kill lands inside one
        mid_write, run = _kill_mid_checkpoint(tmp_path)
        if mid_write:
            break
    assert mid_write, "three kills all missed the checkpoint write"
    last = run / "checkpoints" / "last.ckpt"
    epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"]  # whole: the previous one
    killed = [r for r in runs(tmp_path) if r.info.status == "RUNNING"]
    assert killed, "the SIGKILLed run cannot have closed itself"
    out = hqexp(["runs", "close-stale"], tmp_path)
    assert all(r.info.status == "KILLED" for r in runs(tmp_path)), out.stdout
    resumed = [
        "train",
        "dataset=iris",
        "model=mlp_classifier",
        "model.hidden=4096",
        f"trainer.max_epochs={epoch + 2}",
        "trainer.enable_progress_bar=false",
        "callbacks.early_stopping.enabled=false",
        f"ckpt_path={last}",
    ]
    hqexp(resumed, tmp_path)
    (r,) = [r for r in runs(tmp_path) if r.data.tags.get("resumed_from")]
    assert r.info.status == "FINISHED" and r.data.tags["resumed_epoch"] == str(epoch + 1)


def test_a_store_that_is_not_a_database_is_one_line(tmp_path):
    hqexp(["train", "dataset=iris", "model=mlp_classifier", *TINY], tmp_path)
    db = tmp_path / "mlflow.db"
    data = bytearray(db.read_bytes())
    data[4096 : len(data) - 4096] = os.urandom(len(data) - 8192)  # the header survives, the pages do not
    for content in (bytes(data), os.urandom(5000), b"hello, this is not SQLite\n"):
        db.write_bytes(content)
        out = hqexp(["train", "dataset=iris", *TINY], tmp_path, check=False)
        assert out.returncode == 2, out.stderr[-2000:]
        line = error_line(out)
        assert line.startswith(f"hqexp: error: cannot open MLflow tracking URI 'sqlite:///{db}'"), line
        assert "malformed" in line or "not a database" in line, line
