"""Circuit helpers shared by the simulator agreement tests: randomised cases, data, runs, checks."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from hqexp.quantum import EMBEDDINGS, MEASUREMENTS, TEMPLATES, Ansatz, expval

COMBOS = list(itertools.product(TEMPLATES, EMBEDDINGS, MEASUREMENTS))


def circuit_cases(seed: int, max_n: int, max_b: int):
    """One randomised (n, layers, batch, entangler) per template x embedding x measurement."""
    rng = random.Random(seed)
    for t, e, m in COMBOS:
        n = max(rng.randint(1, max_n), 2 if m == "z0z1" else 1)
        yield pytest.param(
            Ansatz(n, rng.randint(1, 4), e, t, m, rng.choice(["cnot", "cz"]), pauli_seed=rng.randint(0, 99)),
            rng.randint(1, max_b),
            id=f"{t}-{e}-{m}",
        )


def run_circuit(ansatz, x, w, backend, **opts):
    xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = expval(ansatz, xx, ww, backend, **opts)
    # A weighted sum so that every output's gradient matters.
    (y * torch.linspace(0.5, 1.5, y.shape[1], dtype=y.dtype)).sum().backward()
    return y.detach(), xx.grad, ww.grad


def circuit_data(ansatz, batch, seed, per_sample=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, ansatz.n_inputs, generator=g, dtype=torch.float64) * 2 * math.pi
    shape = (batch, *ansatz.weight_shape) if per_sample else ansatz.weight_shape
    w = torch.rand(shape, generator=g, dtype=torch.float64) * 2 * math.pi
    return x, w


def assert_agree(a, b, atol=1e-5):
    for name, u, v in zip(("value", "d/dinputs", "d/dweights"), a, b):
        assert u.shape == v.shape, name
        err = (u - v).abs().max().item()
        assert err <= atol, f"{name} differs by {err:.2e}"
