"""Measured training energy from an ``hqexp.energy`` meter."""

from __future__ import annotations

import lightning as L


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
