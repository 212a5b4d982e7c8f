"""Building a run from its config: data module, model, task, callbacks and trainer, each
with ``hydra.utils.instantiate`` from its ``_target_``; errors become one line."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp.config import choice
from hqexp.errors import ConfigError, HqexpError
from hqexp.train.checks import device_of, hardware


def unwrap(exc: BaseException, group: str) -> BaseException:
    """The :class:`HqexpError` inside an instantiate error, or one line naming the group."""
    cur: BaseException | None = exc
    while cur is not None:
        if isinstance(cur, HqexpError):
            return cur
        cur = cur.__cause__ or cur.__context__
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError(f"cannot build {group} ({choice(group)}): {msg}")


def build_datamodule(cfg: DictConfig, fold: int | None = None, stage: str | None = "fit"):
    """The dataset's data module, set up; run-level options only where the dataset supports them."""
    from hydra.utils import get_class, instantiate

    from hqexp.data.base import require

    extra = {}
    try:
        cls = get_class(cfg.dataset._target_)
    except Exception as exc:
        raise unwrap(exc, "dataset") from None
    if int(cfg.cv.folds) > 1 or fold is not None:
        require(cls, "cv", choice("dataset"))
        extra.update(cv_folds=int(cfg.cv.folds), fold=cfg.cv.fold if fold is None else fold)
    if cfg.imbalance.method != "none":
        require(cls, "imbalance", choice("dataset"))
        extra.update(imbalance=cfg.imbalance.method, smote_k=cfg.imbalance.smote_k)
    try:
        dm = instantiate(cfg.dataset, seed=cfg.seed, **extra)
    except Exception as exc:  # Hydra wraps constructor errors; surface ours as one line
        raise unwrap(exc, "dataset") from None
    if stage is not None:
        dm.setup(stage)
    return dm


def model_tasks(cfg: DictConfig) -> tuple[str, ...]:
    """The task kinds (``classification``, ``regression``, ``multilabel``) the model's class
    declares in its ``task`` attribute (one name, or a tuple of them)."""
    from hydra.utils import get_class

    try:
        kind = getattr(get_class(cfg.model._target_), "task", "classification")
    except Exception as exc:
        raise ConfigError(f"cannot import model {cfg.model.get('_target_')!r}: {exc}") from None
    return (kind,) if isinstance(kind, str) else tuple(kind)


#: keys of a model config that describe the model to hqexp, not arguments of its class
MODEL_META = ("compare_to",)


def model_arguments(cfg: DictConfig) -> DictConfig:
    """``cfg.model`` without :data:`MODEL_META` keys (``compare_to``: the twin a paired verdict
    with ``compare.baseline=twin`` sets it against), ready for ``instantiate``."""
    if not any(k in cfg.model for k in MODEL_META):
        return cfg.model
    resolved = OmegaConf.to_container(cfg.model, resolve=True)  # interpolations need the whole config
    return OmegaConf.create({k: v for k, v in resolved.items() if k not in MODEL_META})


def build_model(cfg: DictConfig, info):
    """The model for the data described by ``info`` (a :class:`~hqexp.data.base.DataInfo`)."""
    from hydra.utils import instantiate

    kinds = model_tasks(cfg)
    if info.task not in kinds:
        want = {
            "regression": "a regression dataset (options)",
            "multilabel": "an ECG dataset (ptbxl, cinc2021, synthetic_ecg)",
        }.get(kinds[0], "a classification dataset")
        raise ConfigError(
            f"model={choice('model')} is a {' or '.join(kinds)} model but dataset={choice('dataset')} "
            f"is a {info.task} dataset; use {want}"
        )
    size = {"n_outputs": info.n_classes} if info.task == "regression" else {"n_classes": info.n_classes}
    if "input_length" in cfg.model.keys():  # the model asks for the window length the data gives
        size["input_length"] = info.length
    try:
        return instantiate(model_arguments(cfg), n_features=info.n_features, **size, _convert_="all")
    except Exception as exc:
        raise unwrap(exc, "model") from None


def build_task(cfg: DictConfig, model, dm):
    """The LightningModule for the dataset's task kind, with the run's optimizer and schedule."""
    from hqexp.train.tasks import ClassificationTask, MultiLabelTask, RegressionTask

    common = {
        "optim": OmegaConf.to_container(cfg.optim, resolve=True),
        "scheduler": OmegaConf.to_container(cfg.scheduler, resolve=True),
        "max_epochs": cfg.trainer.max_epochs,
    }
    loss = cfg.get("loss", "auto")
    if dm.info.task == "regression":
        return RegressionTask(
            model,
            loss="mse" if loss == "auto" else loss,
            target_mean=dm.target_mean,
            target_std=dm.target_std,
            **common,
        )
    if dm.info.task == "multilabel":
        if loss not in ("auto", "bce"):
            raise ConfigError(f"loss={loss!r} does not fit multi-label data; use bce (or auto)")
        return MultiLabelTask(model, dm.info.class_names, **common)
    if loss not in ("auto", "cross_entropy"):
        raise ConfigError(f"loss={loss!r} is for regression; classification uses cross_entropy (or auto)")
    return ClassificationTask(model, dm.info.n_classes, class_weights=getattr(dm, "class_weights", None), **common)


