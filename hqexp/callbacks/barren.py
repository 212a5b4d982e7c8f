"""Barren-plateau indicators of every QuantumLayer while a model trains."""

from __future__ import annotations

from collections import deque

import lightning as L
import torch

from hqexp.callbacks._util import _model


class BarrenPlateauCallback(L.Callback):
    """Logs ``bp/grad_var/<layer>``, ``bp/grad_abs/<layer>``, ``bp/frac_small/<layer>``.

    Computed at every optimiser step (a [window, n_weights] reduction: cheap) and written
    at the trainer's ``log_every_n_steps`` cadence, like every other step metric.
    """

    def __init__(self, window: int = 20, threshold: float = 1e-6) -> None:
        if window < 2:
            raise ValueError(f"barren_plateau.window must be >= 2, got {window}")
        if threshold < 0:
            raise ValueError(f"barren_plateau.threshold must be >= 0, got {threshold}")
        self.window, self.threshold = window, threshold
        self._hist: dict[str, deque] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        from hqexp.models import quantum_layers

        layers = quantum_layers(_model(pl_module))
        for name, layer in layers.items():
            g = layer.weights.grad
            if g is None:
                continue
            self._hist.setdefault(name, deque(maxlen=self.window)).append(g.detach().flatten().double().cpu())
        out = {}
        for name, hist in self._hist.items():
            if len(hist) < 2:
                continue
            G = torch.stack(tuple(hist))  # [steps, n_weights]
            mean_abs = G.abs().mean(0)
            key = name.replace(".", "/")
            out[f"bp/grad_var/{key}"] = G.var(0, unbiased=True).mean().item()
            out[f"bp/grad_abs/{key}"] = mean_abs.mean().item()
            out[f"bp/frac_small/{key}"] = (mean_abs < self.threshold).double().mean().item()
        if out:
            pl_module.log_dict(out, on_step=True, on_epoch=False)
