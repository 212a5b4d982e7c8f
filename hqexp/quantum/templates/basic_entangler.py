"""``basic_entangler``: PennyLane's ``BasicEntanglerLayers`` with RX: one RX per qubit, then a
ring of entanglers (a single pair for two qubits)."""

from __future__ import annotations

from typing import Any

from hqexp.quantum.templates.base import HALF_PI, Template


class BasicEntangler(Template):
    name = "basic_entangler"
    rotations = ("RX",)
    # RX(θ) = [[c, -is], [-is, c]]
    trig_form = (((0.5,) * 4,), (0, -HALF_PI, -HALF_PI, 0), ((0, 0, 0, 0),), (0, -HALF_PI, -HALF_PI, 0))

    def entangling_pairs(self, n_qubits: int, layer: int) -> tuple[tuple[int, int], ...]:
        if n_qubits == 1:
            return ()
        if n_qubits == 2:
            return ((0, 1),)
        return tuple((i, (i + 1) % n_qubits) for i in range(n_qubits))

    def pennylane_layers(self, ansatz, weights: Any, wires: list[int], two: Any) -> None:
        import pennylane as qml

        if ansatz.entangler == "cnot":
            qml.BasicEntanglerLayers(weights, wires=wires, rotation=qml.RX)
        else:  # PennyLane's template knows only CNOT
            super().pennylane_layers(ansatz, weights, wires, two)
