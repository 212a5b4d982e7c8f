"""The hardware bill of a run: circuits and shots a device would have executed, and their price.

Reads the tallies every :class:`~hqexp.quantum.QuantumLayer` keeps (counted at each circuit call,
:mod:`hqexp.quantum.tally`) through a :class:`~hqexp.quantum.bill.BillMeter`: per epoch
(``qpu/epoch/circuits``, ``qpu/epoch/shots``: training and validation of that epoch), for the
test (``qpu/test_circuits``, ``qpu/circuits_per_inference``: circuits per classified sample) and
in total, priced by the run's ``qpu`` profile — always named estimates.
"""

from __future__ import annotations

import lightning as L

from hqexp.callbacks.util import task_model
from hqexp.quantum.bill import BillMeter


class QpuBillCallback(L.Callback):
    """``qpu/*`` metrics and ``qpu.*`` tags of a run with a quantum layer (none without one)."""

    def __init__(self, profile=None) -> None:
        self.profile = profile
        self.meter: BillMeter | None = None
        self._epoch_mark: dict = {}
        self._test_mark: dict | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.meter is not None:
            return  # fit, then test: one window for the whole run
        from hqexp.models import quantum_layers

        self.meter = BillMeter(quantum_layers(task_model(pl_module)).values(), self.profile)
        self._epoch_mark = self.meter.snapshot()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.meter is None or not self.meter.layers:
            return
        epoch = self.meter.since(self._epoch_mark)
        self._epoch_mark = self.meter.snapshot()
        pl_module.log_dict(
            {"qpu/epoch/circuits": float(epoch.circuits), "qpu/epoch/shots": float(self.meter.shots_of(epoch))},
            on_epoch=True,
            on_step=False,
        )

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        if self.meter is not None:
            self._test_mark = self.meter.snapshot()
            self.meter.test_samples = 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.meter is None:
            return
        y = batch[1] if isinstance(batch, (list, tuple)) and len(batch) > 1 else batch
        self.meter.test_samples += int(y.shape[0]) if hasattr(y, "shape") else 1

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if self.meter is not None and self._test_mark is not None:
            from hqexp.quantum.tally import difference

            self.meter.test_counts = difference(self.meter.snapshot(), self._test_mark)

    def metrics(self) -> dict[str, float]:
        return self.meter.metrics() if self.meter is not None else {}

    def tags(self) -> dict[str, str]:
        return self.meter.tags() if self.meter is not None else {}
