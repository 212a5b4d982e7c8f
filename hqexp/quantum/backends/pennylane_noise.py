"""``default_qubit`` with noise: PennyLane's ``default.mixed`` running the circuit as the device
runs it (routing included), gate by gate, each gate followed by PennyLane's own channels —
``ThermalRelaxationError`` and ``DepolarizingChannel`` (two-qubit depolarizing, which PennyLane
lacks, as a ``QubitChannel`` of its Kraus operators). The distribution it returns goes through the
readout error as a measure-and-prepare channel just before the measurement (its diagonal is the
assignment matrix times the distribution), so PennyLane's own sampler draws the shots with it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.noise import channels as ch
from hqexp.quantum.noise.model import NoiseModel


def readout_kraus(p01: float, p10: float) -> list:
    """A readout error as a channel before the measurement: |0⟩ read as 1 with ``p01``, |1⟩ as 0 with ``p10``."""
    import numpy as np

    return [
        np.array([[np.sqrt(1 - p01), 0], [0, 0]], dtype=complex),
        np.array([[0, 0], [np.sqrt(p01), 0]], dtype=complex),
        np.array([[0, np.sqrt(p10)], [0, 0]], dtype=complex),
        np.array([[0, 0], [0, np.sqrt(1 - p10)]], dtype=complex),
    ]


def _noise_after(qml, model: NoiseModel, step) -> None:
    if len(step.wires) == 1:
        if model.virtual_rz and step.name == "RZ":
            return
        (q,) = step.wires
        for _ in range(model.pulses_per_rotation):
            if model.t1 is not None and model.gate_1q_s is not None and model.gate_1q_s[q] > 0:
                qml.ThermalRelaxationError(0.0, model.t1[q], model.t2[q], model.gate_1q_s[q], wires=q)
            if model.p1 is not None and model.p1[q] > 0:
                qml.DepolarizingChannel(model.p1[q], wires=q)
        return
    a, b = step.wires
    reps = 2 if step.name.startswith("CR") else 1
    dur = model.edge(model.gate_2q_s, a, b) if model.gate_2q_s is not None else 0.0
    p = model.edge(model.p2, a, b) if model.p2 is not None else 0.0
    for _ in range(reps):
        if model.t1 is not None and dur > 0:
            qml.ThermalRelaxationError(0.0, model.t1[a], model.t2[a], dur, wires=a)
            qml.ThermalRelaxationError(0.0, model.t1[b], model.t2[b], dur, wires=b)
        if p > 0:
            qml.QubitChannel(list(ch.depolarizing_kraus(p, 2)), wires=[a, b])


def build_noisy_qnode(
    ansatz: Ansatz, model: NoiseModel, diff_method: str, shots: int | None, seed: int | None
) -> Callable:
    """``f(inputs, weights) -> [.., n_out]``: the noisy circuit on ``default.mixed``."""
    import pennylane as qml

    n = ansatz.n_qubits
    dev = qml.device("default.mixed", wires=n, **({"seed": seed} if seed is not None and shots else {}))
    gate = {"RX": qml.RX, "RY": qml.RY, "RZ": qml.RZ, "CRX": qml.CRX, "CRY": qml.CRY, "CRZ": qml.CRZ}
    steps = model.steps(ansatz)
    shape = ansatz.weight_shape

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def circuit(inputs, weights):
        w = weights.reshape(*weights.shape[: weights.dim() - len(shape)], -1)
        for step in steps:
            if step.name in ("CNOT", "CZ"):
                (qml.CNOT if step.name == "CNOT" else qml.CZ)(wires=list(step.wires))
            else:
                kind, v = step.param
                angle = float(v) if kind == "c" else (w[..., int(v)] if kind == "w" else inputs[..., int(v)])
                gate[step.name](angle, wires=list(step.wires) if len(step.wires) > 1 else step.wires[0])
            _noise_after(qml, model, step)
        if model.readout_err is not None:
            for q, (p01, p10) in enumerate(model.readout_err):
                qml.QubitChannel(readout_kraus(p01, p10), wires=q)
        return qml.probs(wires=list(range(n)))

    if shots is not None:
        circuit = qml.set_shots(circuit, shots=shots)

    def run(inputs, weights):
        probs = torch.as_tensor(circuit(inputs, weights))
        single = probs.dim() == 1
        probs = probs.reshape(-1, 2**n)
        out = ansatz.observable.from_probs(probs, n)
        return out[0] if single else out

    return run
