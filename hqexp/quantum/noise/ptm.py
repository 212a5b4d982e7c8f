"""Pauli transfer matrices: channels and gates as real matrices on Pauli coefficients.

A density matrix of ``n`` qubits is ``ρ = 2⁻ⁿ Σ_a r_a P_a`` over the ``4ⁿ`` Pauli strings
(``a`` = one of I, X, Y, Z per qubit, qubit 0 the most significant digit); the coefficients
``r_a = Tr(P_a ρ)`` are real, a one-qubit state is its Bloch vector ``(1, x, y, z)``, and a channel
is the real matrix ``R_ab = 2⁻ᵏ Tr(P_a E(P_b))`` on them. Expectation values are dot products,
``Tr(O ρ) = Σ_a o_a r_a`` with ``o_a = 2⁻ⁿ Tr(P_a O)``, so the adjoint channel is ``Rᵀ``.
Real arithmetic on half the memory of ``vec(ρ)`` in complex numbers, and depolarizing noise is
diagonal in this basis.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch

PAULIS = np.stack(
    [
        np.eye(2),
        np.array([[0, 1], [1, 0]]),
        np.array([[0, -1j], [1j, 0]]),
        np.diag([1, -1]),
    ]
).astype(np.complex128)


@lru_cache(maxsize=8)
def pauli_strings(k: int) -> np.ndarray:
    """``[4^k, 2^k, 2^k]``: every ``k``-qubit Pauli string, qubit 0 the most significant digit."""
    out = []
    for idx in itertools.product(range(4), repeat=k):
        m = np.ones((1, 1), dtype=np.complex128)
        for i in idx:
            m = np.kron(m, PAULIS[i])
        out.append(m)
    return np.stack(out)


def of_kraus(kraus) -> np.ndarray:
    """The transfer matrix ``[4^k, 4^k]`` of a channel given by Kraus operators (or one unitary)."""
    d = kraus[0].shape[0]
    k = d.bit_length() - 1
    P = pauli_strings(k)
    images = sum(np.einsum("ij,bjk,lk->bil", K, P, K.conj()) for K in kraus)  # E(P_b)
    return np.real(np.einsum("aji,bij->ab", P, images)) / d


def of_superop(superop: np.ndarray, k: int) -> np.ndarray:
    """The transfer matrix of a channel given as ``Σ K⊗conj(K)`` on vec(ρ) (row index first)."""
    P = pauli_strings(k)
    d = 2**k
    images = np.einsum("xy,by->bx", superop, P.reshape(4**k, -1)).reshape(4**k, d, d)
    return np.real(np.einsum("aji,bij->ab", P, images)) / d


#: positions in a transfer matrix of the cos / sin terms of RX, RY, RZ (axis 1, 2, 3)
_ROT = {
    1: ([(2, 2), (3, 3)], [(2, 3, -1.0), (3, 2, 1.0)]),  # (y, z) rotated about X
    2: ([(1, 1), (3, 3)], [(1, 3, 1.0), (3, 1, -1.0)]),  # (z, x) about Y
    3: ([(1, 1), (2, 2)], [(1, 2, -1.0), (2, 1, 1.0)]),  # (x, y) about Z
}
AXIS = {"RX": 1, "RY": 2, "RZ": 3}


@lru_cache(maxsize=256)
def rotation_masks(axes: tuple[int, ...], device: str, dtype: torch.dtype):
    """``(fixed, cos, sin)`` ``[G, 4, 4]`` masks: the transfer matrix of a rotation by θ about
    ``axes[g]`` is ``fixed + cos θ·cos_mask + sin θ·sin_mask``."""
    G = len(axes)
    fixed = np.tile(np.eye(4), (G, 1, 1))
    cm, sm = np.zeros((G, 4, 4)), np.zeros((G, 4, 4))
    for g, ax in enumerate(axes):
        cos_at, sin_at = _ROT[ax]
        for i, j in cos_at:
            fixed[g, i, j] = 0.0
            cm[g, i, j] = 1.0
        for i, j, sign in sin_at:
            sm[g, i, j] = sign
    return tuple(torch.as_tensor(m, dtype=dtype, device=device) for m in (fixed, cm, sm))


def rotations(axes: tuple[int, ...], theta: torch.Tensor) -> torch.Tensor:
    """Transfer matrices ``[..., G, 4, 4]`` of rotations ``theta`` ``[..., G]`` about ``axes``."""
    fixed, cm, sm = rotation_masks(axes, str(theta.device), theta.dtype)
    c, s = torch.cos(theta)[..., None, None], torch.sin(theta)[..., None, None]
    return fixed + c * cm + s * sm


@lru_cache(maxsize=64)
def walsh(n: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """``W[a, x]`` ``[2^n, 2^n]``, the Walsh–Hadamard transform with ``2^-n``: a diagonal observable's
    values ``t[x]`` have Pauli coefficients ``W @ t`` on ``{I, Z}^n``, and a state's ``{I, Z}^n``
    coefficients ``r`` give the distribution ``Wᵀ @ r``."""
    h = np.array([[1.0, 1.0], [1.0, -1.0]]) / 2
    m = np.ones((1, 1))
    for _ in range(n):
        m = np.kron(m, h)
    return torch.as_tensor(m, dtype=dtype, device=device)


@lru_cache(maxsize=64)
def iz_positions(n: int, device: str) -> torch.Tensor:
    """Positions of the ``{I, Z}^n`` strings among the ``4^n`` (digit 0 for I, 3 for Z)."""
    bits = (torch.arange(2**n)[:, None] >> torch.arange(n - 1, -1, -1)[None, :]) & 1
    return ((3 * bits) * (4 ** torch.arange(n - 1, -1, -1))).sum(-1).to(device)
