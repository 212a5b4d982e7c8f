"""Gradient norms: total and per top-level module of the model, every N steps."""

from __future__ import annotations

import lightning as L
import torch


class GradNormCallback(L.Callback):
    """Logs ``grad_norm/total`` and ``grad_norm/<module>`` (L2, before the optimiser step).

    Modules are the direct children of the task's ``model`` (e.g. ``encoder``,
    ``quantum``, ``head``), so hybrid and classical parts can be compared.
    """

    def __init__(self, every_n_steps: int = 1) -> None:
        if every_n_steps < 1:
            raise ValueError("every_n_steps must be >= 1")
        self.every_n_steps = every_n_steps

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step % self.every_n_steps:
            return
        model = getattr(pl_module, "model", pl_module)
        sq_total = torch.zeros((), device=pl_module.device)
        out = {}
        for name, child in model.named_children():
            grads = [p.grad.detach().float() for p in child.parameters() if p.grad is not None]
            if not grads:
                continue
            sq = sum((g * g).sum() for g in grads)
            sq_total = sq_total + sq
            out[f"grad_norm/{name}"] = sq.sqrt()
        out["grad_norm/total"] = sq_total.sqrt()
        pl_module.log_dict(out, on_step=True, on_epoch=False)
