"""Finite shots and parameter-shift gradients: the statistics of what a device returns.

Every statistical check has a fixed seed (it cannot flake) and a tolerance derived from the
distribution it tests: 5 standard errors for means (a chance of 6e-7 per check for a correct
sampler with a fresh seed), chi-square quantiles at 1e-6 for variances.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from hqexp.errors import ConfigError
from hqexp.quantum import EMBEDDINGS, MEASUREMENTS, TEMPLATES, Ansatz, expval
from hqexp.quantum.backends import get_backend
from hqexp.quantum.sampling import ShotSampler, sample_counts
from hqexp.quantum.statevector import probabilities

Z5 = 5.0


def _circuit(n=3, layers=2, measurement="z_each", seed=0, **kw):
    a = Ansatz(n, layers, measurement=measurement, **kw)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, a.n_inputs, generator=g, dtype=torch.float64) * math.pi
    w = torch.rand(*a.weight_shape, generator=g, dtype=torch.float64) * 2 * math.pi
    return a, x, w


def test_counts_are_a_multinomial_draw():
    probs = torch.tensor([[0.5, 0.25, 0.125, 0.125], [0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    counts = torch.stack([sample_counts(probs, 400, g) for _ in range(2000)])  # [R, 2, 4]
    assert torch.all(counts.sum(-1) == 400)
    assert torch.all(counts[:, 1] == torch.tensor([0.0, 400.0, 0.0, 0.0]))  # a certain outcome is certain
    mean, var = counts[:, 0].mean(0), counts[:, 0].var(0)
    p = probs[0]
    np.testing.assert_array_less((mean - 400 * p).abs(), Z5 * torch.sqrt(400 * p * (1 - p) / 2000))
    lo, hi = stats.chi2.ppf([1e-6, 1 - 1e-6], 1999) / 1999
    ratio = var / (400 * p * (1 - p))
    assert torch.all((ratio > lo) & (ratio < hi)), ratio


@pytest.mark.parametrize("measurement", MEASUREMENTS)
def test_sampled_estimator_is_unbiased_with_the_variance_of_n_shots(measurement):
    a, x, w = _circuit(measurement=measurement)
    R, N = 4000, 250
    be = get_backend("torch", dtype="complex128", shots=N, seed=11)
    with torch.no_grad():
        est = expval(a, x.expand(R, -1), w, be)  # R independent N-shot estimates of one circuit
        p = probabilities(a, x, w, torch.complex128)
    exact = a.observable.from_probs(p, a.n_qubits)[0]
    sigma2 = a.observable.single_shot_variance(p, a.n_qubits)[0] / N  # (1 - <Z>^2)/N for Pauli Z
    if measurement == "z_each":
        torch.testing.assert_close(sigma2, (1 - exact.square()) / N)
    assert torch.all((est.mean(0) - exact).abs() <= Z5 * torch.sqrt(sigma2 / R)), (est.mean(0), exact)
    lo, hi = stats.chi2.ppf([1e-6, 1 - 1e-6], R - 1) / (R - 1)
    ratio = est.var(0) / sigma2
    assert torch.all((ratio > lo) & (ratio < hi)), ratio


def test_every_output_comes_from_the_same_shots():
    """Z_0 and Z_1 estimated from one set of counts covary as one multinomial readout predicts."""
    a, x, w = _circuit(n=2, layers=2)
    R, N = 6000, 100
    be = get_backend("torch", dtype="complex128", shots=N, seed=5)
    with torch.no_grad():
        est = expval(a, x.expand(R, -1), w, be)
        p = probabilities(a, x, w, torch.complex128)[0]
    z = a.observable.table(2)
    want = ((p @ (z[:, 0] * z[:, 1])) - (p @ z[:, 0]) * (p @ z[:, 1])) / N
    got = torch.cov(est.T)[0, 1]
    # the sample covariance of R pairs has standard error about sqrt(var0 var1 + cov^2)/sqrt(R)
    se = torch.sqrt(((1 - (p @ z[:, 0]) ** 2) * (1 - (p @ z[:, 1]) ** 2) / N**2 + want**2) / R)
    assert abs(got - want) <= Z5 * se, (got, want)
    assert abs(want) > 10 * se  # the test has power: the two outputs are correlated here


def test_a_run_is_reproducible_from_its_seed_and_layers_draw_different_shots():
    a, x, w = _circuit()
    xs = x.expand(8, -1)
    torch.manual_seed(7)
    s1 = ShotSampler(100, None)
    s2 = ShotSampler(100, None)
    torch.manual_seed(7)
    s1b = ShotSampler(100, None)
    p = probabilities(a, xs, w, torch.complex128)
    assert torch.equal(s1.estimate(a, p), s1b.estimate(a, p))
    assert not torch.equal(s1.estimate(a, p), s2.estimate(a, p))


def _grid():
    """Every template x embedding x measurement, with and without learned entanglement, at
    random sizes: the randomised grid the gradients must hold on."""
    rng = np.random.default_rng(2024)
    for template, embedding, measurement in itertools.product(TEMPLATES, EMBEDDINGS, MEASUREMENTS):
        n, layers = int(rng.integers(2, 5)), int(rng.integers(1, 4))
        pair = [None, "crx", "cry", "crz"][int(rng.integers(0, 4))]
        yield pytest.param(
            template,
            embedding,
            measurement,
            n,
            layers,
            pair,
            id=f"{template}-{embedding}-{measurement}-{n}q{layers}l-{pair}",
        )


@pytest.mark.parametrize("template,embedding,measurement,n,layers,pair", list(_grid()))
def test_exact_parameter_shift_equals_autograd(template, embedding, measurement, n, layers, pair):
    a = Ansatz(n, layers, embedding=embedding, template=template, measurement=measurement, pair_gate=pair)
    g = torch.Generator().manual_seed(n * 10 + layers)
    x = (torch.rand(5, a.n_inputs, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()
    w = (torch.rand(*a.weight_shape, generator=g, dtype=torch.float64) * 2 * math.pi).requires_grad_()
    cot = torch.randn(5, a.n_out, generator=g, dtype=torch.float64)
    ref = expval(a, x, w, "torch", dtype="complex128")
    want = torch.autograd.grad((ref * cot).sum(), (x, w))
    out = expval(a, x, w, get_backend("torch", dtype="complex128", grad="parameter_shift"))
    got = torch.autograd.grad((out * cot).sum(), (x, w))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    for g_got, g_want in zip(got, want):
        torch.testing.assert_close(g_got, g_want, rtol=0, atol=1e-5)


def _shift_grads(a, x, w, shots, R, seed):
    """R independent parameter-shift gradients of sum(outputs) w.r.t. the weights."""
    be = get_backend("torch", dtype="complex128", shots=shots, grad="parameter_shift", seed=seed)
    wr = w.detach().expand(R, *w.shape).clone().requires_grad_()  # per-sample weights: R gradients
    out = expval(a, x.expand(R, -1), wr, be)
    return torch.autograd.grad(out.sum(), wr)[0].reshape(R, -1)


def test_parameter_shift_gradient_is_unbiased_and_its_error_falls_as_one_over_root_n():
    a, x, w = _circuit(n=3, layers=2)
    wl = w.clone().requires_grad_()
    exact = torch.autograd.grad(expval(a, x, wl, "torch", dtype="complex128").sum(), wl)[0].reshape(-1)
    R = 300
    shots = [100, 400, 1600, 6400]
    rmse = []
    for i, N in enumerate(shots):
        g = _shift_grads(a, x, w, N, R, seed=100 + i)
        se = g.std(0) / math.sqrt(R)
        assert torch.all((g.mean(0) - exact).abs() <= Z5 * se + 1e-12), N
        rmse.append(float((g - exact).square().mean().sqrt()))
    slope = np.polyfit(np.log(shots), np.log(rmse), 1)[0]
    # each RMSE is estimated from R x 18 squared errors (relative sd ~ 1/sqrt(2·R·18) < 1 %), so
    # over a 64x range of N the fitted slope is within a few hundredths of -1/2
    assert abs(slope + 0.5) < 0.05, (slope, rmse)


def test_torch_and_pennylane_agree_with_shots_and_parameter_shift():
    """Same means within their confidence intervals, values and gradients, on a grid of circuits."""
    pytest.importorskip("pennylane")
    R, N = 40, 200
    for n, layers, template, measurement in [
        (2, 1, "strongly_entangling", "z_each"),
        (3, 2, "basic_entangler", "z0z1"),
        (3, 1, "hardware_efficient", "local_projector"),
    ]:
        a, x, w = _circuit(n, layers, measurement, template=template)
        rows = {}
        for name in ("torch", "default_qubit"):
            opts = {"dtype": "complex128"} if name == "torch" else {}
            be = get_backend(name, shots=N, grad="parameter_shift", seed=17, **opts)
            wr = w.expand(R, *w.shape).clone().requires_grad_()
            out = expval(a, x.expand(R, -1), wr, be)
            grad = torch.autograd.grad(out.sum(), wr)[0].reshape(R, -1)
            rows[name] = torch.cat([out.detach(), grad], dim=1)
        t, p = rows["torch"], rows["default_qubit"]
        se = torch.sqrt(t.var(0) / R + p.var(0) / R)
        assert torch.all((t.mean(0) - p.mean(0)).abs() <= Z5 * se + 1e-12), (n, layers, template)


def test_the_tally_counts_forward_and_shifted_circuits():
    from hqexp.quantum import QuantumLayer

    a = Ansatz(3, 2, pair_gate="cry")
    q = QuantumLayer(a)
    x = torch.rand(5, a.n_inputs, requires_grad=True)
    q(x).sum().backward()
    per = 1 + 2 * 3 + 4 * a.n_layers * a.n_pairs + 2 * a.n_weights
    assert q.tally.circuits == 5 * per
    with torch.no_grad():
        q(x)
    assert q.tally.circuits == 5 * per + 5  # inference: forward circuits only


@pytest.mark.parametrize(
    "opts,message",
    [
        ({"shots": 0}, "shots must be a positive int"),
        ({"shots": 2.5}, "shots must be a positive int"),
        ({"grad": "adjoint"}, "options.grad must be one of exact, parameter_shift"),
        ({"grad": "parameter_shift", "compile": True}, "runs on the eager path"),
    ],
)
def test_bad_shot_options_are_one_config_error(opts, message):
    with pytest.raises(ConfigError, match=message):
        get_backend("torch", **opts)


def test_state_based_diagnostics_refuse_a_sampling_backend():
    a, x, w = _circuit()
    with pytest.raises(ConfigError, match="samples .*state vectors come from exact simulation"):
        get_backend("torch", shots=10).states(a, x, w)


# ---------------------------------------------------------------- the hardware bill
def test_a_time_billed_profile_prices_shots_times_the_repetition_period():
    from hqexp.quantum.bill import TimeBilled, circuit_duration_s
    from hqexp.quantum.tally import Tally

    a = Ansatz(2, 1, template="basic_entangler")  # RX RX | RX RX | CNOT(0,1)
    # wire 0: RX(x) RX(w) -> 4 sqrt(X) pulses, then the CNOT with wire 1 (also 4 pulses): 4 t1 + t2
    assert circuit_duration_s(a, 1e-8, 1e-7, 1e-6) == pytest.approx(4e-8 + 1e-7 + 1e-6)
    prof = TimeBilled(
        "t",
        "test",
        usd_per_second=2.0,
        rep_delay_s=1e-4,
        gate_1q_s=1e-8,
        gate_2q_s=1e-7,
        measure_s=1e-6,
        assumed_shots=500,
    )
    t = Tally()
    t.add(a, 10, 100)  # sampled: 1000 shots
    t.add(a, 4, None)  # exact: priced at 500 shots each
    bill = prof.bill(t.snapshot())
    per_shot = 1e-4 + 4e-8 + 1e-7 + 1e-6
    assert bill.circuits == 14 and bill.shots == 1000 + 2000 and bill.shots_source == "mixed"
    assert bill.seconds == pytest.approx(3000 * per_shot)
    assert bill.usd == pytest.approx(2.0 * 3000 * per_shot)


def test_a_shot_billed_profile_prices_tasks_and_shots_and_has_no_time():
    from hqexp.quantum.bill import ShotBilled
    from hqexp.quantum.tally import Tally

    t = Tally()
    t.add(Ansatz(3, 1), 7, 200)
    bill = ShotBilled("s", "test", usd_per_task=0.3, usd_per_shot=0.01).bill(t.snapshot())
    assert bill.usd == pytest.approx(7 * 0.3 + 1400 * 0.01) and bill.seconds is None
    assert "qpu/est_seconds" not in bill.metrics() and bill.tags()["qpu.estimate"].startswith("estimate:")


def test_every_shipped_profile_builds_and_names_its_sources():
    from pathlib import Path

    from omegaconf import OmegaConf

    from hqexp.quantum.bill import build_profile

    files = sorted((Path(__file__).resolve().parents[1] / "conf" / "qpu").glob("*.yaml"))
    assert len(files) >= 4
    for f in files:
        spec = OmegaConf.to_container(OmegaConf.load(f))
        prof = build_profile(spec, f.stem)
        assert prof.name == f.stem and prof.sources.get("price"), f
        assert "read 2026" in prof.sources["price"] or "snapshot" in prof.sources["price"]


def _qpu(run):
    return {k: v for k, v in run.data.metrics.items() if k.startswith("qpu/")}, run.data.tags


def test_a_sampled_parameter_shift_run_records_its_bill(tmp_path):
    from helpers import hqexp_here, runs

    args = [
        "dataset=iris",
        "backend.options.shots=200",
        "backend.options.grad=parameter_shift",
        "trainer.max_epochs=2",
        "callbacks.early_stopping.enabled=false",
        "trainer.enable_progress_bar=false",
        "qpu=braket_iqm_garnet",
    ]
    hqexp_here(["train", *args], tmp_path)
    (run,) = runs(tmp_path)
    m, tags = _qpu(run)
    from helpers import client

    epochs = [p.value for p in client(tmp_path).get_metric_history(run.info.run_id, "qpu/epoch/circuits")]
    assert len(epochs) == 2 and m["qpu/circuits"] == sum(epochs) + m["qpu/test_circuits"]
    assert m["qpu/circuits_per_inference"] == 1.0  # one circuit per classified sample
    assert m["qpu/shots"] == 200 * m["qpu/circuits"]
    assert m["qpu/est_usd"] == pytest.approx(0.3 * m["qpu/circuits"] + 0.00145 * m["qpu/shots"])
    assert "qpu/est_seconds" not in m  # Braket publishes no shot time
    assert tags["qpu.profile"] == "braket_iqm_garnet" and tags["qpu.shots"] == "sampled"
    assert tags["qpu.hardware_faithful"] == "true" and tags["qpu.grad"] == "parameter_shift"


def test_an_exact_run_is_billed_with_assumed_shots_and_a_sampled_exact_gradient_is_flagged(tmp_path):
    from helpers import hqexp_here, runs

    common = ["dataset=iris", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
    hqexp_here(["train", *common, "qpu.assumed_shots=300"], tmp_path)
    hqexp_here(["train", *common, "backend.options.shots=50"], tmp_path)
    exact, sampled = sorted(runs(tmp_path), key=lambda r: r.info.start_time)
    m, tags = _qpu(exact)
    assert tags["qpu.shots"] == "assumed" and m["qpu/shots"] == 300 * m["qpu/circuits"]
    assert m["qpu/est_seconds"] > 0 and tags["qpu.profile"] == "ibm_payg"
    assert _qpu(sampled)[1]["qpu.hardware_faithful"] == "false"


def test_a_classical_twin_has_no_bill(tmp_path):
    from helpers import hqexp_here, runs

    hqexp_here(["train", "model=mlp_classifier", "dataset=iris", "trainer.max_epochs=1"], tmp_path)
    m, tags = _qpu(runs(tmp_path)[0])
    assert not m and "qpu.profile" not in tags


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "backend.options.shots=0"], "shots must be a positive int"),
        (["train", "backend.options.shots=lots"], "shots must be a positive int"),
        (["train", "backend=torch_compiled", "backend.options.grad=parameter_shift"], "runs on the eager path"),
        (["train", "backend.options.grad=adjoint"], "options.grad must be one of exact, parameter_shift"),
        (["train", "qpu=nope"], "unknown qpu 'nope'; choose one of: braket_"),
        (["train", "qpu.assumed_shots=0"], "assumed_shots must be a positive int"),
        (
            ["diagnose", "backend.options.shots=100", "qubits=[2]", "depths=[1]", "samples=4"],
            "samples (shots=100): state vectors come from exact simulation",
        ),
        (["diagnose", "shots", "ckpt_path=/nonexistent.ckpt"], "does not exist"),
        (["diagnose", "shots", "ckpt_path=x.ckpt", "shots_grid=[0]"], "shots_grid must be a non-empty list"),
    ],
)
def test_bad_shot_input_is_one_line(tmp_path, args, message):
    from helpers import error_line, hqexp_here

    out = hqexp_here([*args, "trainer.max_epochs=1"] if args[0] == "train" else args, tmp_path, check=False)
    assert out.returncode != 0
    assert message in error_line(out)


def test_the_shots_curve_of_a_checkpoint(tmp_path):
    from helpers import artifacts, client, hqexp_here, runs

    hqexp_here(["train", "dataset=iris", "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}/fit"], tmp_path)
    ckpt = tmp_path / "fit" / "checkpoints" / "last.ckpt"
    out = hqexp_here(
        ["diagnose", "shots", f"ckpt_path={ckpt}", "shots_grid=[20,2000]", "repeats=2", "grad_repeats=6"], tmp_path
    )
    assert "hqexp diagnose shots: exact test/acc=" in out.stdout
    run = next(r for r in runs(tmp_path) if r.data.tags.get("hqexp.command") == "diagnose shots")
    hist = client(tmp_path).get_metric_history(run.info.run_id, "shots/grad_var")
    var = {p.step: p.value for p in hist}
    assert set(var) == {20, 2000} and var[2000] < var[20]  # 100x the shots: far less gradient noise
    assert {"shots/shots_curve.csv", "plots/shots_curve.png"} <= artifacts(tmp_path, run.info.run_id)
