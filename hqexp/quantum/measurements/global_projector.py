"""``global_projector``: ⟨|0…0⟩⟨0…0|⟩ — the global cost of Cerezo et al. (2021)."""

from __future__ import annotations

import itertools

import torch

from hqexp.quantum.measurements.base import Measurement


class GlobalProjector(Measurement):
    name = "global_projector"

    def table(self, n_qubits: int) -> torch.Tensor:
        t = torch.zeros(2**n_qubits, 1, dtype=torch.float64)
        t[0] = 1
        return t

    def from_probs(self, probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
        return probs[:, :1]

    def pauli_terms(self, n_qubits: int) -> list[list[tuple[float, str]]]:
        # |0><0|^{⊗n} = Π_j (I + Z_j)/2 = 2^-n Σ_{S ⊆ wires} Z_S
        scale = 2.0**-n_qubits
        return [
            [(scale, "".join("Z" if b else "I" for b in bits)) for bits in itertools.product((0, 1), repeat=n_qubits)]
        ]

    def pennylane(self, wires: list[int]):
        import pennylane as qml

        return qml.expval(qml.Projector([0] * len(wires), wires=wires))
