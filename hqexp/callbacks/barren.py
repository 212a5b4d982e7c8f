"""Barren-plateau indicators of every QuantumLayer while a model trains."""

from __future__ import annotations

from collections import deque

import lightning as L
import torch

from hqexp.callbacks.util import task_model


class GradientWindow:
    """The last ``window`` gradients of named weight tensors, and their barren-plateau
    indicators: variance over steps (mean over weights), mean |gradient|, and the fraction
    of weights whose windowed mean |gradient| is below ``threshold``."""

    def __init__(self, window: int = 20, threshold: float = 1e-6) -> None:
        if window < 2:
            raise ValueError(f"barren_plateau.window must be >= 2, got {window}")
        if threshold < 0:
            raise ValueError(f"barren_plateau.threshold must be >= 0, got {threshold}")
        self.window, self.threshold = window, threshold
        self._hist: dict[str, deque] = {}

    def push(self, name: str, grad: torch.Tensor) -> None:
        self._hist.setdefault(name, deque(maxlen=self.window)).append(grad.detach().flatten().double().cpu())

    def indicators(self) -> dict[str, float]:
        """``bp/grad_var/<name>``, ``bp/grad_abs/<name>``, ``bp/frac_small/<name>`` (dots → slashes)."""
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
        return out


class BarrenPlateauCallback(L.Callback):
    """Logs ``bp/grad_var/<layer>``, ``bp/grad_abs/<layer>``, ``bp/frac_small/<layer>``.

    Computed at every optimiser step (a [window, n_weights] reduction: cheap), written
    at the trainer's ``log_every_n_steps`` cadence and once more at the end of every
    training epoch, so runs shorter than that cadence still get the indicators.
    """

    def __init__(self, window: int = 20, threshold: float = 1e-6) -> None:
        self.grads = GradientWindow(window, threshold)
        self._pending: dict[str, float] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        from hqexp.models import quantum_layers

        for name, layer in quantum_layers(task_model(pl_module)).items():
            if layer.weights.grad is not None:
                self.grads.push(name, layer.weights.grad)
        out = self.grads.indicators()
        self._pending = out
        if out and (trainer.global_step + 1) % max(trainer.log_every_n_steps, 1) == 0:
            self._emit(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._emit(trainer)

    def _emit(self, trainer) -> None:
        if self._pending and trainer.is_global_zero:
            for lg in trainer.loggers:
                lg.log_metrics(self._pending, step=trainer.global_step)
        self._pending = {}
