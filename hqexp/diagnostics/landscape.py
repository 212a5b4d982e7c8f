"""Barren-plateau scans: gradient variance over random parameters, and its decay with n.

McClean et al. (2018) showed that for random circuits deep enough to form a 2-design
Var[∂C/∂θ_k] decays exponentially in the qubit count; Cerezo et al. (2021) that for
shallow circuits the decay is exponential for *global* costs and only polynomial for
*local* ones. This module measures both, batched over parameter sets: one call of the
torch simulator with per-sample weights ``[S, *weight_shape]`` gives all ``S``
gradients at once, because the cost of sample ``s`` depends only on ``weights[s]``,
so the gradient of the summed cost is the stack of per-sample gradients.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from hqexp.errors import ConfigError
from hqexp.quantum import Ansatz, expval, resolve_backend
from hqexp.quantum.backends import Backend
from hqexp.quantum.measurements import REGISTRY as MEASUREMENT_REGISTRY

SCALAR_MEASUREMENTS = tuple(name for name, m in MEASUREMENT_REGISTRY.items() if m.scalar)


def _check_scalar(ansatz: Ansatz) -> None:
    if ansatz.measurement not in SCALAR_MEASUREMENTS:
        raise ConfigError(
            f"a gradient-variance cost needs a scalar measurement, got {ansatz.measurement!r}; "
            f"choose one of: {', '.join(SCALAR_MEASUREMENTS)}"
        )


def random_weights(
    ansatz: Ansatz, n_samples: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """``[n_samples, *weight_shape]`` drawn uniformly from [0, 2π)."""
    return torch.rand((n_samples, *ansatz.weight_shape), generator=generator, dtype=dtype) * (2 * math.pi)


def scan_backend(backend: Backend | str = "torch") -> Backend:
    """A backend for scans: a :class:`Backend` as given, or one built by name — the torch
    simulator then in double precision, since gradient variances reach 1e-8 at 12 qubits."""
    if isinstance(backend, Backend):
        return backend
    return resolve_backend(backend, options={"dtype": "complex128"} if backend == "torch" else None)


def cost_gradients(
    ansatz: Ansatz,
    weights: torch.Tensor,
    backend: Backend | str = "torch",
    chunk: int = 512,
) -> torch.Tensor:
    """Per-sample gradients ``[S, n_weights]`` of the scalar cost at ``weights[S, …]``.

    The inputs are zero, so the angle embedding is the identity: the scan measures the
    ansatz itself. Non-torch backends are supported (they loop over samples) so that
    the torch numbers can be checked against PennyLane.
    """
    _check_scalar(ansatz)
    if weights.shape[1:] != ansatz.weight_shape:
        raise ConfigError(f"weights must be [S, {', '.join(map(str, ansatz.weight_shape))}], got {list(weights.shape)}")
    be = scan_backend(backend)
    out = []
    for start in range(0, weights.shape[0], chunk):
        w = weights[start : start + chunk].detach().clone().requires_grad_(True)
        x = torch.zeros(w.shape[0], ansatz.n_qubits, dtype=w.dtype)
        expval(ansatz, x, w, be).sum().backward()
        out.append(w.grad.reshape(w.shape[0], -1).to(torch.float64))
    return torch.cat(out)


@dataclass
class VarianceResult:
    """Gradient statistics of one ansatz over ``n_samples`` random parameter sets."""

    n_qubits: int
    n_layers: int
    measurement: str
    n_samples: int
    var_mean: float  # mean over k of Var_s[∂C/∂θ_k]
    var_first: float  # Var_s[∂C/∂θ_0], McClean's single-parameter statistic
    abs_mean: float  # mean over s, k of |∂C/∂θ_k|
    grads: np.ndarray = dataclasses.field(repr=False)  # [S, K]

    def row(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "grads"}


def gradient_variance(
    ansatz: Ansatz, n_samples: int = 200, seed: int = 0, backend: Backend | str = "torch"
) -> VarianceResult:
    """Var[∂C/∂θ_k] over ``n_samples`` uniform parameter sets (mean over k, and k = 0)."""
    if n_samples < 2:
        raise ConfigError(f"n_samples must be >= 2 to estimate a variance, got {n_samples}")
    g = torch.Generator().manual_seed(seed)
    grads = cost_gradients(ansatz, random_weights(ansatz, n_samples, g), backend).numpy()
    var = grads.var(axis=0, ddof=1)
    return VarianceResult(
        ansatz.n_qubits,
        ansatz.n_layers,
        ansatz.measurement,
        n_samples,
        float(var.mean()),
        float(var[0]),
        float(np.abs(grads).mean()),
        grads,
    )


@dataclass
class DecayFit:
    """ln Var = a + s·n, with a bootstrap interval for s / ln 2 (Var ∝ 2^(s/ln2 · n))."""

    intercept: float
    slope: float
    slope_log2: float
    r2: float
    ci_low: float
    ci_high: float
    n_points: int

    def row(self) -> dict:
        return dataclasses.asdict(self)


def _fit(ns: np.ndarray, log_var: np.ndarray) -> tuple[float, float, float]:
    slope, intercept = np.polyfit(ns, log_var, 1)
    pred = intercept + slope * ns
    ss_res = float(((log_var - pred) ** 2).sum())
    ss_tot = float(((log_var - log_var.mean()) ** 2).sum())
    return float(intercept), float(slope), 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0


def fit_decay(results: list[VarianceResult], n_boot: int = 500, level: float = 0.95, seed: int = 0) -> DecayFit:
    """Fit ln(mean_k Var) against n over ``results`` (one per qubit count).

    The interval resamples parameter sets with replacement within each n and refits,
    so it reflects the sampling error of the variances, not only the scatter of points.
    """
    if len({r.n_qubits for r in results}) < 2:
        raise ConfigError("a decay fit needs at least two different qubit counts")
    ns = np.array([r.n_qubits for r in results], dtype=float)
    var = np.array([r.var_mean for r in results])
    if (var <= 0).any():
        raise ConfigError("a gradient variance is zero: the cost does not depend on the weights")
    a, s, r2 = _fit(ns, np.log(var))
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        lv = []
        for r in results:
            idx = rng.integers(0, r.grads.shape[0], r.grads.shape[0])
            lv.append(math.log(max(r.grads[idx].var(axis=0, ddof=1).mean(), 1e-300)))
        boots[b] = _fit(ns, np.array(lv))[1] / math.log(2)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return DecayFit(a, s, s / math.log(2), r2, float(lo), float(hi), len(results))
