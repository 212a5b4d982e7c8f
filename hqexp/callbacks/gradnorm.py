"""Gradient norms: total and per top-level module of the model, every N steps and per epoch."""

from __future__ import annotations

import lightning as L
import torch


def grad_norms(parts) -> dict[str, torch.Tensor]:
    """L2 norms of the current gradients: ``{name: norm}`` for each ``(name, module)`` of
    ``parts`` that has gradients, and ``total`` over all of them (tensors, no host sync)."""
    sq_total: torch.Tensor | float = 0.0
    out: dict[str, torch.Tensor] = {}
    for name, module in parts:
        grads = [p.grad.detach().float() for p in module.parameters() if p.grad is not None]
        if not grads:
            continue
        sq = sum((g * g).sum() for g in grads)
        sq_total = sq_total + sq
        out[name] = sq.sqrt()
    out["total"] = torch.as_tensor(sq_total).sqrt()
    return out


class GradNormCallback(L.Callback):
    """Logs ``grad_norm/total`` and ``grad_norm/<module>`` (L2, before the optimiser step).

    Modules are the direct children of the task's ``model`` (e.g. ``encoder``,
    ``quantum``, ``head``), so hybrid and classical parts can be compared. Values go
    straight to the loggers every ``every_n_steps`` optimiser steps (not gated by
    ``trainer.log_every_n_steps``, so short runs still get them), and the epoch mean
    of every norm is logged as ``grad_norm_epoch/<name>`` for the per-epoch tables.
    """

    def __init__(self, every_n_steps: int = 1) -> None:
        if every_n_steps < 1:
            raise ValueError("every_n_steps must be >= 1")
        self.every_n_steps = every_n_steps
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._sums, self._count = {}, 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        model = getattr(pl_module, "model", pl_module)
        out = grad_norms(model.named_children())
        # Epoch sums stay on the device: no host sync on steps that are not logged.
        for k, v in out.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._count += 1
        if trainer.global_step % self.every_n_steps == 0:
            values = torch.stack(list(out.values())).tolist()
            self._emit(trainer, {f"grad_norm/{k}": v for k, v in zip(out, values)}, trainer.global_step)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._count:
            return
        keys = list(self._sums)
        means = (torch.stack([torch.as_tensor(self._sums[k]) for k in keys]) / self._count).tolist()
        # Through Lightning, so the values share the step of the other epoch-level metrics.
        # (DDP: every rank holds the same all-reduced gradients, so syncing changes nothing but the warning)
        pl_module.log_dict(
            {f"grad_norm_epoch/{k}": v for k, v in zip(keys, means)}, on_step=False, on_epoch=True, sync_dist=True
        )

    @staticmethod
    def _emit(trainer, metrics: dict[str, float], step: int) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=step)
