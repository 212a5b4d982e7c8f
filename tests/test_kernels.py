"""Quantum kernels (hqexp.quantum.kernels): every feature map against PennyLane's own circuit of the
benchmark paper, and the Gram matrices' properties (symmetric, unit diagonal, positive semidefinite)."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch

from hqexp.quantum import kernels as qk

RNG = np.random.default_rng(7)
X = RNG.uniform(-np.pi / 2, np.pi / 2, size=(6, 3))


def _iqp_overlap(n, repeats):
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def circuit(x1, x2):  # the paper's kernel circuit: U(x1), then U(x2)^dagger, P(|0...0>)
        qml.IQPEmbedding(x1, wires=range(n), n_repeats=repeats)
        qml.adjoint(qml.IQPEmbedding(x2, wires=range(n), n_repeats=repeats))
        return qml.probs()

    return lambda a, b: float(circuit(a, b)[0])


@pytest.mark.parametrize("repeats", [1, 2, 5])
def test_iqp_kernel_entries_equal_pennylanes_overlap(repeats):
    S = qk.iqp_states(X, repeats)
    K = qk.fidelity_gram(S, S, batch=4)  # more than one row block
    ref = _iqp_overlap(3, repeats)
    want = np.array([[ref(a, b) for b in X] for a in X])
    np.testing.assert_allclose(K.numpy(), want, atol=1e-5)


@pytest.mark.parametrize("layers", [1, 3])
def test_separable_kernel_entries_equal_the_papers_circuit(layers):
    proj = np.diag([1.0, 0.0])
    dev = qml.device("default.qubit", wires=1)

    @qml.qnode(dev)
    def qubit(x0, x1):  # the paper's per-qubit overlap circuit
        for _ in range(layers):
            qml.RX(-np.pi / 4, wires=0)
            qml.RY(-x0, wires=0)
        for _ in range(layers):
            qml.RY(x1, wires=0)
            qml.RX(np.pi / 4, wires=0)
        return qml.expval(qml.Hermitian(proj, wires=0))

    S = qk.separable_qubit_states(X, layers)
    K = qk.product_fidelity_gram(S, S)
    want = np.array([[np.prod([qubit(a[i], b[i]) for i in range(3)]) for b in X] for a in X])
    np.testing.assert_allclose(K.numpy(), want, atol=1e-5)


@pytest.mark.parametrize("t, steps", [(0.1, 1), (1.0, 3)])
def test_projected_kernel_features_equal_pennylanes_expectations(t, steps):
    n = X.shape[1] + 1
    angles = torch.as_tensor(RNG.uniform(size=(n, 3)) * 2 * np.pi)
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def circuit(x):  # the paper's Hamiltonian embedding, gate by gate
        tau = t / steps * (n - 1)
        for i in range(n):
            qml.Rot(*angles[i].numpy(), wires=i)
        for _ in range(steps):
            for j in range(n - 1):
                qml.IsingXX(x[j] * tau, wires=[j, j + 1])
                qml.IsingYY(x[j] * tau, wires=[j, j + 1])
                qml.IsingZZ(x[j] * tau, wires=[j, j + 1])
        return [qml.expval(P(i)) for P in (qml.PauliX, qml.PauliY, qml.PauliZ) for i in range(n)]

    F = qk.pauli_expectations(qk.heisenberg_states(X, angles, t, steps), n)
    want = np.array([np.reshape(circuit(x), (3, n)) for x in X])
    np.testing.assert_allclose(F.numpy(), want, atol=1e-5)


@pytest.mark.parametrize(
    "gram",
    [
        lambda A: qk.fidelity_gram(qk.iqp_states(A, 2), qk.iqp_states(A, 2)),
        lambda A: qk.product_fidelity_gram(qk.separable_qubit_states(A, 3), qk.separable_qubit_states(A, 3)),
        lambda A: qk.projected_gram(
            *(2 * [qk.pauli_expectations(qk.heisenberg_states(A, torch.ones(5, 3), 0.5, 2), 5)]), 0.7
        ),
    ],
    ids=["iqp", "separable", "projected"],
)
def test_gram_matrices_are_symmetric_unit_diagonal_and_psd(gram):
    A = np.random.default_rng(1).uniform(-1.5, 1.5, size=(40, 4))
    K = gram(A).numpy()
    np.testing.assert_allclose(K, K.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(K), 1.0, atol=1e-12)  # fidelity kernels; exp(-0) for the projected one
    # a Gram matrix of inner products: eigenvalues >= 0 up to the rounding of 40x40 float64 sums
    assert np.linalg.eigvalsh(K).min() > -1e-10


def test_kitchen_sink_shots_follow_pennylanes_distribution():
    """One shot per row: 20 000 shots of one circuit against PennyLane's exact probabilities,
    every bitstring within 5 standard deviations of its binomial count."""
    n, shots = 4, 20_000
    theta = np.array([0.3, 2.1, -1.2, 2.8])
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def circuit():
        for i in range(n):
            qml.RX(theta[i], wires=i)
        for c, t in qk.kitchen_sink_pairs(n):
            qml.CNOT(wires=[c, t])
        return qml.probs()

    assert qk.kitchen_sink_pairs(n) == [(0, 1), (2, 3), (0, 2), (1, 3)]  # the paper's 'double' then i -> i+2
    p = np.asarray(circuit())
    bits = qk.kitchen_sink_bits(np.tile(theta, (shots, 1)), torch.Generator().manual_seed(0)).numpy()
    index = bits @ (2 ** np.arange(n - 1, -1, -1))  # wire 0 is the most significant bit
    counts = np.bincount(index, minlength=2**n)
    sigma = np.sqrt(shots * p * (1 - p))
    assert np.all(np.abs(counts - shots * p) <= 5 * sigma + 1e-9)


def test_too_many_qubits_is_one_line():
    from hqexp.errors import ConfigError

    with pytest.raises(ConfigError, match="1..20 qubits"):
        qk.iqp_states(np.zeros((1, 21)), 1)


def test_device_circuits_of_a_fidelity_gram():
    assert qk.fidelity_circuits(10, 10, symmetric=True) == 45  # the upper triangle; the diagonal is 1
    assert qk.fidelity_circuits(3, 10, symmetric=False) == 30
