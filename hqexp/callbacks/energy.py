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
        self.test_samples = 0
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

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.test_samples = 0
        self.meter.start()  # the model is warm: the test follows training (or eval's first batches)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.test_samples += int(x.shape[0]) if hasattr(x, "shape") else 1
        if self.meter.available and batch_idx % self.poll_every == 0:
            self.meter.poll()

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        """``energy/j_per_inference``: the test's measured joules per classified sample (when the window
        was long enough for the counter; single process only)."""
        reading = self.meter.elapsed()
        if reading is None or not self.test_samples or trainer.world_size > 1:
            return
        pl_module.log_dict(
            {
                "energy/j_per_inference": reading.joules / self.test_samples,
                "energy/test_watts": reading.joules / reading.seconds,
            },
            on_epoch=True,
            on_step=False,
        )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        reading = self.meter.elapsed()
        joules, seconds, samples = (reading.joules, reading.seconds) if reading else (0.0, 0.0), self.samples
        ok = reading is not None
        if trainer.world_size > 1:  # every rank takes part, or the collectives below would hang
            joules, seconds, samples, ok = self._job_totals(trainer, pl_module, joules, seconds, ok)
        if not ok or not samples:
            return
        self.last_mj_per_sample = 1e3 * joules / samples
        pl_module.log_dict(
            {"energy/joules": joules, "energy/j_per_sample": joules / samples, "energy/watts": joules / seconds},
            on_epoch=True,
            on_step=False,
            sync_dist=True,
        )

    def _job_totals(self, trainer, pl_module, joules: float, seconds: float, ok: bool):
        """The whole data-parallel job's joules and samples: NVML reads one GPU per rank, so the
        ranks' joules add up; RAPL reads the whole CPU package, which every rank on the host
        shares, so rank 0's reading stands for the job (on one host; on several, for host 0)."""
        import torch

        t = torch.tensor(
            [joules, seconds, float(self.samples), float(ok)], dtype=torch.float64, device=pl_module.device
        )
        total = trainer.strategy.reduce(t, reduce_op="sum").tolist()
        world = trainer.world_size
        if self.meter.source.startswith("nvml"):
            joules, seconds = total[0], total[1] / world
        else:
            joules, seconds = trainer.strategy.broadcast((joules, seconds), src=0)
        return joules, seconds, total[2], total[3] == world
