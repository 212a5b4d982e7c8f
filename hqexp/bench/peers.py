"""Simulators outside hqexp that researchers pick, timed beside ours in ``hqexp bench backends``
(the ``peers`` list), each only where its package is installed (``pip install 'hqexp[bench]'``):

* ``pennylane_jax`` — PennyLane ``default.qubit`` with JAX, ``jax.jit`` of the value and of its
  gradient (backprop);
* ``tensorcircuit`` — tensorcircuit-ng on its JAX backend, ``vmap`` over the batch, ``jit``;
* ``qulacs`` — Qulacs' C++ state vector, one circuit per sample, gradients by its ``backprop``.

All build the benchmark's circuit — ``AngleEmbedding(X)`` + ``StronglyEntanglingLayers`` (CNOT
ranges as PennyLane's defaults), ⟨Z_i⟩ on every qubit — and are checked to agree with the torch
simulator (values and gradients, 1e-4 in float32) before they are timed; the compile time of
the JIT peers is reported apart from the steady-state time. Each peer is timed on its own
arrays (JAX device arrays, made once outside the timing) and until its results are ready, not
converted back to numpy: what a user of that package pays per step.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PEERS = ("pennylane_jax", "tensorcircuit", "qulacs", "tensorcircuit_dm")
_NEEDS = {
    "pennylane_jax": ("jax", "pennylane"),
    "tensorcircuit": ("tensorcircuit", "jax"),
    "qulacs": ("qulacs",),
    "tensorcircuit_dm": ("tensorcircuit", "jax"),
}
#: peers that simulate noise (``hqexp bench backends noise=depolarizing``); the others are exact only
NOISY_PEERS = ("tensorcircuit_dm",)


def _same(x: np.ndarray, w: np.ndarray) -> tuple:
    return x, w


@dataclass
class Peer:
    """``fwd(x, w) -> values [B, n]`` and ``fwd_bwd(x, w) -> (values, d/dx, d/dw)``, finished
    (JAX: blocked until ready), on the peer's own arrays: ``native(x, w)`` makes them from numpy
    (``np.asarray`` turns any result back)."""

    name: str
    fwd: Callable
    fwd_bwd: Callable
    native: Callable = _same
    compile_s: float = 0.0


def missing(name: str) -> str | None:
    """Why peer ``name`` cannot run here (None when it can)."""
    if name not in PEERS:
        return f"unknown peer {name!r}; choose from: {', '.join(PEERS)}"
    absent = [m for m in _NEEDS[name] if importlib.util.find_spec(m) is None]
    return f"not installed ({', '.join(absent)}): pip install 'hqexp[bench]'" if absent else None


def build(name: str, n: int, layers: int, x: np.ndarray, w: np.ndarray, noise: dict | None = None) -> Peer:
    """Peer ``name`` for ``n`` qubits × ``layers`` (``noise``: the depolarizing mapping of a noisy
    peer); the first calls (compilation) are timed."""
    if name in NOISY_PEERS:
        noise = noise or {}  # without a noise mapping: the same density matrix, noiseless
        peer = _tensorcircuit_dm(n, layers, float(noise.get("p1", 0)), float(noise.get("p2", 0)))
    else:
        peer = {"pennylane_jax": _pennylane_jax, "tensorcircuit": _tensorcircuit, "qulacs": _qulacs}[name](n, layers)
    x, w = peer.native(x, w)
    t0 = time.perf_counter()
    peer.fwd(x, w)
    peer.fwd_bwd(x, w)
    peer.compile_s = time.perf_counter() - t0
    return peer


def _ranges(n: int, layers: int) -> list[int]:
    return [(layer % (n - 1)) + 1 if n > 1 else 0 for layer in range(layers)]


def _pennylane_jax(n: int, layers: int) -> Peer:
    import jax.numpy as jnp
    import pennylane as qml

    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="jax", diff_method="backprop")
    def circuit(x, w):
        qml.AngleEmbedding(x, wires=range(n), rotation="X")
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    return _jax_peer("pennylane_jax", lambda x, w: jnp.stack(circuit(x, w), axis=-1))


def _jax_peer(name: str, values) -> Peer:
    """A peer from a JAX function ``values(x, w) -> [B, n]``: the values jitted, and values with
    both gradients from one compiled call."""
    import jax
    import jax.numpy as jnp

    f = jax.jit(values)
    g = jax.jit(jax.value_and_grad(lambda x, w: (jnp.sum(v := values(x, w)), v), argnums=(0, 1), has_aux=True))

    def fwd_bwd(x, w):
        (_, vals), (gx, gw) = jax.block_until_ready(g(x, w))
        return vals, gx, gw

    return Peer(
        name,
        lambda x, w: jax.block_until_ready(f(x, w)),
        fwd_bwd,
        native=lambda x, w: (jax.device_put(jnp.asarray(x)), jax.device_put(jnp.asarray(w))),
    )


def _tensorcircuit(n: int, layers: int) -> Peer:
    import jax
    import jax.numpy as jnp
    import tensorcircuit as tc

    K = tc.set_backend("jax")
    ranges = _ranges(n, layers)

    def one(x, w):  # x [n], w [L, n, 3]
        c = tc.Circuit(n)
        for i in range(n):
            c.rx(i, theta=x[i])
        for layer in range(layers):
            for i in range(n):
                c.rz(i, theta=w[layer, i, 0])
                c.ry(i, theta=w[layer, i, 1])
                c.rz(i, theta=w[layer, i, 2])
            if n > 1:
                for i in range(n):
                    c.cnot(i, (i + ranges[layer]) % n)
        return jnp.stack([K.real(c.expectation_ps(z=[i])) for i in range(n)])

    return _jax_peer("tensorcircuit", jax.vmap(one, in_axes=(0, None)))


def _qulacs(n: int, layers: int) -> Peer:
    from qulacs import Observable, ParametricQuantumCircuit, QuantumState

    ranges = _ranges(n, layers)
    # Qulacs' parametric rotations are exp(+iθ/2 P): angles enter negated; its qubit 0 is the
    # least significant, so wire i is qulacs qubit n-1-i.
    q = lambda i: n - 1 - i  # noqa: E731
    circ = ParametricQuantumCircuit(n)
    for i in range(n):
        circ.add_parametric_RX_gate(q(i), 0.0)
    for layer in range(layers):
        for i in range(n):
            circ.add_parametric_RZ_gate(q(i), 0.0)
            circ.add_parametric_RY_gate(q(i), 0.0)
            circ.add_parametric_RZ_gate(q(i), 0.0)
        if n > 1:
            for i in range(n):
                circ.add_CNOT_gate(q(i), q((i + ranges[layer]) % n))
    observables = []
    for i in range(n):
        o = Observable(n)
        o.add_operator(1.0, f"Z {q(i)}")
        observables.append(o)
    total = Observable(n)
    for i in range(n):
        total.add_operator(1.0, f"Z {q(i)}")
    state = QuantumState(n)

    def set_params(xb, w):
        for k, v in enumerate(np.concatenate([xb, w.reshape(-1)])):
            circ.set_parameter(k, -float(v))

    def fwd(x, w):
        out = np.empty(x.shape)
        for b in range(x.shape[0]):
            set_params(x[b], w)
            state.set_zero_state()
            circ.update_quantum_state(state)
            out[b] = [o.get_expectation_value(state) for o in observables]
        return out

    def fwd_bwd(x, w):
        vals, gx, gw = fwd(x, w), np.empty(x.shape), np.zeros(w.size)
        for b in range(x.shape[0]):
            set_params(x[b], w)
            grad = -np.asarray(circ.backprop(total))  # d/dθ of the sum of ⟨Z_i⟩, angles negated
            gx[b], gw = grad[:n], gw + grad[n:]
        return vals, gx, gw.reshape(w.shape)

    return Peer("qulacs", fwd, fwd_bwd)


def _tensorcircuit_dm(n: int, layers: int, p1: float, p2: float) -> Peer:
    """tensorcircuit-ng's ``DMCircuit`` (density matrix) with the same depolarizing noise after
    every gate (its own single-qubit channel; the two-qubit one from its Kraus operators), ``vmap``
    over the batch, ``jit``."""
    import jax
    import jax.numpy as jnp
    import tensorcircuit as tc

    from hqexp.quantum.noise.channels import depolarizing_kraus

    K = tc.set_backend("jax")
    ranges = _ranges(n, layers)
    kraus2 = [tc.gates.Gate(jnp.asarray(k.reshape(2, 2, 2, 2))) for k in depolarizing_kraus(p2, 2)]

    def one(x, w):
        c = tc.DMCircuit(n)

        def noisy1(i):
            if p1 > 0:
                c.depolarizing(i, px=p1 / 3, py=p1 / 3, pz=p1 / 3)

        for i in range(n):
            c.rx(i, theta=x[i])
            noisy1(i)
        for layer in range(layers):
            for i in range(n):
                for j, gate in enumerate((c.rz, c.ry, c.rz)):
                    gate(i, theta=w[layer, i, j])
                    noisy1(i)
            if n > 1:
                for i in range(n):
                    t = (i + ranges[layer]) % n
                    c.cnot(i, t)
                    if p2 > 0:
                        c.apply_general_kraus(kraus2, [(i, t)])
        return jnp.stack([K.real(c.expectation_ps(z=[i])) for i in range(n)])

    return _jax_peer("tensorcircuit_dm", jax.vmap(one, in_axes=(0, None)))
