"""Expressibility and entangling capability of an ansatz (states from a backend; by default
the torch simulator in double precision).

* Expressibility (Sim, Johnson & Aspuru-Guzik 2019): KL divergence between the
  distribution of fidelities F = |⟨ψ(θ)|ψ(φ)⟩|² over random parameter pairs and the
  Haar distribution P(F) = (N−1)(1−F)^(N−2), N = 2^n. 0 = as expressive as Haar.
* Meyer–Wallach Q = 2(1 − (1/n) Σ_k Tr ρ_k²), averaged over random parameters.
* Half-chain entanglement entropy S(ρ_A), A = the first ⌊n/2⌋ wires, in nats, with
  Page's value for Haar-random states as the reference ("volume law").
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hqexp.diagnostics.landscape import scan_backend
from hqexp.errors import ConfigError
from hqexp.quantum import Ansatz
from hqexp.quantum.backends import Backend

# Only guards underflow of the Haar tail at large n; any real floor would bias the KL.
_EPS = np.finfo(float).tiny


def states(
    ansatz: Ansatz,
    weights: torch.Tensor,
    inputs: torch.Tensor | None = None,
    chunk: int = 1024,
    backend: Backend | str = "torch",
) -> torch.Tensor:
    """Final states ``[S, 2**n]`` (complex128) for per-sample weights ``[S, *weight_shape]``."""
    be = scan_backend(backend)
    out = []
    with torch.no_grad():
        for start in range(0, weights.shape[0], chunk):
            w = weights[start : start + chunk].to(torch.float64)
            x = (
                torch.zeros(w.shape[0], ansatz.n_qubits, dtype=torch.float64)
                if inputs is None
                else inputs[start : start + chunk].to(torch.float64)
            )
            out.append(be.states(ansatz, x, w))
    return torch.cat(out)


def haar_bin_probabilities(n_qubits: int, bins: int) -> np.ndarray:
    """Probability mass of the Haar fidelity distribution in ``bins`` equal bins of [0, 1]."""
    N = 2**n_qubits
    edges = np.linspace(0.0, 1.0, bins + 1)
    cdf_tail = (1.0 - edges) ** (N - 1)  # P(F > e) = (1 - e)^(N-1)
    return cdf_tail[:-1] - cdf_tail[1:]


def kl_to_haar(fidelities: np.ndarray, n_qubits: int, bins: int = 75) -> float:
    """KL(P_circuit ‖ P_Haar) of a fidelity sample, on ``bins`` equal bins of [0, 1]."""
    if bins < 2:
        raise ConfigError(f"expressibility needs at least 2 bins, got {bins}")
    f = np.clip(np.asarray(fidelities, dtype=float), 0.0, 1.0)
    p = np.histogram(f, bins=bins, range=(0.0, 1.0))[0] / f.size
    q = np.maximum(haar_bin_probabilities(n_qubits, bins), _EPS)
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / q[mask])).sum())


def expressibility(
    ansatz: Ansatz, pairs: int = 5000, bins: int = 75, seed: int = 0, backend: Backend | str = "torch"
) -> float:
    """Sim et al.'s expressibility (lower = closer to Haar) over ``pairs`` random pairs."""
    if pairs < 1:
        raise ConfigError(f"expressibility needs pairs >= 1, got {pairs}")
    g = torch.Generator().manual_seed(seed)
    w = torch.rand((2 * pairs, *ansatz.weight_shape), generator=g, dtype=torch.float64) * (2 * math.pi)
    psi = states(ansatz, w, backend=backend)
    fid = (psi[:pairs].conj() * psi[pairs:]).sum(-1).abs().pow(2)
    return kl_to_haar(fid.numpy(), ansatz.n_qubits, bins)


def single_qubit_purities(psi: torch.Tensor) -> torch.Tensor:
    """``[S, n]`` purities Tr ρ_k² of every one-qubit reduced state."""
    S, dim = psi.shape
    n = dim.bit_length() - 1
    out = []
    for k in range(n):
        v = psi.reshape(S, 2**k, 2, -1)
        a, b = v[:, :, 0, :].reshape(S, -1), v[:, :, 1, :].reshape(S, -1)
        r00, r11 = a.abs().pow(2).sum(-1), b.abs().pow(2).sum(-1)
        r01 = (a * b.conj()).sum(-1)
        out.append(r00**2 + r11**2 + 2 * r01.abs().pow(2))
    return torch.stack(out, dim=-1)


def meyer_wallach(psi: torch.Tensor) -> torch.Tensor:
    """Meyer–Wallach Q ``[S]`` of states ``[S, 2**n]`` (0 = product, 1 = e.g. GHZ)."""
    return 2.0 * (1.0 - single_qubit_purities(psi).mean(-1))


def entangling_capability(
    ansatz: Ansatz, samples: int = 1000, seed: int = 0, backend: Backend | str = "torch"
) -> float:
    """Mean Meyer–Wallach Q over ``samples`` uniform random parameter sets."""
    if ansatz.n_qubits < 2:
        return 0.0
    g = torch.Generator().manual_seed(seed)
    w = torch.rand((samples, *ansatz.weight_shape), generator=g, dtype=torch.float64) * (2 * math.pi)
    return float(meyer_wallach(states(ansatz, w, backend=backend)).mean())


def half_chain_entropy(psi: torch.Tensor) -> torch.Tensor:
    """Von Neumann entropy (nats) ``[S]`` of the first ⌊n/2⌋ wires of states ``[S, 2**n]``."""
    S, dim = psi.shape
    n = dim.bit_length() - 1
    dim_a = 2 ** (n // 2)
    sv = torch.linalg.svdvals(psi.reshape(S, dim_a, dim // dim_a))
    p = sv.pow(2)
    p = p / p.sum(-1, keepdim=True)
    ent = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    return torch.where(ent < 1e-12, torch.zeros_like(ent), ent)  # rounding noise of a product state


def page_entropy(n_qubits: int) -> float:
    """Page's mean half-chain entropy of Haar-random states (exact formula, nats)."""
    m, N = 2 ** (n_qubits // 2), 2 ** (n_qubits - n_qubits // 2)  # m <= N
    return sum(1.0 / k for k in range(N + 1, m * N + 1)) - (m - 1) / (2 * N)


def data_entropy(
    ansatz: Ansatz, features: np.ndarray, seed: int = 0, max_samples: int = 2000, backend: Backend | str = "torch"
) -> dict:
    """Half-chain entropy of data-encoded states: features ``[S, n]`` → embedding → ansatz.

    The template weights are one uniform random draw (fixed by ``seed``): the question is
    how much entanglement the *data* drives through this circuit, compared with the
    Page value of a Haar-random state.
    """
    if features.ndim != 2 or features.shape[1] != ansatz.n_qubits:
        raise ConfigError(f"features must be [S, {ansatz.n_qubits}], got {list(features.shape)}")
    x = torch.as_tensor(features[:max_samples], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(ansatz.weight_shape, generator=g, dtype=torch.float64) * (2 * math.pi)
    w = w.expand(x.shape[0], *ansatz.weight_shape)
    ent = half_chain_entropy(states(ansatz, w, inputs=x, backend=backend))
    page = page_entropy(ansatz.n_qubits)
    mean = float(ent.mean())
    return {
        "entropy_mean": mean,
        "entropy_std": float(ent.std()) if len(ent) > 1 else 0.0,
        "page_entropy": page,
        "entropy_over_page": mean / page if page > 0 else float("nan"),
        "n_states": int(x.shape[0]),
    }
