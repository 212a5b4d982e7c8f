"""``z0``: ⟨Z⟩ on wire 0 — a local cost."""

from __future__ import annotations

import torch

from hqexp.quantum.measurements.base import Measurement, label, z_table


class Z0(Measurement):
    name = "z0"

    def table(self, n_qubits: int) -> torch.Tensor:
        return z_table(n_qubits)[:, :1]

    def from_probs(self, probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
        half = probs.view(probs.shape[0], 2, -1).sum(-1)  # wire 0 is the most significant bit
        return half[:, :1] - half[:, 1:]

    def pauli_terms(self, n_qubits: int) -> list[list[tuple[float, str]]]:
        return [[(1.0, label(n_qubits, {0: "Z"}))]]

    def pennylane(self, wires: list[int]):
        import pennylane as qml

        return qml.expval(qml.PauliZ(wires[0]))
