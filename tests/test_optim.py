"""Optimizers and schedules as config objects, the same in ordinary and federated training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from hqexp.errors import ConfigError
from hqexp.optim import RoundSchedule, build_optimizer, build_scheduler, lightning_optimizers

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize(
    "name,cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)]
)
def test_each_optim_config_builds_its_optimizer(name, cls):
    spec = OmegaConf.to_container(OmegaConf.load(CONF / "optim" / f"{name}.yaml"))
    opt = build_optimizer({**spec, "lr": 0.123}, [torch.nn.Parameter(torch.zeros(2))])
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.123


@pytest.mark.parametrize(
    "name,cls",
    [
        ("cosine", torch.optim.lr_scheduler.CosineAnnealingLR),
        ("cosine_warm_restarts", torch.optim.lr_scheduler.CosineAnnealingWarmRestarts),
        ("plateau", torch.optim.lr_scheduler.ReduceLROnPlateau),
        ("none", type(None)),
    ],
)
def test_each_scheduler_config_builds_its_schedule(name, cls):
    spec = OmegaConf.to_container(OmegaConf.load(CONF / "scheduler" / f"{name}.yaml"))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(spec, opt, length=7)
    assert type(sched) is cls
    if name == "cosine":
        assert sched.T_max == 7  # null T_max is the run's length
    out = lightning_optimizers({"lr": 1.0}, spec, [torch.nn.Parameter(torch.zeros(1))], 7)
    if name == "plateau":
        assert out["lr_scheduler"]["monitor"] == "val/loss"
    elif name == "none":
        assert isinstance(out, torch.optim.Optimizer)


def test_legacy_checkpoint_configs_still_mean_what_they_meant():
    opt = build_optimizer({"lr": 0.5, "weight_decay": 0.0}, [torch.nn.Parameter(torch.zeros(1))])
    assert type(opt) is torch.optim.AdamW
    sched = build_scheduler({"name": "cosine", "eta_min": 0.0}, opt, 4)
    assert type(sched) is torch.optim.lr_scheduler.CosineAnnealingLR and sched.T_max == 4
    assert build_scheduler({"name": "none"}, opt, 4) is None


def test_a_bad_key_is_one_line_naming_the_object():
    with pytest.raises(ConfigError, match=r"cannot build optim torch\.optim\.SGD: .*momentum"):
        build_optimizer(
            {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": -1.0}, [torch.nn.Parameter(torch.zeros(1))]
        )


def test_round_schedule_is_the_epoch_schedule_stepped_per_round():
    rounds, eta = 10, 1e-5
    rs = RoundSchedule(
        {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": None, "eta_min": eta},
        {"client": 0.1, "server": 0.05},
        rounds,
    )
    for done in range(rounds + 1):
        want = eta + (0.1 - eta) * (1 + math.cos(math.pi * done / rounds)) / 2
        assert rs.lr("client", done) == pytest.approx(want, rel=1e-12)
    assert rs.lr("server", 0) == pytest.approx(0.05)
    plateau = RoundSchedule(
        {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "factor": 0.5, "patience": 0},
        {"client": 0.1, "server": 0.1},
        rounds,
    )
    assert plateau.lr("client", 3, [1.0, 1.0, 1.0]) == pytest.approx(0.1 * 0.5**2)  # two rounds without progress
    assert plateau.lr("client", 2, [1.0, 0.5]) == pytest.approx(0.1)


def _optimizer_state_keys(ckpt: Path) -> set[str]:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    states = state["optimizer_states"][0]["state"]
    return set().union(*(s.keys() for s in states.values()))


def test_changing_the_optimizer_is_one_override(tmp_path, monkeypatch):
    from hqexp.api import run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    common = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "callbacks.early_stopping.enabled=false"]
    run("vqc_classifier", "iris", ["optim=sgd", "optim.momentum=0.9", *common], output_dir=tmp_path / "sgd")
    run("vqc_classifier", "iris", common, output_dir=tmp_path / "adamw")
    assert "momentum_buffer" in _optimizer_state_keys(tmp_path / "sgd" / "checkpoints" / "last.ckpt")
    assert "exp_avg" in _optimizer_state_keys(tmp_path / "adamw" / "checkpoints" / "last.ckpt")


def test_the_federated_engine_takes_the_same_optimizer_object(tmp_path, monkeypatch):
    from hqexp.api import run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    args = ["federation=sflv1", "federation.n_clients=2", "trainer.max_epochs=1", "optim=sgd", "optim.momentum=0.9"]
    run("vqc_classifier", "iris", args, output_dir=tmp_path / "fed")
    state = torch.load(tmp_path / "fed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    opt_states = [opt for _, opt in state["federation"]["protocol"]["sides"] if opt is not None]
    assert opt_states and all(
        "momentum_buffer" in s and s["momentum_buffer"] is not None for o in opt_states for s in o["state"].values()
    )
    assert all(g["momentum"] == 0.9 for o in opt_states for g in o["param_groups"])
