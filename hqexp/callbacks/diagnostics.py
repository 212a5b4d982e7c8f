"""Trainability and cost, measured while a model trains.

* :class:`BarrenPlateauCallback` — per ``QuantumLayer``: variance and mean |·| of its
  weight gradients over a sliding window of optimiser steps, and the fraction of
  weights whose windowed mean |gradient| is below a threshold.
* :class:`LatencyCallback` — wall time of the model's forward pass per sample, after
  warm-up, from forward hooks (so it times exactly the model, not the data loader).
* :class:`EnergyCallback` — joules from a hardware counter (``hqexp.energy``) over
  the training window, per training sample; nothing is logged when unmeasured.
* :class:`CostProgressBar` — the tqdm bar with ``Lat: … ms | E: … mJ`` appended.
"""

from __future__ import annotations

import time
from collections import deque

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar


def _model(pl_module) -> torch.nn.Module:
    return getattr(pl_module, "model", pl_module)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


class LatencyCallback(L.Callback):
    """Forward-pass wall time: ``latency/ms_per_sample`` and ``latency/ms_per_batch`` (inference,
    from validation/test batches) and ``latency/train_ms_per_sample`` (training forwards)."""

    def __init__(self, warmup_batches: int = 3) -> None:
        if warmup_batches < 0:
            raise ValueError(f"latency.warmup_batches must be >= 0, got {warmup_batches}")
        self.warmup = warmup_batches
        self._handles: list = []
        self._t0: float | None = None
        self._seen = {"train": 0, "eval": 0}
        self._acc = {"train": [0.0, 0, 0], "eval": [0.0, 0, 0]}  # seconds, samples, batches
        self.last_ms_per_sample: float | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        model = _model(pl_module)

        def pre(module, args):
            _sync(pl_module.device)
            self._t0 = time.perf_counter()

        def post(module, args, output):
            if self._t0 is None:
                return
            _sync(pl_module.device)
            dt = time.perf_counter() - self._t0
            self._t0 = None
            phase = "train" if module.training else "eval"
            self._seen[phase] += 1
            if self._seen[phase] <= self.warmup:
                return  # first calls pay for allocation, caching and lazy init
            n = args[0].shape[0] if args and hasattr(args[0], "shape") else 1
            acc = self._acc[phase]
            acc[0] += dt
            acc[1] += n
            acc[2] += 1

        self._handles = [model.register_forward_pre_hook(pre), model.register_forward_hook(post)]

    def teardown(self, trainer, pl_module, stage: str) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _flush(self, pl_module, phase: str) -> None:
        secs, samples, batches = self._acc[phase]
        if not samples:
            return
        if phase == "train":
            pl_module.log("latency/train_ms_per_sample", 1e3 * secs / samples, on_epoch=True, on_step=False)
        else:
            self.last_ms_per_sample = 1e3 * secs / samples
            pl_module.log_dict({"latency/ms_per_sample": self.last_ms_per_sample,
                                "latency/ms_per_batch": 1e3 * secs / batches}, on_epoch=True, on_step=False)
        self._acc[phase] = [0.0, 0, 0]

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._flush(pl_module, "train")

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._flush(pl_module, "eval")
        else:
            self._acc["eval"] = [0.0, 0, 0]

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._flush(pl_module, "eval")


class EnergyCallback(L.Callback):
    """Measured training energy: ``energy/joules``, ``energy/j_per_sample``, ``energy/watts``.

    The window opens at the start of training and is read at each epoch end; a reading
    exists only once the window is long enough for the counter (see ``hqexp.energy``).
    """

    def __init__(self, meter, poll_every_n_batches: int = 50) -> None:
        self.meter = meter
        self.poll_every = max(1, poll_every_n_batches)
        self.samples = 0
        self.last_mj_per_sample: float | None = None

    @property
    def source(self) -> str:
        return self.meter.source

    def on_train_start(self, trainer, pl_module) -> None:
        self.samples = 0
        self.meter.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.samples += int(x.shape[0]) if hasattr(x, "shape") else 1
        if self.meter.available and batch_idx % self.poll_every == 0:
            self.meter.poll()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        reading = self.meter.elapsed()
        if reading is None or not self.samples:
            return
        self.last_mj_per_sample = 1e3 * reading.joules / self.samples
        pl_module.log_dict({"energy/joules": reading.joules, "energy/j_per_sample": reading.joules / self.samples,
                            "energy/watts": reading.joules / reading.seconds}, on_epoch=True, on_step=False)


class CostProgressBar(TQDMProgressBar):
    """Lightning's bar, with ``Lat: <ms per sample> ms | E: <mJ per sample> mJ`` where measured."""

    def __init__(self, latency: LatencyCallback | None, energy: EnergyCallback | None, **kw) -> None:
        super().__init__(**kw)
        self.latency, self.energy = latency, energy

    def _cost(self) -> str:
        parts = []
        if self.latency is not None and self.latency.last_ms_per_sample is not None:
            parts.append(f"Lat: {self.latency.last_ms_per_sample:.3g} ms")
        if self.energy is not None and self.energy.last_mj_per_sample is not None:
            parts.append(f"E: {self.energy.last_mj_per_sample:.3g} mJ")
        return " | ".join(parts)

    def _postfix(self, trainer, pl_module) -> str:
        metrics = self.get_metrics(trainer, pl_module)
        items = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()]
        return ", ".join(items + ([self._cost()] if self._cost() else []))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.train_progress_bar is not None and not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix_str(self._postfix(trainer, pl_module), refresh=False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.train_progress_bar is not None and not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix_str(self._postfix(trainer, pl_module))
