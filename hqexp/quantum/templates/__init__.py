"""Circuit templates, one object each, found by the names used in ``model.quantum.template``."""

from hqexp.quantum.templates.base import Template, rotation_matrix
from hqexp.quantum.templates.basic_entangler import BasicEntangler
from hqexp.quantum.templates.hardware_efficient import HardwareEfficient
from hqexp.quantum.templates.random_pauli import PAULI_ROTATIONS, RandomPauli, pauli_table
from hqexp.quantum.templates.strongly_entangling import StronglyEntangling

REGISTRY: dict[str, Template] = {
    t.name: t for t in (StronglyEntangling(), BasicEntangler(), HardwareEfficient(), RandomPauli())
}

__all__ = ["PAULI_ROTATIONS", "REGISTRY", "Template", "pauli_table", "rotation_matrix"]
