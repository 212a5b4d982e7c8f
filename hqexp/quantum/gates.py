"""Gate by gate on a batch of state vectors, differentiable by torch autograd.

The fused simulator (:mod:`hqexp.quantum.statevector`) runs :class:`~hqexp.quantum.Ansatz`
circuits; the benchmark paper's variational models have their own circuit shapes (IQP or
amplitude embeddings, trees of CNOTs, an H + RY embedding), so they are written here gate by gate
with PennyLane's conventions (wire 0 is the most significant bit; ``Rot(φ, θ, ω) = RZ(ω) RY(θ) RZ(φ)``;
``StronglyEntanglingLayers`` with its default ranges). States are ``[B, 2**n]`` complex tensors.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from hqexp.quantum.measurements.base import z_table
from hqexp.quantum.templates.base import rotation_matrix


def apply_1q(psi: torch.Tensor, n: int, wire: int, U: torch.Tensor) -> torch.Tensor:
    """``U`` (``[2, 2]``, or ``[B, 2, 2]`` one per sample) on ``wire``."""
    B = psi.shape[0]
    v = psi.reshape(B, 2**wire, 2, 2 ** (n - wire - 1))
    out = torch.einsum("st,xatb->xasb", U, v) if U.dim() == 2 else torch.einsum("xst,xatb->xasb", U, v)
    return out.reshape(B, 2**n)


@lru_cache(maxsize=256)
def _cnot_index(n: int, control: int, target: int, device: str) -> torch.Tensor:
    idx = torch.arange(2**n)
    c, t = n - 1 - control, n - 1 - target  # bit positions (wire 0 = MSB)
    return (idx ^ (((idx >> c) & 1) << t)).to(device)


@lru_cache(maxsize=256)
def _cz_sign(n: int, a: int, b: int, device: str) -> torch.Tensor:
    z = z_table(n)
    both = (z[:, a] < 0) & (z[:, b] < 0)
    return torch.where(both, -1.0, 1.0).to(device)


def cnot(psi: torch.Tensor, n: int, control: int, target: int) -> torch.Tensor:
    """CNOT: a permutation of the basis (a CNOT is its own inverse, so gather = scatter)."""
    return psi[:, _cnot_index(n, control, target, str(psi.device))]


def cz(psi: torch.Tensor, n: int, a: int, b: int) -> torch.Tensor:
    """CZ: a sign on the basis states with both wires in |1⟩."""
    return psi * _cz_sign(n, a, b, str(psi.device)).to(psi.dtype)


def rot(phi: torch.Tensor, theta: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """PennyLane's ``Rot(φ, θ, ω) = RZ(ω)·RY(θ)·RZ(φ)``, ``[..., 2, 2]``."""
    return rotation_matrix("RZ", omega) @ rotation_matrix("RY", theta) @ rotation_matrix("RZ", phi)


def strongly_entangling(psi: torch.Tensor, n: int, weights: torch.Tensor, imprimitive: str = "cnot") -> torch.Tensor:
    """``qml.StronglyEntanglingLayers(weights[L, n, 3], imprimitive=CNOT|CZ)`` with its default
    ranges: layer l entangles wire i with wire (i + r_l) mod n, r_l = l mod (n − 1) + 1."""
    L = weights.shape[0]
    U = rot(weights[..., 0], weights[..., 1], weights[..., 2]).to(psi.dtype)  # [L, n, 2, 2]
    two = cnot if imprimitive == "cnot" else cz
    for layer in range(L):
        for q in range(n):
            psi = apply_1q(psi, n, q, U[layer, q])
        if n > 1:
            r = layer % (n - 1) + 1
            for i in range(n):
                psi = two(psi, n, i, (i + r) % n)
    return psi


def zero_state(batch: int, n: int, dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    psi = torch.zeros(batch, 2**n, dtype=dtype)
    psi[:, 0] = 1
    return psi


def z_expvals(psi: torch.Tensor, n: int) -> torch.Tensor:
    """⟨Z_i⟩ of every wire, ``[B, n]`` (real)."""
    probs = psi.abs().square()
    return probs @ z_table(n).to(device=psi.device, dtype=probs.dtype)


def zz_expval(psi: torch.Tensor, n: int, a: int = 0, b: int = 1) -> torch.Tensor:
    """⟨Z_a Z_b⟩, ``[B]``."""
    z = z_table(n).to(device=psi.device)
    return psi.abs().square() @ (z[:, a] * z[:, b]).to(psi.real.dtype)


def amplitude_states(X: torch.Tensor, n: int) -> torch.Tensor:
    """``AmplitudeEmbedding``: rows of ``X`` (already of length 2**n and unit norm) as states."""
    if X.shape[1] != 2**n:
        raise ValueError(f"amplitude embedding of {n} qubits needs {2**n} amplitudes, got {X.shape[1]}")
    return X.to(torch.complex128)
