"""Trainability diagnostics against the literature (McClean 2018, Cerezo 2021, Sim 2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hqexp.diagnostics import expressibility as ex
from hqexp.diagnostics.landscape import (
    VarianceResult,
    cost_gradients,
    fit_decay,
    gradient_variance,
    random_weights,
)
from hqexp.diagnostics.scan import parse_depth
from hqexp.errors import ConfigError
from hqexp.quantum import Ansatz


def _scan(measurement: str, qubits, depth, samples: int, template: str = "random_pauli"):
    return [
        gradient_variance(
            Ansatz(n, depth(n), template=template, measurement=measurement, pauli_seed=n), samples, seed=n
        )
        for n in qubits
    ]


# ---------------------------------------------------------------- McClean et al. 2018
@pytest.fixture(scope="module")
def deep_scans():
    qubits = range(2, 9)
    return {m: _scan(m, qubits, lambda n: 5 * n, 300) for m in ("z0z1", "global_projector")}


def test_deep_random_circuits_local_pauli_cost_decays_like_2_to_minus_n(deep_scans):
    fit = fit_decay(deep_scans["z0z1"], n_boot=200)
    assert -1.3 <= fit.slope_log2 <= -0.6, fit
    assert fit.r2 > 0.9
    assert fit.ci_low <= fit.slope_log2 <= fit.ci_high


def test_deep_random_circuits_global_cost_decays_like_4_to_minus_n(deep_scans):
    fit = fit_decay(deep_scans["global_projector"], n_boot=200)
    assert -2.5 <= fit.slope_log2 <= -1.5, fit


# ---------------------------------------------------------------- Cerezo et al. 2021
def test_shallow_circuits_global_cost_plateaus_local_cost_does_not():
    qubits = range(2, 11)
    glob = _scan("global_projector", qubits, lambda n: 2, 300)
    loc = _scan("local_projector", qubits, lambda n: 2, 300)
    f_glob, f_loc = fit_decay(glob, n_boot=50), fit_decay(loc, n_boot=50)
    assert f_glob.slope < f_loc.slope, (f_glob, f_loc)
    assert loc[-1].n_qubits == 10 and loc[-1].var_mean >= 10 * glob[-1].var_mean, (loc[-1], glob[-1])


# ---------------------------------------------------------------- same numbers through PennyLane
@pytest.mark.parametrize("measurement", ["global_projector", "local_projector", "z0z1"])
@pytest.mark.parametrize("template", ["random_pauli", "strongly_entangling"])
def test_gradients_agree_with_default_qubit(template, measurement):
    a = Ansatz(3, 2, template=template, measurement=measurement, pauli_seed=7)
    w = random_weights(a, 24, torch.Generator().manual_seed(0))
    ours = cost_gradients(a, w, "torch")
    theirs = cost_gradients(a, w, "default_qubit")
    assert (ours - theirs).abs().max() < 1e-8
    v_ours, v_theirs = ours.var(0).mean().item(), theirs.var(0).mean().item()
    assert v_ours == pytest.approx(v_theirs, rel=1e-6)


def test_per_sample_gradients_are_independent():
    """Sample s's gradient must not depend on the other samples in the batch."""
    a = Ansatz(4, 3, template="random_pauli", measurement="local_projector")
    w = random_weights(a, 8, torch.Generator().manual_seed(1))
    batched = cost_gradients(a, w)
    one_by_one = torch.cat([cost_gradients(a, w[i : i + 1]) for i in range(8)])
    assert torch.allclose(batched, one_by_one, atol=1e-12)


# ---------------------------------------------------------------- fit and inputs
def test_fit_recovers_a_known_exponent_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    results = []
    for n in range(2, 8):
        sd = 2.0 ** (-0.75 * n)  # Var = 2^(-1.5 n)
        g = rng.normal(0.0, sd, size=(4000, 3))
        v = g.var(0, ddof=1)
        results.append(VarianceResult(n, 1, "z0", 4000, float(v.mean()), float(v[0]), float(np.abs(g).mean()), g))
    fit = fit_decay(results, n_boot=300)
    assert fit.slope_log2 == pytest.approx(-1.5, abs=0.03)
    assert fit.ci_low < -1.5 < fit.ci_high
    assert fit.r2 > 0.999


