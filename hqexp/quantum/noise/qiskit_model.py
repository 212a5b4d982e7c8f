"""The same noise as a qiskit-aer ``NoiseModel`` built from Qiskit's own error constructors
(``depolarizing_error``, ``thermal_relaxation_error``, ``ReadoutError``), so the torch
executor is checked against an independent implementation of every channel.

Qubits: the Aer backend runs position ``i`` on Qiskit qubit ``n − 1 − i`` (Qiskit's little-endian
basis index then equals hqexp's big-endian one).
"""

from __future__ import annotations

from hqexp.quantum.noise import channels as ch
from hqexp.quantum.noise.model import NoiseModel


def _qubit(n: int, position: int) -> int:
    return n - 1 - position


def aer_noise_model(model: NoiseModel, readout: bool = True):
    """A ``qiskit_aer.noise.NoiseModel`` of ``model`` on ``model.n`` qubits (gate errors on rx, ry,
    rz — not rz where it is virtual —, cx and cz; the readout error on measure with ``readout``)."""
    from qiskit_aer.noise import NoiseModel as AerNoiseModel
    from qiskit_aer.noise import ReadoutError, depolarizing_error, thermal_relaxation_error

    n = model.n
    out = AerNoiseModel(basis_gates=["rx", "ry", "rz", "cx", "cz"])

    def one(q: int):
        err = None
        for _ in range(model.pulses_per_rotation):
            parts = []
            if model.t1 is not None and model.gate_1q_s is not None and model.gate_1q_s[q] > 0:
                parts.append(thermal_relaxation_error(model.t1[q], model.t2[q], model.gate_1q_s[q]))
            if model.p1 is not None and model.p1[q] > 0:
                parts.append(depolarizing_error(ch.qiskit_lambda(model.p1[q], 1), 1))
            for e in parts:
                err = e if err is None else err.compose(e)
        return err

    def two(a: int, b: int):
        """The error after a two-qubit gate on positions (a, b); error qubit 0 is position a."""
        parts = []
        dur = model.edge(model.gate_2q_s, a, b) if model.gate_2q_s is not None else 0.0
        if model.t1 is not None and dur > 0:
            ra = thermal_relaxation_error(model.t1[a], model.t2[a], dur)
            rb = thermal_relaxation_error(model.t1[b], model.t2[b], dur)
            parts.append(ra.expand(rb))  # ra on error qubit 0, rb on error qubit 1
        p = model.edge(model.p2, a, b) if model.p2 is not None else 0.0
        if p > 0:
            parts.append(depolarizing_error(ch.qiskit_lambda(p, 2), 2))
        err = None
        for e in parts:
            err = e if err is None else err.compose(e)
        return err

    gates_1q = ["rx", "ry"] + ([] if model.virtual_rz else ["rz"])
    for q in range(n):
        err = one(q)
        if err is not None:
            out.add_quantum_error(err, gates_1q, [_qubit(n, q)])
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    if model.coupled is not None:
        pairs = [(a, b) for a, b in model.coupled] + [(b, a) for a, b in model.coupled]
    for a, b in pairs:
        err = two(a, b)
        if err is not None:
            out.add_quantum_error(err, ["cx", "cz"], [_qubit(n, a), _qubit(n, b)])
    if readout and model.readout_err is not None:
        for q, (p01, p10) in enumerate(model.readout_err):
            out.add_readout_error(ReadoutError([[1 - p01, p01], [p10, 1 - p10]]), [_qubit(n, q)])
    return out
