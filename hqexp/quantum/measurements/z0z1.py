"""``z0z1``: ⟨Z_0 Z_1⟩ — a two-body correlator."""

from __future__ import annotations

import torch

from hqexp.quantum.measurements.base import Measurement, label, z_table


class Z0Z1(Measurement):
    name = "z0z1"
    min_qubits = 2

    def table(self, n_qubits: int) -> torch.Tensor:
        z = z_table(n_qubits)
        return (z[:, 0] * z[:, 1]).unsqueeze(-1)

    def from_probs(self, probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
        p = probs.view(probs.shape[0], 4, -1).sum(-1)  # |00>, |01>, |10>, |11> of wires 0, 1
        return (p[:, 0] - p[:, 1] - p[:, 2] + p[:, 3]).unsqueeze(-1)

    def pauli_terms(self, n_qubits: int) -> list[list[tuple[float, str]]]:
        return [[(1.0, label(n_qubits, {0: "Z", 1: "Z"}))]]

    def pennylane(self, wires: list[int]):
        import pennylane as qml

        return qml.expval(qml.PauliZ(wires[0]) @ qml.PauliZ(wires[1]))
