"""What a person watching a run sees: Lightning's bar with latency and energy on a terminal,
one compact line per epoch when the output is a file or a pipe."""

from __future__ import annotations

import sys
import time

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


def _cost(latency, energy) -> str:
    parts = []
    if latency is not None and latency.last_ms_per_sample is not None:
        parts.append(f"Lat: {latency.last_ms_per_sample:.3g} ms")
    if energy is not None and energy.last_mj_per_sample is not None:
        parts.append(f"E: {energy.last_mj_per_sample:.3g} mJ")
    return " | ".join(parts)


class CostProgressBar(TQDMProgressBar):
    """Lightning's bar, with ``Lat: <ms per sample> ms | E: <mJ per sample> mJ`` where measured."""

    def __init__(self, latency, energy, **kw) -> None:
        super().__init__(**kw)
        self.latency, self.energy = latency, energy

    def _cost(self) -> str:
        return _cost(self.latency, self.energy)

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


class EpochLine(L.Callback):
    """One line per epoch — ``epoch 3/20  train/loss=… val/loss=… val/<main>=…  Lat: … ms  (1.2 s)`` —
    for output that is not a terminal, where a progress bar would write kilobytes of redraws."""

    KEYS = ("train/loss", "val/loss", "val/acc", "val/f1_macro", "val/auroc_macro", "val/rmse")

    def __init__(self, latency=None, energy=None, stream=None) -> None:
        self.latency, self.energy, self.stream = latency, energy, stream or sys.stdout
        self._t0 = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # after the epoch's validation
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        shown = "  ".join(f"{k}={float(m[k]):.4g}" for k in self.KEYS if k in m)
        cost = _cost(self.latency, self.energy)
        print(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}"
            f"{'  ' + cost if cost else ''}  ({time.perf_counter() - self._t0:.2f} s)",
            file=self.stream,
            flush=True,
        )
