"""Classical twins and baselines."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from hqexp.models.vqc import AngleScale
from hqexp.quantum import Ansatz


class MatchedBlock(nn.Module):
    """A classical stand-in for a QuantumLayer: ``n_in → h → n_out`` with tanh,
    ``h`` chosen so its parameter count is as close as possible to ``target``."""

    def __init__(self, n_in: int, n_out: int, target: int) -> None:
        super().__init__()
        # params(h) = n_in*h + h + h*n_out + n_out
        h = max(1, round((target - n_out) / (n_in + 1 + n_out)))
        self.net = nn.Sequential(nn.Linear(n_in, h), nn.Tanh(), nn.Linear(h, n_out), nn.Tanh())
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPClassifier(nn.Module):
    """The classical twin of :class:`~hqexp.models.vqc.VQCClassifier`.

    Same encoder and head; the circuit described by ``quantum`` is replaced by a
    :class:`MatchedBlock` of about its parameter count.
    """

    def __init__(self, n_features: int, n_classes: int, quantum: Mapping, hidden: int = 16) -> None:
        super().__init__()
        ansatz = Ansatz.from_config(quantum)
        self.encoder = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, ansatz.n_qubits), AngleScale()
        )
        self.classical = MatchedBlock(ansatz.n_qubits, ansatz.n_out, ansatz.n_weights)
        self.head = nn.Linear(ansatz.n_out, n_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """Ordered ``(name, module)`` stages (what split learning cuts between)."""
        return [("encoder", self.encoder), ("classical", self.classical), ("head", self.head)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.classical(self.encoder(x)))
