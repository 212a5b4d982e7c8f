"""``strongly_entangling``: PennyLane's ``StronglyEntanglingLayers`` with its default ranges.

Per layer: ``Rot(φ, θ, ω) = RZ(ω)·RY(θ)·RZ(φ)`` on every qubit, then a ring of entanglers
``(i, i + r mod n)`` with range ``r = (layer mod (n − 1)) + 1``.
"""

from __future__ import annotations

from typing import Any

from hqexp.quantum.templates.base import HALF_PI, Template


class StronglyEntangling(Template):
    name = "strongly_entangling"
    rotations = ("RZ", "RY", "RZ")
    # Rot(φ,θ,ω) = [[e^{-ia}c, -e^{ib}s], [e^{-ib}s, e^{ia}c]], a = (φ+ω)/2, b = (φ-ω)/2,
    # c = cos θ/2, s = sin θ/2 (-s = cos(θ/2 + π/2)).
    trig_form = (
        ((0, 0, 0, 0), (0.5,) * 4, (0, 0, 0, 0)),
        (0, HALF_PI, -HALF_PI, 0),
        ((-0.5, 0.5, -0.5, 0.5), (0, 0, 0, 0), (-0.5, -0.5, 0.5, 0.5)),
        (0, 0, 0, 0),
    )

    def entangling_pairs(self, n_qubits: int, layer: int) -> tuple[tuple[int, int], ...]:
        if n_qubits == 1:
            return ()
        r = (layer % (n_qubits - 1)) + 1  # PennyLane's default ranges
        return tuple((i, (i + r) % n_qubits) for i in range(n_qubits))

    def pennylane_layers(self, ansatz, weights: Any, wires: list[int], two: Any) -> None:
        import pennylane as qml

        qml.StronglyEntanglingLayers(weights, wires=wires, imprimitive=two)

    def pennylane_layer(self, ansatz, weights: Any, layer: int, two: Any) -> None:
        import pennylane as qml

        n = ansatz.n_qubits
        if n == 1:
            qml.Rot(*(weights[..., layer, 0, j] for j in range(3)), wires=0)
            return
        qml.StronglyEntanglingLayers(
            weights[..., layer : layer + 1, :, :], wires=list(range(n)), ranges=[(layer % (n - 1)) + 1], imprimitive=two
        )
