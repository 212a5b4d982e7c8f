"""The hybrid tabular classifier: encoder -> QuantumLayer -> head."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from hqexp.quantum import Ansatz, QuantumLayer


class AngleScale(nn.Module):
    """Map real features into rotation angles in (-π, π) with ``π·tanh``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return math.pi * torch.tanh(x)


class VQCClassifier(nn.Module):
    """``Linear(n_features→hidden)→ReLU→Linear(→n_qubits)→π·tanh→QuantumLayer→Linear(→n_classes)``.

    Args:
        n_features, n_classes: from the dataset.
        hidden: width of the classical encoder.
        quantum: :class:`~hqexp.quantum.Ansatz` fields.
        backend: ``{name, fallback, options}`` as in ``conf/backend/*.yaml``.
        init: weight initialisation of the QuantumLayer.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        quantum: Mapping,
        backend: Mapping,
        hidden: int = 16,
        init: str = "uniform",
    ) -> None:
        super().__init__()
        ansatz = Ansatz.from_config(quantum)
        self.encoder = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, ansatz.n_qubits), AngleScale()
        )
        self.quantum = QuantumLayer.from_config(ansatz, backend, init=init)
        self.head = nn.Linear(ansatz.n_out, n_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """Ordered ``(name, module)`` stages (what split learning cuts between)."""
        return [("encoder", self.encoder), ("quantum", self.quantum), ("head", self.head)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.quantum(self.encoder(x)))
