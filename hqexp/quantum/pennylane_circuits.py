"""PennyLane QNodes for an :class:`Ansatz`, built from PennyLane's own templates.

Kept apart from ``backends.py`` so that importing hqexp never imports PennyLane.
"""

from __future__ import annotations

from collections.abc import Callable

import pennylane as qml

from hqexp.quantum.ansatz import Ansatz

_ROT = {"angle_x": "X", "angle_y": "Y", "angle_z": "Z"}


def _pair_block(ansatz: Ansatz, inputs) -> None:
    gate = {"crx": qml.CRX, "cry": qml.CRY, "crz": qml.CRZ}[ansatz.pair_gate]
    for p, (c, t) in enumerate(ansatz.pairs()):
        gate(inputs[..., ansatz.n_qubits + p], wires=[c, t])


def _layers(ansatz: Ansatz, weights, wires, inputs=None) -> None:
    n = ansatz.n_qubits
    two = qml.CNOT if ansatz.entangler == "cnot" else qml.CZ
    if ansatz.pre_rotation is not None:
        name, angle = ansatz.pre_rotation
        for q in range(n):
            getattr(qml, name)(angle, wires=q)
    if ansatz.pair_gate:
        # The learned-entanglement block sits after every layer: apply the templates one
        # layer at a time (StronglyEntanglingLayers with that layer's default range).
        for layer in range(ansatz.n_layers):
            if ansatz.template == "strongly_entangling":
                r = (layer % (n - 1)) + 1
                qml.StronglyEntanglingLayers(weights[..., layer:layer + 1, :, :], wires=wires, ranges=[r],
                                             imprimitive=two)
            else:
                _manual_layer(ansatz, weights, layer, two)
            _pair_block(ansatz, inputs)
        return
    if ansatz.template == "strongly_entangling":
        qml.StronglyEntanglingLayers(weights, wires=wires, imprimitive=two)
    elif ansatz.template == "basic_entangler" and ansatz.entangler == "cnot":
        qml.BasicEntanglerLayers(weights, wires=wires, rotation=qml.RX)
    else:
        # hardware_efficient and random_pauli (no PennyLane template), or basic_entangler with CZ.
        for layer in range(ansatz.n_layers):
            _manual_layer(ansatz, weights, layer, two)


def _manual_layer(ansatz: Ansatz, weights, layer: int, two) -> None:
    for q in range(ansatz.n_qubits):
        if ansatz.template == "basic_entangler":
            qml.RX(weights[..., layer, q], wires=q)
        elif ansatz.template == "random_pauli":
            getattr(qml, ansatz.pauli_choices[layer][q])(weights[..., layer, q], wires=q)
        elif ansatz.template == "strongly_entangling":
            qml.Rot(*(weights[..., layer, q, j] for j in range(3)), wires=q)
        else:
            qml.RY(weights[..., layer, q, 0], wires=q)
            qml.RZ(weights[..., layer, q, 1], wires=q)
    for c, t in ansatz.entangling_pairs(layer):
        two(wires=[c, t])


def _measure(ansatz: Ansatz, wires):
    n = ansatz.n_qubits
    m = ansatz.measurement
    if m == "z_each":
        return [qml.expval(qml.PauliZ(w)) for w in wires]
    if m == "z0":
        return qml.expval(qml.PauliZ(0))
    if m == "z0z1":
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(1))
    if m == "global_projector":
        return qml.expval(qml.Projector([0] * n, wires=wires))
    # local_projector: (1/n) Σ_j |0><0|_j as one observable
    return qml.expval(qml.sum(*[qml.s_prod(1.0 / n, qml.Projector([0], wires=[w])) for w in wires]))


def build_qnode(ansatz: Ansatz, device: str, diff_method: str, shots: int | None = None) -> Callable:
    """A torch-interface QNode ``f(inputs, weights)`` for ``ansatz`` on ``device``."""
    wires = list(range(ansatz.n_qubits))
    dev = qml.device(device, wires=wires)

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs[..., : ansatz.n_qubits], wires=wires, rotation=_ROT[ansatz.embedding])
        _layers(ansatz, weights, wires, inputs)
        return _measure(ansatz, wires)

    if shots is not None:
        circuit = qml.set_shots(circuit, shots=shots)
    return circuit