def test_bad_inputs_are_clear():
    with pytest.raises(ConfigError, match="scalar measurement"):
        gradient_variance(Ansatz(2, 1, measurement="z_each"), 10)
    with pytest.raises(ConfigError, match="n_samples must be >= 2"):
        gradient_variance(Ansatz(2, 1, measurement="z0"), 1)
    with pytest.raises(ConfigError, match="two different qubit counts"):
        fit_decay([gradient_variance(Ansatz(2, 1, measurement="z0"), 5)])
    with pytest.raises(ConfigError, match="bad depth"):
        parse_depth("deep")
    assert parse_depth("5n")[1](4) == 20 and parse_depth(3)[1](9) == 3


# ---------------------------------------------------------------- Sim et al. 2019
def test_haar_fidelity_bins_sum_to_one():
    for n in (1, 3, 10):
        assert ex.haar_bin_probabilities(n, 75).sum() == pytest.approx(1.0)


def test_circuit_whose_parameters_do_nothing_is_far_from_haar():
    # Every pair of parameter settings gives the same state: F = 1 for every pair.
    a = Ansatz(1, 1, template="basic_entangler")
    w = torch.zeros(2, *a.weight_shape, dtype=torch.float64)
    psi = ex.states(a, w)
    fid = (psi[0].conj() @ psi[1]).abs().pow(2).item()
    kl = ex.kl_to_haar(np.full(5000, fid), 1, bins=75)
    assert kl == pytest.approx(math.log(75), rel=1e-6)  # Sim et al.'s idle-circuit value
    assert ex.kl_to_haar(np.ones(5000), 3, bins=75) > 10


def test_deep_random_circuit_is_close_to_haar_and_shallow_one_is_not():
    deep = ex.expressibility(Ansatz(3, 15, template="random_pauli"), pairs=3000)
    shallow = ex.expressibility(Ansatz(3, 1, template="hardware_efficient"), pairs=3000)
    assert deep < 0.03
    assert shallow > 5 * deep


def test_haar_states_give_near_zero_kl():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8000, 8, dtype=torch.complex128, generator=g)
    z = z / z.norm(dim=-1, keepdim=True)
    fid = (z[:4000].conj() * z[4000:]).sum(-1).abs().pow(2)
    assert ex.kl_to_haar(fid.numpy(), 3) < 0.03


def test_meyer_wallach_and_entropy_of_known_states():
    ghz = torch.zeros(1, 8, dtype=torch.complex128)
    ghz[0, 0] = ghz[0, 7] = 2**-0.5
    prod = torch.zeros(1, 8, dtype=torch.complex128)
    prod[0, 5] = 1.0
    assert ex.meyer_wallach(ghz).item() == pytest.approx(1.0)
    assert ex.meyer_wallach(prod).item() == pytest.approx(0.0, abs=1e-12)
    bell = torch.zeros(1, 4, dtype=torch.complex128)
    bell[0, 0] = bell[0, 3] = 2**-0.5
    assert ex.half_chain_entropy(bell).item() == pytest.approx(math.log(2))
    assert ex.half_chain_entropy(prod).item() == 0.0
    assert ex.page_entropy(2) == pytest.approx(1 / 3)


def test_entangling_capability_of_deep_circuits_approaches_haar():
    for n in (2, 4):
        q = ex.entangling_capability(Ansatz(n, 5 * n, template="strongly_entangling"), samples=800)
        assert q == pytest.approx((2**n - 2) / (2**n + 1), abs=0.03)
    assert ex.entangling_capability(Ansatz(1, 2)) == 0.0


def test_data_entropy_needs_matching_features():
    a = Ansatz(4, 2)
    d = ex.data_entropy(a, np.random.default_rng(0).uniform(0, math.pi, (50, 4)))
    assert 0 < d["entropy_mean"] <= math.log(4) and d["page_entropy"] == pytest.approx(ex.page_entropy(4))
    with pytest.raises(ConfigError, match=r"features must be \[S, 4\]"):
        ex.data_entropy(a, np.zeros((5, 3)))
