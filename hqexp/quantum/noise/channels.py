"""Quantum channels as Kraus operators and superoperators (complex128, built once, cached).

Conventions, the same in every executor and cross-check:

* ``depolarizing(p, k)`` on ``k`` qubits: with probability ``p`` a uniformly random
  non-identity ``k``-qubit Pauli, ``ρ → (1−p)ρ + p/(4^k−1) Σ_{P≠I} PρP`` (PennyLane's
  ``DepolarizingChannel`` for ``k = 1``). Qiskit's ``depolarizing_error(λ, k)`` is
  ``ρ → (1−λ)ρ + λ·I/2^k`` with ``λ = p·4^k/(4^k−1)`` (:func:`qiskit_lambda`).
* ``thermal(t1, t2, t)``: relaxation for a time ``t`` towards |0⟩ at rate ``1/T1`` (amplitude
  damping, γ = 1 − e^{−t/T1}) and loss of coherence at rate ``1/T2`` (the off-diagonal decays as
  e^{−t/T2}: amplitude damping's e^{−t/2T1} times phase damping); needs ``T2 ≤ 2·T1``.
* ``readout(p01, p10)``: the assignment matrix ``A[measured, prepared]``, ``p01`` = P(read 1 |
  prepared 0), ``p10`` = P(read 0 | prepared 1).

A superoperator acts on ``vec(ρ)`` with the row index before the column index
(``vec(ρ)[2r + c] = ρ[r, c]`` for one qubit): ``S = Σ_k K_k ⊗ conj(K_k)``.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

from hqexp.errors import ConfigError

_PAULI = {
    "I": np.eye(2, dtype=np.complex128),
    "X": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "Z": np.array([[1, 0], [0, -1]], dtype=np.complex128),
}


def check_probability(p: object, key: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ConfigError(f"noise.{key} must be a probability in [0, 1], got {p!r}")
    return float(p)


def check_times(t1: float, t2: float, where: str = "noise") -> tuple[float, float]:
    for key, v in (("t1", t1), ("t2", t2)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ConfigError(f"{where}.{key} must be a positive time in seconds, got {v!r}")
    if t2 > 2 * t1 * (1 + 1e-9):
        raise ConfigError(
            f"{where}: T2={t2:g} s > 2·T1={2 * t1:g} s is not physical (coherence cannot outlive twice the "
            "relaxation time); set t2 <= 2*t1"
        )
    return float(t1), float(t2)


def pauli(label: str) -> np.ndarray:
    out = np.ones((1, 1), dtype=np.complex128)
    for ch in label:
        out = np.kron(out, _PAULI[ch])
    return out


@lru_cache(maxsize=256)
def depolarizing_kraus(p: float, k: int) -> tuple[np.ndarray, ...]:
    labels = ["".join(t) for t in itertools.product("IXYZ", repeat=k)]
    out = [math.sqrt(1 - p) * pauli(labels[0])]
    out += [math.sqrt(p / (4**k - 1)) * pauli(lab) for lab in labels[1:]]
    return tuple(out)


def qiskit_lambda(p: float, k: int) -> float:
    """Qiskit's depolarizing parameter for a Pauli error probability ``p`` on ``k`` qubits."""
    return p * 4**k / (4**k - 1)


def amplitude_damping_kraus(gamma: float) -> tuple[np.ndarray, ...]:
    return (
        np.array([[1, 0], [0, math.sqrt(1 - gamma)]], dtype=np.complex128),
        np.array([[0, math.sqrt(gamma)], [0, 0]], dtype=np.complex128),
    )


def phase_damping_kraus(lam: float) -> tuple[np.ndarray, ...]:
    return (
        np.array([[1, 0], [0, math.sqrt(1 - lam)]], dtype=np.complex128),
        np.array([[0, 0], [0, math.sqrt(lam)]], dtype=np.complex128),
    )


@lru_cache(maxsize=4096)
def thermal_kraus(t1: float, t2: float, t: float) -> tuple[np.ndarray, ...]:
    """Amplitude damping (γ = 1 − e^{−t/T1}) followed by the phase damping that makes the
    coherence decay as e^{−t/T2} in all."""
    gamma = 1 - math.exp(-t / t1)
    lam = 1 - math.exp(min(0.0, -2 * t / t2 + t / t1))
    ad, pd = amplitude_damping_kraus(gamma), phase_damping_kraus(lam)
    return tuple(b @ a for a in ad for b in pd)


def superop(kraus: tuple[np.ndarray, ...]) -> np.ndarray:
    """``Σ_k K_k ⊗ conj(K_k)``: the channel on ``vec(ρ)`` (row index first)."""
    return sum(np.kron(K, K.conj()) for K in kraus)


def compose(*superops: np.ndarray) -> np.ndarray:
    """The superoperator of applying ``superops`` in the order given."""
    out = np.eye(superops[0].shape[0], dtype=np.complex128)
    for s in superops:
        out = s @ out
    return out


def entanglement_fidelity(kraus: tuple[np.ndarray, ...]) -> float:
    d = kraus[0].shape[0]
    return float(sum(abs(np.trace(K)) ** 2 for K in kraus) / d**2)


def depolarizing_for_error(error: float, relax_fe: float, k: int) -> float:
    """The Pauli error probability ``p`` that, composed with a relaxation channel of entanglement
    fidelity ``relax_fe``, gives a gate of average infidelity ``error`` (a device's reported gate
    error); 0 when relaxation alone accounts for it.

    With ``λ`` the depolarizing parameter, ``F_e(D∘R) = (1−λ)F_e(R) + λ/d²`` and the average
    fidelity is ``(d·F_e + 1)/(d + 1)``.
    """
    d = 2**k
    fe_target = ((1 - error) * (d + 1) - 1) / d
    if fe_target >= relax_fe:
        return 0.0
    lam = (relax_fe - fe_target) / (relax_fe - 1 / d**2)
    lam = min(max(lam, 0.0), d**2 / (d**2 - 1))
    return lam * (d**2 - 1) / d**2


def assignment(p01: float, p10: float) -> np.ndarray:
    """``A[measured, prepared]`` of one qubit."""
    return np.array([[1 - p01, p10], [p01, 1 - p10]], dtype=np.float64)
