"""Measurement objects: each one's table, fast path, Pauli form and PennyLane form agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hqexp.quantum import MEASUREMENTS, Ansatz
from hqexp.quantum.measurements import REGISTRY

PAULI = {"I": np.eye(2), "Z": np.diag([1.0, -1.0])}


def _pauli_matrix(label: str) -> np.ndarray:
    out = np.ones((1, 1))
    for ch in label:  # wire 0 first = most significant = leftmost Kronecker factor
        out = np.kron(out, PAULI[ch])
    return out


@pytest.mark.parametrize("name", MEASUREMENTS)
@pytest.mark.parametrize("n", [2, 3, 5])
def test_table_fast_path_and_pauli_form_agree(name, n):
    m = REGISTRY[name]
    g = torch.Generator().manual_seed(n)
    probs = torch.rand(7, 2**n, generator=g, dtype=torch.float64)
    probs /= probs.sum(-1, keepdim=True)
    table = m.table(n)
    assert table.shape == (2**n, m.n_out(n))
    torch.testing.assert_close(m.from_probs(probs, n), probs @ table, rtol=0, atol=1e-12)
    for j, terms in enumerate(m.pauli_terms(n)):
        diag = np.diag(sum(c * _pauli_matrix(lab) for c, lab in terms))
        np.testing.assert_allclose(diag, table[:, j].numpy(), atol=1e-12)


@pytest.mark.parametrize("name", MEASUREMENTS)
def test_single_shot_variance_is_that_of_the_eigenvalue_distribution(name):
    n, m = 3, REGISTRY[name]
    probs = torch.softmax(torch.randn(4, 2**n, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), -1)
    t = m.table(n)
    want = probs @ t.square() - (probs @ t).square()
    torch.testing.assert_close(m.single_shot_variance(probs, n), want, rtol=0, atol=1e-12)
    if name == "z_each":
        torch.testing.assert_close(want, 1 - (probs @ t).square(), rtol=0, atol=1e-12)


def test_qiskit_reads_the_same_observable():
    qi = pytest.importorskip("qiskit.quantum_info")
    n = 3
    for name in MEASUREMENTS:
        m = REGISTRY[name]
        for j, terms in enumerate(m.pauli_terms(n)):
            # Qiskit labels are little-endian (qubit 0 rightmost); hqexp's wire 0 maps to qubit n-1
            op = qi.SparsePauliOp([lab for _, lab in terms], [c for c, _ in terms])
            np.testing.assert_allclose(np.real(np.diag(op.to_matrix())), m.table(n)[:, j].numpy(), atol=1e-12)


def test_ansatz_reads_its_outputs_from_the_measurement():
    assert Ansatz(4, measurement="z_each").n_out == 4
    assert Ansatz(4, measurement="local_projector").n_out == 1
    from hqexp.errors import ConfigError

    with pytest.raises(ConfigError, match="measurement 'z0z1' needs n_qubits >= 2"):
        Ansatz(1, measurement="z0z1")
