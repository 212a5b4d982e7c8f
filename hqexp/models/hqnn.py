"""HQNN regressor: pre-autoencoder → quantum circuit → post-autoencoder, and its classical twin.

The pre-autoencoder is a real autoencoder: its encoder compresses the inputs to
``n_qubits`` angles (π·tanh, the rotation range) and its decoder reconstructs the
inputs from them; the reconstruction error is added to the loss with weight
``recon_weight`` so the compressed code keeps the inputs' information rather than
only what the first epochs found useful. The post-autoencoder decodes the circuit's
outputs to the target. The twin replaces only the circuit, by a
:class:`~hqexp.models.baselines.MatchedBlock` with (nearly) its parameter count.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from hqexp.models.baselines import MatchedBlock
from hqexp.models.vqc import AngleScale
from hqexp.quantum import Ansatz, QuantumLayer


class _HQNNBase(nn.Module):
    task = "regression"

    def __init__(self, n_features: int, n_outputs: int, ansatz: Ansatz, hidden: int, recon_weight: float) -> None:
        super().__init__()
        if recon_weight < 0:
            raise ValueError(f"model.recon_weight must be >= 0, got {recon_weight}")
        self.recon_weight = recon_weight
        n = ansatz.n_qubits
        self.pre_encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, n), AngleScale())
        self.pre_decoder = nn.Sequential(nn.Linear(n, hidden), nn.Tanh(), nn.Linear(hidden, n_features))
        self.post_decoder = nn.Sequential(nn.Linear(ansatz.n_out, hidden), nn.Tanh(), nn.Linear(hidden, n_outputs))

    def core(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post_decoder(self.core(self.pre_encoder(x)))

    def reconstruction_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the pre-autoencoder reconstructing ``x``."""
        return nn.functional.mse_loss(self.pre_decoder(self.pre_encoder(x)), x)


class HQNNAutoencoder(_HQNNBase):
    """``x → pre-encoder → π·tanh → QuantumLayer → post-decoder → ŷ`` (+ pre-decoder for reconstruction)."""

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        quantum: Mapping,
        backend: Mapping,
        hidden: int = 16,
        recon_weight: float = 0.1,
        init: str = "uniform",
    ) -> None:
        ansatz = Ansatz.from_config(quantum)
        super().__init__(n_features, n_outputs, ansatz, hidden, recon_weight)
        self.quantum = QuantumLayer.from_config(ansatz, backend, init=init)

    def core(self, z: torch.Tensor) -> torch.Tensor:
        return self.quantum(z)


class HQNNClassical(_HQNNBase):
    """The classical twin: the circuit replaced by a parameter-matched tanh block."""

    def __init__(
        self, n_features: int, n_outputs: int, quantum: Mapping, hidden: int = 16, recon_weight: float = 0.1
    ) -> None:
        ansatz = Ansatz.from_config(quantum)
        super().__init__(n_features, n_outputs, ansatz, hidden, recon_weight)
        self.classical = MatchedBlock(ansatz.n_qubits, ansatz.n_out, ansatz.n_weights)

    def core(self, z: torch.Tensor) -> torch.Tensor:
        return self.classical(z)
