"""Optimizers and learning-rate schedules from their config objects, built in one place.

``conf/optim/*.yaml`` and ``conf/scheduler/*.yaml`` are ``_target_`` + ``_partial_`` objects
(``torch.optim.AdamW``, ``torch.optim.lr_scheduler.CosineAnnealingLR``, ...). The Lightning tasks
and the federated engine both build them here, so ``optim=sgd`` or ``scheduler=plateau`` means
the same in ordinary and in federated training. A schedule's length (``T_max`` left at null) is
the run's: epochs for Lightning, rounds for a federation.

Bottom layer: imports no hqexp module but the errors; torch and Hydra are imported when used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hqexp.errors import ConfigError

# Checkpoints written before the optim/scheduler groups existed carry ``{lr, weight_decay}`` and
# ``{name: cosine, ...}``: they are read as the objects they meant.
_LEGACY_SCHEDULERS = {
    "cosine": "torch.optim.lr_scheduler.CosineAnnealingLR",
    "cosine_warm_restarts": "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts",
    "plateau": "torch.optim.lr_scheduler.ReduceLROnPlateau",
}


def _spec(spec: Mapping | None, kind: str) -> dict:
    if spec is None:
        return {}
    try:
        return dict(spec.items())
    except AttributeError:
        raise ConfigError(f"{kind} must be a config mapping with a _target_, got {type(spec).__name__}") from None


def optimizer_spec(spec: Mapping | None) -> dict:
    """The optimizer mapping with ``_target_`` (a legacy ``{lr, weight_decay}`` means AdamW)."""
    out = _spec(spec, "optim")
    out.setdefault("_target_", "torch.optim.AdamW")
    out["_partial_"] = True
    return out


def scheduler_spec(spec: Mapping | None) -> dict:
    """The scheduler mapping with ``_target_``, or ``{}`` for no schedule (``scheduler=none``)."""
    out = _spec(spec, "scheduler")
    name = out.pop("name", None)
    if "_target_" not in out:
        if name in (None, "none"):
            return {}
        if name not in _LEGACY_SCHEDULERS:
            raise ConfigError(f"unknown scheduler {name!r}; choose one of: none, {', '.join(_LEGACY_SCHEDULERS)}")
        out["_target_"] = _LEGACY_SCHEDULERS[name]
    if out.get("_target_") is None:
        return {}
    out["_partial_"] = True
    return out


def _instantiate(spec: dict, kind: str, *args: Any, **kw: Any):
    from hydra.utils import instantiate

    try:
        make = instantiate(spec)
        return make(*args, **kw)
    except ConfigError:
        raise
    except Exception as exc:  # a wrong key or value of the object: one line naming it
        cur: BaseException = exc
        while cur.__cause__ is not None:
            cur = cur.__cause__
        msg = str(cur).strip().splitlines()[0] if str(cur).strip() else type(cur).__name__
        raise ConfigError(f"cannot build {kind} {spec.get('_target_')}: {msg}") from None


def build_optimizer(spec: Mapping | None, params: Iterable):
    """The optimizer of ``spec`` (``conf/optim``) over ``params`` (tensors or param groups)."""
    return _instantiate(optimizer_spec(spec), "optim", params)


def is_plateau(scheduler: Any) -> bool:
    """True for a schedule stepped with a monitored value (``ReduceLROnPlateau``)."""
    import torch

    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def build_scheduler(spec: Mapping | None, optimizer, length: int):
    """The schedule of ``spec`` (``conf/scheduler``) on ``optimizer``, or None; a cosine
    ``T_max`` left at null is ``length`` (epochs, or rounds of a federation)."""
    s = scheduler_spec(spec)
    if not s:
        return None
    if s.get("T_max") is None and ("T_max" in s or str(s["_target_"]).endswith("CosineAnnealingLR")):
        s["T_max"] = max(1, int(length))  # the run's length
    return _instantiate(s, "scheduler", optimizer)


def lightning_optimizers(
    optim: Mapping | None, scheduler: Mapping | None, params, length: int, monitor: str = "val/loss"
):
    """What ``LightningModule.configure_optimizers`` returns for these config objects."""
    opt = build_optimizer(optim, params)
    sched = build_scheduler(scheduler, opt, length)
    if sched is None:
        return opt
    if is_plateau(sched):
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": monitor}}
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


class RoundSchedule:
    """The learning rate of each round of a federation, from the same scheduler object a
    Lightning run steps once per epoch (once per round here).

    Stateless schedules (cosine, warm restarts) depend on the round alone; a plateau schedule
    on the validation losses of the rounds before, which :meth:`lr` takes, so a resumed run
    replays the same rates from its history.
    """

    def __init__(self, spec: Mapping | None, base_lrs: Mapping[str, float], length: int) -> None:
        self.spec, self.base, self.length = spec, dict(base_lrs), int(length)
        # fail now, not in round 1, for a schedule that cannot be built
        self._replay("client", 0, [])

    def _replay(self, role: str, done: int, val_losses: Sequence[float]) -> float:
        import torch

        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=self.base[role])
        sched = build_scheduler(self.spec, opt, self.length)
        if sched is None:
            return self.base[role]
        import warnings

        with warnings.catch_warnings():  # stepping the schedule without an optimizer step
            warnings.simplefilter("ignore", UserWarning)
            for r in range(done):
                if is_plateau(sched):
                    if r >= len(val_losses):
                        raise ConfigError("a plateau schedule needs the validation loss of every earlier round")
                    sched.step(val_losses[r])
                else:
                    sched.step()
        return float(opt.param_groups[0]["lr"])

    def lr(self, role: str, done: int, val_losses: Sequence[float] = ()) -> float:
        """The learning rate of ``role`` (client | server) after ``done`` completed rounds."""
        return self._replay(role, done, val_losses)
