"""Measurements, one object each, found by the names used in ``model.quantum.measurement``."""

from hqexp.quantum.measurements.base import Measurement, z_table
from hqexp.quantum.measurements.global_projector import GlobalProjector
from hqexp.quantum.measurements.local_projector import LocalProjector
from hqexp.quantum.measurements.z0 import Z0
from hqexp.quantum.measurements.z0z1 import Z0Z1
from hqexp.quantum.measurements.z_each import TABLE_MAX_QUBITS, ZEach

REGISTRY: dict[str, Measurement] = {m.name: m for m in (ZEach(), Z0(), Z0Z1(), GlobalProjector(), LocalProjector())}

__all__ = ["REGISTRY", "TABLE_MAX_QUBITS", "Measurement", "z_table"]
