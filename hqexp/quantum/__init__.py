"""Quantum core: one circuit description (:class:`Ansatz`), many executors."""

from hqexp.quantum.ansatz import EMBEDDINGS, ENTANGLERS, MEASUREMENTS, TEMPLATES, Ansatz, Gate
from hqexp.quantum.backends import available_backends, backend_names, from_config, get_backend, resolve_backend
from hqexp.quantum.layer import QuantumLayer, expval

__all__ = [
    "Ansatz",
    "Gate",
    "QuantumLayer",
    "expval",
    "available_backends",
    "backend_names",
    "from_config",
    "get_backend",
    "resolve_backend",
    "EMBEDDINGS",
    "TEMPLATES",
    "MEASUREMENTS",
    "ENTANGLERS",
]