def energy_meter(cfg: DictConfig):
    """The energy meter for this run's hardware (``Unavailable`` with a reason if none)."""
    from hqexp.energy import select_meter

    c = cfg.callbacks.get("energy")
    if c is None or not c.get("enabled", True):
        return select_meter(prefer="none")
    device = device_of(cfg)
    if device == "cuda" and str(cfg.hardware.get("strategy", "")).startswith("ddp"):
        import os

        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"  # Lightning gives local rank i the i-th GPU
    try:
        return select_meter(device, c.meter)
    except ValueError as exc:
        raise ConfigError(f"callbacks.energy.meter: {exc}") from None


def qpu_profile(cfg: DictConfig):
    """The run's ``qpu`` provider profile (:mod:`hqexp.quantum.bill`), or None without a ``qpu`` group."""
    if cfg.get("qpu") is None:
        return None
    from hqexp.quantum.bill import build_profile

    return build_profile(OmegaConf.to_container(cfg.qpu, resolve=True), choice("qpu"))


def ops_profile(cfg: DictConfig):
    """The run's ``ops_energy`` per-operation energy table (:class:`hqexp.energy.ops.OpEnergy`), or None."""
    if cfg.get("ops_energy") is None:
        return None
    from hydra.utils import instantiate

    spec = OmegaConf.to_container(cfg.ops_energy, resolve=True)
    if not isinstance(spec, dict) or spec.get("_target_") != "hqexp.energy.ops.OpEnergy":
        raise ConfigError(f"ops_energy={choice('ops_energy')}: _target_ must be hqexp.energy.ops.OpEnergy")
    try:
        return instantiate(spec)
    except Exception as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(f"ops_energy={choice('ops_energy')}: {str(cause).splitlines()[0]}") from None


def build_callbacks(cfg: DictConfig, ckpt_dir: Path, meter=None) -> dict:
    """``{name: callback}`` for every enabled ``callbacks.<name>`` with a ``_target_``, plus the
    interrupt flag and (with a progress bar) the bar that shows latency and energy.

    ``meter``: the energy meter; without an available one, no energy callback is built.
    """
    from hydra.utils import instantiate

    from hqexp.callbacks.interrupt import InterruptFlag
    from hqexp.callbacks.progress import CostProgressBar, EpochLine

    runtime = {
        "checkpoint": {"dirpath": str(ckpt_dir)},
        "energy": {"meter": meter},
        "qpu_bill": {"profile": qpu_profile(cfg)},
        "ops": {"profile": ops_profile(cfg)},
    }
    out: dict = {}
    for name, spec in cfg.callbacks.items():
        if not isinstance(spec, DictConfig) or "_target_" not in spec or not spec.get("enabled", True):
            continue
        if name == "energy" and (meter is None or not meter.available):
            continue
        args = {k: v for k, v in spec.items() if k != "enabled"}
        try:
            out[name] = instantiate(args, **runtime.get(name, {}))
        except Exception as exc:
            root = unwrap(exc, "callbacks")
            if isinstance(root, HqexpError):
                raise root from None
            cause = exc.__cause__ or exc
            if isinstance(cause, ValueError):
                raise ConfigError(f"callbacks.{cause}") from None
            raise ConfigError(f"cannot build callbacks.{name}: {str(cause).splitlines()[0]}") from None
    out["interrupt"] = InterruptFlag()
    if cfg.trainer.get("enable_progress_bar", True):
        if progress_bar_wanted(cfg):
            out["progress_bar"] = CostProgressBar(out.get("latency"), out.get("energy"))
        else:  # output to a file or a pipe: a compact line per epoch instead of bar redraws
            out["epoch_line"] = EpochLine(out.get("latency"), out.get("energy"))
    return out


def progress_bar_wanted(cfg: DictConfig) -> bool:
    """A redrawing progress bar only on a terminal (and when the trainer config wants one)."""
    import sys

    return bool(cfg.trainer.get("enable_progress_bar", True)) and sys.stdout.isatty()


def build_trainer(cfg: DictConfig, logger, callbacks: dict, root: Path):
    """The Lightning Trainer of ``cfg.trainer`` on ``cfg.hardware``."""
    import lightning as L

    kw = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if v is not None}
    kw["enable_progress_bar"] = "progress_bar" in callbacks
    try:
        return L.Trainer(
            **{**hardware(cfg), **kw},
            logger=logger,
            callbacks=list(callbacks.values()),
            default_root_dir=str(root),
            enable_model_summary=False,
        )
    except TypeError:  # e.g. +trainer.max_epoch=2: not a Trainer argument
        import difflib
        import inspect

        known = [p for p in inspect.signature(L.Trainer).parameters if p != "self"]
        bad = [k for k in kw if k not in known]
        if not bad:
            raise
        near = difflib.get_close_matches(bad[0], known, n=1)
        hint = f"; did you mean trainer.{near[0]}?" if near else ""
        raise ConfigError(f"trainer.{bad[0]} is not a lightning.Trainer argument{hint}") from None


def federated_loss(kind: str, dm):
    """The training loss of a federated run on ``dm`` (class-weighted where the data module says)."""
    import torch

    if kind == "multilabel":
        return torch.nn.BCEWithLogitsLoss()
    if kind != "classification":
        raise ConfigError(
            f"federation needs a classification or multi-label dataset; dataset={choice('dataset')} is {kind}"
        )
    return torch.nn.CrossEntropyLoss(weight=getattr(dm, "class_weights", None))
