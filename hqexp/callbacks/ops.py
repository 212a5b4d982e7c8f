"""Operations per classification and their estimated energy (``ops/*``, ``energy_est/*``).

Counted by :class:`~hqexp.energy.ops.OpCounter` hooks over the whole test set, priced by the
run's ``ops_energy`` profile (a named per-operation energy table): an estimate, always under
``energy_est/*`` and tagged ``energy_est_source``, never under the measured ``energy/*`` names.
The quantum layers' work is reported as gates and circuits only.
"""

from __future__ import annotations

import lightning as L

from hqexp.callbacks.util import task_model
from hqexp.energy.ops import OpCounter, OpCounts, OpEnergy, uncountable, weight_bytes
from hqexp.errors import ConfigError


class OpsCallback(L.Callback):
    """``ops/*`` and ``energy_est/j_per_inference`` of the test set (``profile``: an OpEnergy)."""

    def __init__(self, profile: OpEnergy | None = None) -> None:
        self.profile = profile
        self.counter: OpCounter | None = None
        self.samples = 0
        self.counts: OpCounts | None = None
        self.model = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.model = task_model(pl_module)
        layer = uncountable(self.model)
        if layer is not None:
            raise ConfigError(
                f"callbacks.ops: cannot count the operations of layer {layer}; "
                "set callbacks.ops.enabled=false for this model"
            )

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.counter, self.samples = OpCounter(task_model(pl_module)), 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.samples += int(x.shape[0]) if hasattr(x, "shape") else 1

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if self.counter is None:
            return
        self.counts = self.counter.per_sample(self.samples)
        self.counter.close()
        self.counter = None

    def metrics(self) -> dict[str, float]:
        if self.counts is None or not self.samples:
            return {}
        out = self.counts.metrics()
        out["ops/weight_bytes"] = weight_bytes(self.model)
        if self.profile is not None:
            out["energy_est/j_per_inference"] = self.profile.joules(self.counts)
        return out

    def tags(self) -> dict[str, str]:
        if self.counts is None or self.profile is None:
            return {}
        quantum = "; quantum layers: gates and circuits only (ops/quantum/*), no joules" if self.counts.circuits else ""
        return {
            "energy_est_source": f"ops:{self.profile.name}",
            "energy_est.note": f"estimate: {self.profile.source}; compute of Linear/Conv layers only, memory traffic "
            f"and element-wise work not counted{quantum}",
        }
