"""``z_each``: ⟨Z_i⟩ on every qubit — one output per qubit."""

from __future__ import annotations

import torch

from hqexp.quantum.measurements.base import Measurement, label, z_table

#: above this width the ``[2**n, n]`` table is larger than reducing the probabilities per wire
TABLE_MAX_QUBITS = 16


class ZEach(Measurement):
    name = "z_each"
    scalar = False

    def n_out(self, n_qubits: int) -> int:
        return n_qubits

    def table(self, n_qubits: int) -> torch.Tensor:
        return z_table(n_qubits)

    def from_probs(self, probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
        if n_qubits <= TABLE_MAX_QUBITS:
            return super().from_probs(probs, n_qubits)
        B = probs.shape[0]
        halves = [probs.view(B, 2**i, 2, -1).sum((1, 3)) for i in range(n_qubits)]
        return torch.stack([h[:, 0] - h[:, 1] for h in halves], dim=-1)

    def single_shot_variance(self, probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
        return 1 - self.from_probs(probs, n_qubits).square()

    def pauli_terms(self, n_qubits: int) -> list[list[tuple[float, str]]]:
        return [[(1.0, label(n_qubits, {w: "Z"}))] for w in range(n_qubits)]

    def pennylane(self, wires: list[int]):
        import pennylane as qml

        return [qml.expval(qml.PauliZ(w)) for w in wires]
