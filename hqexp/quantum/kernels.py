"""Quantum feature maps and the kernels built on them, simulated in batches.

The kernel methods of Bowles, Ahmed & Schuld 2024 (arXiv:2403.07059) need, per input, one state
(fidelity kernels), a few single-qubit expectation values (the projected kernel) or sampled
bitstrings (quantum kitchen sinks) — not a trainable circuit. So instead of one circuit per pair
of inputs, as a device (or the paper's PennyLane code) runs them, the simulator prepares every
input's state once, ``[N, 2**n]``, and a Gram block is one matrix product:
``K = |Ψ₁ Ψ₂†|²``. Conventions are PennyLane's (wire 0 is the most significant bit), and the tests
hold each map to PennyLane's own circuit of the paper.

A device cannot share states between pairs: :func:`fidelity_circuits` says how many circuits it
would run for the same Gram matrix (the numbers the run's ``qpu/circuits`` reports).
"""

from __future__ import annotations

import math

import torch

from hqexp.errors import ConfigError
from hqexp.quantum.measurements.base import z_table
from hqexp.quantum.memory import require_memory
from hqexp.quantum.templates.base import rotation_matrix

CDTYPE = torch.complex128  # kernels are evaluated once per run: exactness over speed
#: past this many qubits the paper's models are not run here (2**20 amplitudes per input)
MAX_KERNEL_QUBITS = 20


def _as_tensor(X) -> torch.Tensor:
    return torch.as_tensor(X, dtype=torch.float64)


def _check_width(n: int, what: str) -> None:
    if not 1 <= n <= MAX_KERNEL_QUBITS:
        raise ConfigError(f"{what} needs 1..{MAX_KERNEL_QUBITS} qubits, got {n}")


def hadamard_all(psi: torch.Tensor, n: int) -> torch.Tensor:
    """H on every wire of a batch of states ``[N, 2**n]`` (a Walsh–Hadamard transform, n butterflies)."""
    N = psi.shape[0]
    s = 1 / math.sqrt(2)
    for w in range(n):
        v = psi.reshape(N, 2**w, 2, 2 ** (n - w - 1))
        a, b = v[:, :, 0], v[:, :, 1]
        psi = torch.stack((a + b, a - b), dim=2).reshape(N, 2**n) * s
    return psi


def iqp_states(X, repeats: int) -> torch.Tensor:
    """PennyLane's ``IQPEmbedding(x, n_repeats=repeats)`` on |0…0⟩, one state per row of ``X``.

    Each repeat is H on every wire, then ``RZ(x_i)`` on wire i and ``MultiRZ(x_i·x_j)`` on every pair
    i < j — all diagonal, so a repeat is one Walsh–Hadamard transform and one phase vector
    ``exp(-i/2 (Σ x_i z_i + Σ_{i<j} x_i x_j z_i z_j))`` over the basis states' Z eigenvalues z.
    """
    X = _as_tensor(X)
    N, n = X.shape
    _check_width(n, "the IQP embedding")
    require_memory(2 * N * 2**n * 16, "kernel", n, N)
    z = z_table(n)  # [2**n, n]
    i, j = torch.triu_indices(n, n, offset=1)
    angle = X @ z.T + (X[:, i] * X[:, j]) @ (z[:, i] * z[:, j]).T  # [N, 2**n]
    phase = torch.polar(torch.ones_like(angle), -0.5 * angle)
    psi = torch.zeros(N, 2**n, dtype=CDTYPE)
    psi[:, 0] = 1
    for _ in range(repeats):
        psi = hadamard_all(psi, n) * phase
    return psi


