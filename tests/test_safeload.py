"""Checkpoints are data, never code: a crafted pickle in every loading path runs nothing (a marker
file its payload would create stays absent) and is refused in one line naming what it holds; a
legitimate checkpoint of every model kind still loads and evaluates to the metrics it trained to;
``trust_checkpoint=true`` is the explicit, tagged way to read an old file."""

from __future__ import annotations

import fractions
import os
import pickle

import pytest
import torch
from helpers import TINY, error_line, hqexp_here, runs

from hqexp import safeload
from hqexp.errors import ConfigError, UnsafeCheckpoint


class _Payload:
    """What an attacker writes: unpickling it calls ``os.system``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def craft(path, marker, fmt: str = "zip"):
    """A checkpoint-shaped file whose loading would create ``marker``: torch's zip format or a
    bare pickle (protocol 2, the one torch's legacy reader speaks)."""
    ckpt = {"epoch": 0, "state_dict": {}, "hqexp": {"config": _Payload(marker)}}
    if fmt == "zip":
        torch.save(ckpt, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(ckpt, f, protocol=2)
    return path


def _refused(out, marker) -> str:
    assert out.returncode == 2, out.stderr[-2000:]
    assert not marker.exists(), "the payload ran"
    line = error_line(out)
    assert "posix.system" in line and "refused, nothing in it was run" in line and "trust_checkpoint=true" in line
    return line


@pytest.mark.parametrize("fmt", ["zip", "pickle"])
def test_the_safe_loader_names_the_payload_and_runs_nothing(tmp_path, fmt):
    marker = tmp_path / "ran"
    path = craft(tmp_path / "evil.ckpt", marker, fmt)
    for source in (path, path.read_bytes()):
        with pytest.raises(UnsafeCheckpoint, match="holds posix.system"):
            safeload.load(source, "the file")
    assert not marker.exists()
    try:  # the payload is real: trusted, it runs
        safeload.load(path, "the file", trust=True)
    except ConfigError:  # a bare pickle is no torch file, but torch's full reader unpickled it first
        assert fmt == "pickle"
    assert marker.exists()
    legit = {"w": torch.arange(3.0), "meta": {"epoch": 2, "tags": ["a", None], "t": (1, 2.5)}}
    torch.save(legit, tmp_path / "ok.ckpt")
    back = safeload.load(tmp_path / "ok.ckpt", "the file")
    assert torch.equal(back["w"], legit["w"]) and back["meta"] == legit["meta"]


@pytest.mark.parametrize("fmt", ["zip", "pickle"])
def test_eval_of_a_crafted_checkpoint_runs_nothing(tmp_path, fmt):
    marker = tmp_path / "ran"
    path = craft(tmp_path / "evil.ckpt", marker, fmt)
    _refused(hqexp_here(["eval", f"ckpt_path={path}"], tmp_path, check=False), marker)
    _refused(hqexp_here(["diagnose", "shots", f"ckpt_path={path}"], tmp_path, check=False), marker)


def test_resuming_from_a_crafted_checkpoint_runs_nothing_and_opens_no_run(tmp_path):
    marker = tmp_path / "ran"
    path = craft(tmp_path / "evil.ckpt", marker)
    _refused(hqexp_here(["train", "dataset=iris", *TINY, f"ckpt_path={path}"], tmp_path, check=False), marker)
    assert not [r for r in runs(tmp_path) if r.info.status == "RUNNING"]


def test_a_federated_resume_from_a_crafted_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = craft(tmp_path / "evil.ckpt", marker)
    args = ["train", "dataset=iris", "federation=fl", "federation.n_clients=2", *TINY, f"ckpt_path={path}"]
    _refused(hqexp_here(args, tmp_path, check=False), marker)
    assert not [r for r in runs(tmp_path) if r.info.status == "RUNNING"]


def test_a_flower_clients_state_blob_is_data(tmp_path):
    from torch.utils.data import TensorDataset

    from hqexp.federated.remote import ClientWorker

    data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    w = ClientWorker(torch.nn.Linear(4, 2), data, 0, 4, 7, loss_fn=torch.nn.functional.cross_entropy)
    w.begin({k: v.clone() for k, v in w.module.state_dict().items()}, 0.1, 1)
    w.train_whole()
    blob = w.export()
    other = ClientWorker(torch.nn.Linear(4, 2), data, 0, 4, 7, loss_fn=torch.nn.functional.cross_entropy)
    other.restore(blob)  # its own export: data only
    assert other.rounds == 1 and other.norms == w.norms
    assert all(torch.equal(a, b) for a, b in zip(other.module.state_dict().values(), w.module.state_dict().values()))
    marker = tmp_path / "ran"
    with pytest.raises(UnsafeCheckpoint, match="client 0's saved state holds posix.system"):
        other.restore(craft(tmp_path / "blob", marker).read_bytes())
    assert not marker.exists()


def _train(tmp_path, args) -> tuple:
    hqexp_here(["train", *TINY, "trainer.max_epochs=1", *args], tmp_path / "train")
    (run,) = runs(tmp_path / "train")
    return run, next((tmp_path / "train").glob("run_*/checkpoints/last.ckpt"))


@pytest.mark.parametrize(
    "args",
    [
        ["model=vqc_classifier", "dataset=iris"],
        ["model=mlp_classifier", "dataset=wine"],
        ["model=g5", "dataset=iris_binary"],
        ["model=hqnn_autoencoder", "dataset=options"],
        ["experiment=ptbxl_snn_vqc", "dataset=synthetic_ecg", "dataset.n_synthetic=60", "dataset.batch_size=16"],
        ["model=split_conv1d", "dataset=synthetic_ecg", "dataset.n_synthetic=60", "federation=sflv1"],
    ],
    ids=["vqc", "mlp", "g5", "hqnn", "snn_vqc_ecg", "split_conv1d-sflv1"],
)
def test_every_model_kinds_checkpoint_is_data_and_evaluates_as_trained(tmp_path, args):
    run, last = _train(tmp_path, [*args, "callbacks.early_stopping.enabled=false"])
    torch.load(last, map_location="cpu", weights_only=True)  # nothing but tensors and plain values
    hqexp_here(["eval", f"ckpt_path={last}"], tmp_path / "eval")
    (ev,) = runs(tmp_path / "eval")
    key = next(k for k in ("test/acc", "test/f1_macro", "test/rmse", "test/loss") if k in run.data.metrics)
    assert ev.data.metrics[key] == pytest.approx(run.data.metrics[key], abs=1e-6), key
    assert "trust_checkpoint" not in ev.data.tags


def test_trust_checkpoint_reads_an_old_file_and_is_tagged(tmp_path):
    _, last = _train(tmp_path, ["model=mlp_classifier", "dataset=iris"])
    old = torch.load(last, map_location="cpu", weights_only=True)
    old["note"] = fractions.Fraction(1, 3)  # a harmless type hqexp never writes
    torch.save(old, tmp_path / "old.ckpt")
    out = hqexp_here(["eval", f"ckpt_path={tmp_path / 'old.ckpt'}"], tmp_path / "eval", check=False)
    assert out.returncode == 2 and "holds fractions.Fraction" in error_line(out)
    hqexp_here(["eval", f"ckpt_path={tmp_path / 'old.ckpt'}", "trust_checkpoint=true"], tmp_path / "eval")
    (ev,) = runs(tmp_path / "eval")
    assert ev.data.tags["trust_checkpoint"] == "true"
    out = hqexp_here(["eval", f"ckpt_path={last}", "trust_checkpoint=maybe"], tmp_path / "eval", check=False)
    assert out.returncode == 2 and "trust_checkpoint must be true or false" in error_line(out)


def test_a_federated_run_resumes_from_its_plain_data_checkpoint(tmp_path):
    base = ["dataset=iris", "federation=fl", "federation.n_clients=2", "trainer.enable_progress_bar=false"]
    hqexp_here(["train", *base, "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}/a"], tmp_path)
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=True)  # the ledger is plain values too
    assert ckpt["federation"]["round"] == 2 and isinstance(ckpt["federation"]["ledger"][0], dict)
    hqexp_here(["train", *base, "trainer.max_epochs=3", f"ckpt_path={last}", f"hydra.run.dir={tmp_path}/b"], tmp_path)
    resumed = next(r for r in runs(tmp_path) if r.data.tags.get("resumed_from"))
    assert resumed.data.tags["resumed_round"] == "2" and resumed.info.status == "FINISHED"
    first = next(r for r in runs(tmp_path) if not r.data.tags.get("resumed_from"))
    # the resumed ledger carries the first two rounds' bytes on: three rounds are 3/2 of two
    assert resumed.data.metrics["comm/total_bytes"] == pytest.approx(first.data.metrics["comm/total_bytes"] * 1.5)
