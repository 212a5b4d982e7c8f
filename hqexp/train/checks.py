"""Checks that stop a run before any work: missing keys, wrong types, impossible hardware."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from hqexp.config import choice
from hqexp.errors import ConfigError


def validate(cfg: DictConfig) -> None:
    """Stop before any work on a missing (``???``) key or an obviously wrong type."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra"))
    if missing:
        raise ConfigError(f"missing required config value(s): {', '.join(missing)} (set them as key=value)")
    checks = [
        ("seed", int, lambda v: True, "an int"),
        ("optim.lr", (int, float), lambda v: v > 0, "a positive number"),
        ("optim.weight_decay", (int, float), lambda v: v >= 0, "a non-negative number"),
        ("trainer.max_epochs", int, lambda v: v >= 1, "an int >= 1"),
    ]
    for key, types, ok, what in checks:
        v = OmegaConf.select(cfg, key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, types) or not ok(v):
            raise ConfigError(f"{key} must be {what}, got {v!r}")


def hardware(cfg: DictConfig) -> dict:
    """The Lightning accelerator/devices/precision of ``cfg.hardware`` (+ ``precision``), checked."""
    import torch

    hw = OmegaConf.to_container(cfg.hardware, resolve=True)
    gpu = hw.get("accelerator") in ("gpu", "cuda")
    if gpu and not torch.cuda.is_available():
        raise ConfigError(
            f"hardware={choice('hardware')} needs a CUDA GPU, but torch {torch.__version__} sees none; "
            "use hardware=cpu (or install a CUDA build of torch)"
        )
    precision = cfg.get("precision")
    if precision not in (None, "mixed"):
        raise ConfigError(f"precision must be null or mixed, got {precision!r}")
    if precision == "mixed":  # Lightning adds the GradScaler for 16-mixed
        hw["precision"] = "16-mixed" if gpu else "bf16-mixed"
    return hw


def device_of(cfg: DictConfig) -> str:
    """``cuda`` or ``cpu``: where the run's model lives."""
    return "cuda" if cfg.hardware.accelerator in ("gpu", "cuda") else "cpu"


def check_distributed(cfg: DictConfig) -> None:
    """Refuse, in one line, what a data-parallel (DDP) job cannot be: Lightning re-launches this
    command once per extra rank, so the job must be one ``Trainer.fit`` of one model."""
    import os

    from hqexp.config import is_multirun

    strategy = str(OmegaConf.select(cfg, "hardware.strategy", default="auto") or "auto")
    if not strategy.startswith("ddp"):
        return
    hw = choice("hardware")
    federation = OmegaConf.select(cfg, "federation.mode", default="none")
    if federation != "none":
        raise ConfigError(
            f"hardware={hw} trains one model data-parallel; federation={federation} runs its own "
            "engine in one process: use hardware=cpu or hardware=gpu"
        )
    if OmegaConf.select(cfg, "cv.folds", default=1) > 1 and OmegaConf.select(cfg, "cv.fold") is None:
        raise ConfigError(f"hardware={hw} fits one model per command; with cv.folds > 1 run one fold each: cv.fold=i")
    external = int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ
    if is_multirun() and not external:
        raise ConfigError(
            f"hardware={hw} inside a local multirun would re-launch the whole sweep in every rank; "
            "run each DDP job as its own `hqexp train`, or sweep on SLURM "
            "(hydra/launcher=submitit_slurm, one task per device)"
        )