def fidelity_gram(A: torch.Tensor, B: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """``K[i, j] = |⟨a_i|b_j⟩|²`` for states ``A[N1, D]`` and ``B[N2, D]``, in row blocks of ``batch``."""
    out = torch.empty(A.shape[0], B.shape[0], dtype=torch.float64)
    for s in range(0, A.shape[0], batch):
        out[s : s + batch] = (A[s : s + batch].conj() @ B.T).abs().square()
    return out


def separable_qubit_states(X, layers: int) -> torch.Tensor:
    """Per-qubit states ``[N, n, 2]`` of the paper's separable kernel embedding: on every wire,
    ``layers`` × (RX(−π/4), RY(−x_i)) in time order (the adjoint of its RY(x)·RX(π/4) layers)."""
    X = _as_tensor(X)
    N, n = X.shape
    rx = rotation_matrix("RX", torch.tensor(-math.pi / 4, dtype=torch.float64))
    ry = rotation_matrix("RY", -X)  # [N, n, 2, 2]
    step = ry @ rx
    v = torch.zeros(N, n, 2, 1, dtype=CDTYPE)
    v[..., 0, 0] = 1
    for _ in range(layers):
        v = step @ v
    return v[..., 0]


def product_fidelity_gram(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``K[i, j] = Π_q |⟨a_iq|b_jq⟩|²`` for per-qubit states ``A[N1, n, 2]``, ``B[N2, n, 2]``."""
    overlaps = torch.einsum("iqs,jqs->ijq", A.conj(), B).abs().square()
    return overlaps.prod(-1)


def heisenberg_states(X, angles: torch.Tensor, t: float, trotter_steps: int) -> torch.Tensor:
    """The projected kernel's Hamiltonian embedding on ``n + 1`` qubits: a fixed random ``Rot`` on
    each wire (``angles[n + 1, 3]``), then ``trotter_steps`` × IsingXX·IsingYY·IsingZZ(x_j·τ) on
    wires (j, j+1), τ = t / trotter_steps · n. XX + YY + ZZ = 2·SWAP − 1 and the three commute, so
    each pair's step is ``e^{iφ/2}(cos φ − i sin φ SWAP)``."""
    X = _as_tensor(X)
    N, d = X.shape
    n = d + 1
    _check_width(n, "the Hamiltonian embedding")
    require_memory(3 * N * 2**n * 16, "kernel", n, N)
    a = angles.to(torch.float64)
    rot = rotation_matrix("RZ", a[:, 2]) @ rotation_matrix("RY", a[:, 1]) @ rotation_matrix("RZ", a[:, 0])
    psi = torch.ones(1, 1, dtype=CDTYPE)
    for q in range(n):  # product state: Rot(φ, θ, ω)|0⟩ on every wire
        psi = (psi[:, :, None] * rot[q, :, 0][None, None, :]).reshape(1, -1)
    psi = psi.expand(N, -1).clone()
    tau = t / trotter_steps * (n - 1)
    swap = torch.tensor([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=CDTYPE)
    eye = torch.eye(4, dtype=CDTYPE)
    for _ in range(trotter_steps):
        for j in range(n - 1):
            phi = (X[:, j] * tau).to(CDTYPE)[:, None, None]
            U = torch.exp(0.5j * phi) * (torch.cos(phi) * eye - 1j * torch.sin(phi) * swap)
            v = psi.reshape(N, 2**j, 4, 2 ** (n - j - 2))
            psi = torch.einsum("nab,nxbz->nxaz", U, v).reshape(N, 2**n)
    return psi


def pauli_expectations(psi: torch.Tensor, n: int) -> torch.Tensor:
    """``[N, 3, n]``: ⟨X_q⟩, ⟨Y_q⟩, ⟨Z_q⟩ of every wire, from each state's one-qubit reduced density matrix."""
    N = psi.shape[0]
    out = torch.empty(N, 3, n, dtype=torch.float64)
    for q in range(n):
        v = psi.reshape(N, 2**q, 2, 2 ** (n - q - 1))
        rho = torch.einsum("nasb,natb->nst", v, v.conj())
        out[:, 0, q] = 2 * rho[:, 0, 1].real
        out[:, 1, q] = -2 * rho[:, 0, 1].imag
        out[:, 2, q] = (rho[:, 0, 0] - rho[:, 1, 1]).real
    return out


def projected_gram(F1: torch.Tensor, F2: torch.Tensor, gamma: float) -> torch.Tensor:
    """``exp(−γ Σ_{q,P} (⟨P_q⟩₁ − ⟨P_q⟩₂)²)`` for Pauli features ``F[N, 3, n]``."""
    a, b = F1.reshape(F1.shape[0], -1), F2.reshape(F2.shape[0], -1)
    return torch.exp(-gamma * torch.cdist(a, b).square())


def kitchen_sink_pairs(n: int) -> list[tuple[int, int]]:
    """CNOTs of the kitchen-sink circuit, in order: (0,1), (2,3), … then (i, i+2) for every i."""
    return [(i, i + 1) for i in range(0, n - 1, 2)] + [(i, i + 2) for i in range(n - 2)]


def kitchen_sink_bits(angles, generator: torch.Generator) -> torch.Tensor:
    """One shot of the kitchen-sink circuit per row of ``angles[M, n]``: RX(angle) on every wire,
    then the CNOTs of :func:`kitchen_sink_pairs`; bits ``[M, n]`` (0/1, wire 0 first).

    RX on |0⟩ gives a product state and CNOTs only permute basis states, so a shot is exact as
    independent bits (P(1) = sin²(θ/2) on each wire) pushed through the CNOTs as XORs.
    """
    theta = _as_tensor(angles)
    bits = (torch.rand(theta.shape, generator=generator, dtype=torch.float64) < torch.sin(theta / 2).square()).to(
        torch.int64
    )
    for c, t in kitchen_sink_pairs(theta.shape[1]):
        bits[:, t] ^= bits[:, c]
    return bits


def fidelity_circuits(n_rows: int, n_cols: int, symmetric: bool) -> int:
    """Circuits a device runs for a fidelity-kernel Gram block: one per entry (``U(x)`` then
    ``U†(x')``, the |0…0⟩ frequency is the entry); a symmetric training block only its upper
    triangle, the diagonal being 1."""
    return n_rows * (n_rows - 1) // 2 if symmetric else n_rows * n_cols
