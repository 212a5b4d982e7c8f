"""``local_projector``: (1/n) Σ_j ⟨|0⟩⟨0|_j⟩ — the local cost of Cerezo et al. (2021)."""

from __future__ import annotations

import torch

from hqexp.quantum.measurements.base import Measurement, label, z_table


class LocalProjector(Measurement):
    name = "local_projector"

    def table(self, n_qubits: int) -> torch.Tensor:
        return (1 + z_table(n_qubits).mean(-1, keepdim=True)) / 2  # |0><0| = (1 + Z)/2

    def from_probs(self, probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
        from hqexp.quantum.measurements.z_each import ZEach

        return (1 + ZEach().from_probs(probs, n_qubits).mean(-1, keepdim=True)) / 2

    def pauli_terms(self, n_qubits: int) -> list[list[tuple[float, str]]]:
        half = 0.5 / n_qubits
        return [[(0.5, "I" * n_qubits), *((half, label(n_qubits, {w: "Z"})) for w in range(n_qubits))]]

    def pennylane(self, wires: list[int]):
        import pennylane as qml

        n = len(wires)
        return qml.expval(qml.sum(*[qml.s_prod(1.0 / n, qml.Projector([0], wires=[w])) for w in wires]))
