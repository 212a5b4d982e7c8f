"""Noise: the channels' physics, the torch density-matrix executor against Qiskit Aer's
density-matrix method and PennyLane's default.mixed (each built from its own library's channels),
device noise from calibration snapshots, shots and gradients under noise, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hqexp.errors import ConfigError
from hqexp.quantum import EMBEDDINGS, MEASUREMENTS, TEMPLATES, Ansatz, expval
from hqexp.quantum.backends import get_backend
from hqexp.quantum.noise import NoiseSpec, density
from hqexp.quantum.noise import channels as ch

KINDS = {
    "depolarizing": {"kind": "depolarizing", "p1": 0.02, "p2": 0.06},
    "thermal": {"kind": "thermal", "t1": 40e-6, "t2": 50e-6, "gate_1q_s": 1e-6, "gate_2q_s": 4e-6},
    "readout": {"kind": "readout", "p01": 0.03, "p10": 0.07},
    "device": {"kind": "device", "device": "FakeManilaV2"},
}


def _inputs(a: Ansatz, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, a.n_inputs, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()
    w = (torch.rand(*a.weight_shape, generator=g, dtype=torch.float64) * 2 * math.pi).requires_grad_()
    return x, w


# ---------------------------------------------------------------- physics
def _random_rho(d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = m @ m.conj().T
    return rho / np.trace(rho)


def _apply(superop: np.ndarray, rho: np.ndarray) -> np.ndarray:
    d = rho.shape[0]
    return (superop @ rho.reshape(-1)).reshape(d, d)


@pytest.mark.parametrize(
    "name,kraus",
    [
        ("depolarizing 1q", ch.depolarizing_kraus(0.3, 1)),
        ("depolarizing 2q", ch.depolarizing_kraus(0.2, 2)),
        ("thermal", ch.thermal_kraus(30e-6, 45e-6, 5e-6)),
        ("thermal T2=2T1", ch.thermal_kraus(30e-6, 60e-6, 9e-6)),
        ("amplitude damping", ch.amplitude_damping_kraus(0.4)),
        ("phase damping", ch.phase_damping_kraus(0.4)),
    ],
)
def test_every_channel_keeps_a_density_matrix_a_density_matrix(name, kraus):
    d = kraus[0].shape[0]
    np.testing.assert_allclose(sum(K.conj().T @ K for K in kraus), np.eye(d), atol=1e-12)  # trace preserving
    for seed in range(5):
        out = _apply(ch.superop(kraus), _random_rho(d, seed))
        assert abs(np.trace(out) - 1) < 1e-12
        np.testing.assert_allclose(out, out.conj().T, atol=1e-12)
        assert np.linalg.eigvalsh(out).min() >= -1e-6


def test_amplitude_damping_relaxes_one_to_zero_at_rate_one_over_t1():
    t1, t2 = 50e-6, 40e-6
    one = np.diag([0.0, 1.0]).astype(complex)
    for t in (1e-6, 10e-6, 50e-6, 150e-6):
        out = _apply(ch.superop(ch.thermal_kraus(t1, t2, t)), one)
        assert out[1, 1].real == pytest.approx(math.exp(-t / t1), rel=1e-12)
        assert out[0, 0].real == pytest.approx(1 - math.exp(-t / t1), rel=1e-12)


def test_dephasing_leaves_populations_alone_and_coherence_decays_at_rate_one_over_t2():
    plus = np.full((2, 2), 0.5, dtype=complex)
    pd = _apply(ch.superop(ch.phase_damping_kraus(0.3)), plus)
    np.testing.assert_allclose(np.diag(pd), np.diag(plus), atol=1e-15)
    t1, t2, t = 80e-6, 60e-6, 20e-6
    out = _apply(ch.superop(ch.thermal_kraus(t1, t2, t)), plus)
    assert abs(out[0, 1]) == pytest.approx(0.5 * math.exp(-t / t2), rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_the_noisy_circuit_ends_in_a_density_matrix(kind):
    a = Ansatz(4, 2, template="strongly_entangling")
    x, w = _inputs(a, 3, 0)
    rho = density.density_matrices(a, NoiseSpec.from_config(KINDS[kind]).model(4), x.detach(), w.detach())
    for r in rho:
        assert abs(torch.trace(r) - 1) < 1e-10
        torch.testing.assert_close(r, r.conj().T, atol=1e-12, rtol=0)
        assert torch.linalg.eigvalsh(r).min() >= -1e-6


def test_depolarizing_conventions_match_qiskit_and_pennylane():
    assert ch.qiskit_lambda(0.75, 1) == pytest.approx(1.0)  # p = 3/4: the fully depolarizing channel
    rho = _random_rho(2, 3)
    out = _apply(ch.superop(ch.depolarizing_kraus(0.75, 1)), rho)
    np.testing.assert_allclose(out, np.eye(2) / 2, atol=1e-12)


# ---------------------------------------------------------------- exact limits
@pytest.mark.parametrize("noise", [{"kind": "none"}, {"kind": "depolarizing", "p1": 0.0, "p2": 0.0}])
def test_no_noise_is_the_exact_path(noise):
    for a in (
        Ansatz(3, 2),
        Ansatz(4, 2, template="random_pauli", measurement="local_projector"),
        Ansatz(3, 2, pair_gate="cry", measurement="z0z1"),
    ):
        x, w = _inputs(a, 4, 1)
        ref = expval(a, x, w, "torch", dtype="complex128")
        gref = torch.autograd.grad(ref.sum(), (x, w))
        out = expval(a, x, w, get_backend("torch", dtype="complex128", noise=noise))
        g = torch.autograd.grad(out.sum(), (x, w))
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
        for gi, gr in zip(g, gref):
            torch.testing.assert_close(gi, gr, atol=1e-6, rtol=0)


def test_heisenberg_and_schroedinger_pictures_agree():
    for kind in KINDS:
        a = Ansatz(4, 3, template="basic_entangler", measurement="z_each")
        x, w = _inputs(a, 5, 2)
        m = NoiseSpec.from_config(KINDS[kind]).model(4)
        e = density.expectations(a, m, x, w, torch.complex128)
        p = density.probabilities(a, m, x, w, torch.complex128)
        torch.testing.assert_close(e, a.observable.from_probs(p, 4), atol=1e-12, rtol=0)


# ---------------------------------------------------------------- against Aer and default.mixed
def _grid():
    rng = np.random.default_rng(30)
    for kind, template, measurement in itertools.product(KINDS, TEMPLATES, MEASUREMENTS):
        n = int(rng.integers(2, 5)) if kind != "device" else int(rng.integers(2, 6))
        layers = int(rng.integers(1, 3))
        embedding = EMBEDDINGS[int(rng.integers(0, len(EMBEDDINGS)))]
        yield pytest.param(
            kind,
            template,
            embedding,
            measurement,
            n,
            layers,
            id=f"{kind}-{template}-{embedding}-{measurement}-{n}q{layers}l",
        )


def _values_and_grads(a, x, w, be):
    out = expval(a, x, w, be)
    gx, gw = torch.autograd.grad((out * torch.linspace(0.5, 1.5, out.shape[1], dtype=out.dtype)).sum(), (x, w))
    return out.detach(), gx, gw


@pytest.mark.parametrize("kind,template,embedding,measurement,n,layers", list(_grid()))
def test_torch_agrees_with_aer_and_default_mixed(kind, template, embedding, measurement, n, layers):
    pytest.importorskip("qiskit_aer")
    pytest.importorskip("pennylane")
    a = Ansatz(n, layers, embedding=embedding, template=template, measurement=measurement)
    x, w = _inputs(a, 3, n + 10 * layers)
    noise = KINDS[kind]
    want = _values_and_grads(a, x, w, get_backend("torch", dtype="complex128", noise=noise))
    for peer in ("aer", "default_qubit"):
        got = _values_and_grads(a, x, w, get_backend(peer, noise=noise))
        for g, t in zip(got, want):
            torch.testing.assert_close(g, t, atol=1e-5, rtol=0, msg=lambda m, p=peer: f"{p}: {m}")


def test_learned_entanglement_under_noise_agrees_with_default_mixed():
    a = Ansatz(3, 2, pair_gate="crx", measurement="z_each")
    x, w = _inputs(a, 3, 4)
    for noise in (KINDS["depolarizing"], KINDS["thermal"]):
        want = _values_and_grads(a, x, w, get_backend("torch", dtype="complex128", noise=noise))
        got = _values_and_grads(a, x, w, get_backend("default_qubit", noise=noise))
        for g, t in zip(got, want):
            torch.testing.assert_close(g, t, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- device noise
def test_device_noise_sits_on_a_connected_well_calibrated_chain_and_routes_the_rest():
    from hqexp.quantum.noise.device import best_chain, calibration, load

    spec = NoiseSpec.from_config({"kind": "device", "device": "FakeManilaV2"})
    m = spec.model(4)
    cal = calibration(load("FakeManilaV2"))
    assert list(m.layout) == best_chain(cal, 4)
    for a, b in zip(m.layout, m.layout[1:]):
        assert (min(a, b), max(a, b)) in cal["edges"]
    ring = Ansatz(4, 1, template="basic_entangler")  # CNOT(3, 0) closes the ring: 2 positions apart twice
    assert m.swaps(ring) == 2 * 2
    assert m.tags()["noise.calibration_date"].startswith("2024-05-27")
    # routing changes nothing but the noise: with every error set to zero it is the exact circuit
    from hqexp.quantum.noise.model import NoiseModel

    clean = NoiseModel("depolarizing", 4, p1=(0.0,) * 4, p2=(((-1, -1), 0.0),), coupled=m.coupled)
    x, w = _inputs(ring, 3, 5)
    torch.testing.assert_close(
        density.probabilities(ring, clean, x, w, torch.complex128),
        __import__("hqexp.quantum.statevector", fromlist=["x"]).probabilities(ring, x, w, torch.complex128),
        atol=1e-12,
        rtol=0,
    )


def test_the_fitted_depolarizing_part_reproduces_the_reported_gate_error():
    relax = ch.thermal_kraus(100e-6, 80e-6, 40e-9)
    for k, error in ((1, 3e-4), (2, 8e-3)):
        relax_k = relax if k == 1 else tuple(np.kron(a, b) for a in relax for b in relax)
        p = ch.depolarizing_for_error(error, ch.entanglement_fidelity(relax_k), k)
        total = tuple(D @ R for R in relax_k for D in ch.depolarizing_kraus(p, k))
        d = 2**k
        f_avg = (d * ch.entanglement_fidelity(total) + 1) / (d + 1)
        assert 1 - f_avg == pytest.approx(error, rel=1e-9)


def test_device_noise_against_aer_from_backend_is_close_and_the_gap_is_reported():
    """Our device model against ``AerSimulator.from_backend`` on the same chain: the same circuit
    transpiled by Qiskit to the device's basis (√X, RZ, CX) with its own noise model. They differ
    by construction (RX as two √X with the noise lumped after the gate, CNOT as one native gate,
    no noise on idle qubits in either), so the test bounds the gap and the README reports it."""
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator

    from hqexp.quantum.noise.device import load

    backend = load("FakeManilaV2")
    a = Ansatz(3, 2, template="hardware_efficient")
    x, w = _inputs(a, 4, 6)
    spec = NoiseSpec.from_config({"kind": "device", "device": "FakeManilaV2"})
    m = spec.model(3)
    import dataclasses

    # save_density_matrix holds the state before readout: compare ours before readout too
    ours = density.probabilities(
        a, dataclasses.replace(m, readout_err=None), x.detach(), w.detach(), torch.complex128
    ).numpy()
    sim = AerSimulator.from_backend(backend)
    tv = []
    for b in range(x.shape[0]):
        qc = QuantumCircuit(3)
        for g in a.gates():
            q = [2 - wire for wire in g.wires]
            if g.param is None:
                getattr(qc, {"CNOT": "cx", "CZ": "cz"}[g.name])(*q)
            else:
                kind, v = g.param
                angle = float(x[b, int(v)].detach()) if kind == "x" else float(w.detach().reshape(-1)[int(v)])
                getattr(qc, g.name.lower())(angle, *q)
        tqc = transpile(qc, backend, initial_layout=list(m.layout[::-1]), optimization_level=0, seed_transpiler=0)
        tqc.save_density_matrix()
        rho = np.asarray(sim.run(tqc).result().data()["density_matrix"])
        probs = np.real(np.diag(rho))
        # the transpiled circuit lives on 5 qubits: marginalise onto the layout's (Qiskit order)
        full = probs.reshape([2] * 5)
        keep = [4 - phys for phys in m.layout]  # numpy axis of each physical qubit, position order
        drop = tuple(ax for ax in range(5) if ax not in keep)
        marg = full.sum(axis=drop)
        order = np.argsort(np.argsort(keep))
        marg = np.transpose(marg, order).reshape(-1)
        tv.append(0.5 * np.abs(marg - ours[b]).sum())
    print("total variation distance to AerSimulator.from_backend:", [round(t, 4) for t in tv])
    assert max(tv) < 0.05, tv


# ---------------------------------------------------------------- shots and gradients under noise
def test_shots_sample_the_noisy_distribution():
    a = Ansatz(3, 2)
    x, w = _inputs(a, 1, 7)
    noise = KINDS["device"]
    R, N = 3000, 200
    be = get_backend("torch", dtype="complex128", noise=noise, shots=N, seed=3)
    with torch.no_grad():
        est = expval(a, x.detach().expand(R, -1), w.detach(), be)
        p = density.probabilities(a, NoiseSpec.from_config(noise).model(3), x.detach(), w.detach(), torch.complex128)
    exact = a.observable.from_probs(p, 3)[0]
    se = torch.sqrt(a.observable.single_shot_variance(p, 3)[0] / N / R)
    assert torch.all((est.mean(0) - exact).abs() <= 5 * se)


def test_exact_parameter_shift_under_noise_equals_autograd():
    for a in (Ansatz(3, 2), Ansatz(3, 1, pair_gate="crz")):
        x, w = _inputs(a, 3, 8)
        noise = KINDS["thermal"]
        ref = _values_and_grads(a, x, w, get_backend("torch", dtype="complex128", noise=noise))
        ps = _values_and_grads(a, x, w, get_backend("torch", dtype="complex128", noise=noise, grad="parameter_shift"))
        for g, t in zip(ps, ref):
            torch.testing.assert_close(g, t, atol=1e-8, rtol=0)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "noise,message",
    [
        ({"kind": "depolarizing", "p1": 1.5, "p2": 0.0}, "noise.p1 must be a probability in"),
        ({"kind": "readout", "p01": -0.1, "p10": 0.0}, "noise.p01 must be a probability in"),
        ({"kind": "thermal", "t1": 1e-5, "t2": 3e-5, "gate_1q_s": 1e-8, "gate_2q_s": 1e-7}, "T2=3e-05 s > 2·T1"),
        ({"kind": "device", "device": "FakeNowhere"}, "unknown device 'FakeNowhere'; choose one of: .*FakeManilaV2"),
        ({"kind": "shaky"}, "unknown noise kind 'shaky'"),
        ({"kind": "depolarizing", "p3": 0.1}, "takes no key.*p3"),
    ],
)
def test_bad_noise_is_one_config_error(noise, message):
    with pytest.raises(ConfigError, match=message):
        NoiseSpec.from_config(noise)


def test_a_circuit_wider_than_the_device_and_a_backend_without_noise_are_refused():
    with pytest.raises(ConfigError, match="a circuit of 6 qubits is wider than device FakeManilaV2 .5 qubits."):
        NoiseSpec.from_config(KINDS["device"]).model(6)
    with pytest.raises(ConfigError, match="lightning_qubit.*cannot apply noise=depolarizing"):
        get_backend("lightning_qubit", noise=KINDS["depolarizing"])
    with pytest.raises(ConfigError, match="noise runs on the density-matrix path"):
        get_backend("torch", compile=True, noise=KINDS["depolarizing"])
    with pytest.raises(ConfigError, match="beyond its 13-qubit limit"):
        a = Ansatz(14, 1)
        expval(a, torch.zeros(1, 14), torch.zeros(a.weight_shape), get_backend("torch", noise=KINDS["depolarizing"]))


# ---------------------------------------------------------------- the command line
@pytest.mark.parametrize(
    "args,message",
    [
        (["noise=depolarizing", "noise.p1=1.5"], "noise.p1 must be a probability in [0, 1], got 1.5"),
        (["noise=thermal", "noise.t2=1"], "> 2·T1"),
        (["noise=device", "noise.device=FakeNowhere"], "unknown device 'FakeNowhere'; choose one of:"),
        (["noise=device", "model.quantum.n_qubits=6"], "a circuit of 6 qubits is wider than device FakeManilaV2"),
        (["noise=depolarizing", "backend=lightning_qubit"], "cannot apply noise=depolarizing"),
        (["noise=depolarizing", "model.quantum.n_qubits=14"], "beyond its 13-qubit limit"),
        (["noise=shaky"], "unknown noise 'shaky'; choose one of: depolarizing, device, none, readout, thermal"),
    ],
)
def test_bad_noise_on_the_command_line_is_one_line(tmp_path, args, message):
    from helpers import error_line, hqexp_here

    out = hqexp_here(["train", *args, "trainer.max_epochs=1"], tmp_path, check=False)
    assert out.returncode != 0
    assert message in error_line(out)


def test_train_under_device_noise_then_score_the_checkpoint_under_another_noise(tmp_path):
    from helpers import hqexp_here, runs

    common = ["dataset=iris", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
    hqexp_here(["train", *common, "noise=device", f"hydra.run.dir={tmp_path}/fit"], tmp_path)
    ckpt = tmp_path / "fit" / "checkpoints" / "last.ckpt"
    hqexp_here(["eval", f"ckpt_path={ckpt}"], tmp_path)  # the training's noise
    hqexp_here(["eval", f"ckpt_path={ckpt}", "noise=none"], tmp_path)
    hqexp_here(["eval", f"ckpt_path={ckpt}", "noise=depolarizing", "noise.p2=0.3"], tmp_path)
    fit, same, clean, heavy = sorted(runs(tmp_path), key=lambda r: r.info.start_time)
    t = fit.data.tags
    assert t["noise.kind"] == "device" and t["noise.device"] == "FakeManilaV2"
    assert len(t["noise.layout"].split(",")) == 4 and t["noise.calibration_date"].startswith("2024-05-27")
    assert fit.data.metrics["noise/swaps_per_circuit"] > 0  # the strongly entangling ring needs routing
    assert same.data.metrics["test/loss"] == pytest.approx(fit.data.metrics["test/loss"], rel=1e-6)
    assert "noise.kind" not in clean.data.tags and heavy.data.tags["noise.kind"] == "depolarizing"
    assert clean.data.metrics["test/loss"] != pytest.approx(heavy.data.metrics["test/loss"], rel=1e-3)


def test_noise_induced_barren_plateau_decays_faster_with_more_noise_and_at_least_like_the_bound(tmp_path):
    from omegaconf import OmegaConf

    from hqexp.diagnostics.noise_bp import scan

    cfg = OmegaConf.create(
        {
            "ansatz": {"template": "hardware_efficient", "embedding": "angle_x", "entangler": None, "pauli_seed": 0},
            "cost": "local_projector",
            "qubits": [4, 5],
            "depths": [1, 3, 6],
            "noise_levels": [0.02, 0.06],
            "samples": 16,
            "bootstrap": 200,
            "seed": 0,
        }
    )
    _, fits = scan(cfg)
    for n in (4, 5):
        f = {r["p"]: r for r in fits if r["n_qubits"] == n}
        assert f[0.06]["slope"] < f[0.02]["slope"] < f[0.0]["slope"] + 0.05, f  # steeper for larger p
        for p in (0.02, 0.06):
            assert f[p]["slope"] <= f[p]["bound_slope"] + 1e-3, (n, p, f[p])  # at least as steep as the bound
            assert f[p]["ci_high"] < 0  # the decay is resolved


def test_the_contraction_per_layer_counts_each_qubits_noisy_gates():
    from hqexp.diagnostics.noise_bp import layer_contraction

    a = Ansatz(4, 1, template="hardware_efficient")  # RY, RZ per qubit; CNOT chain: the ends take one CNOT
    assert layer_contraction(a, 0.03, 0.05) == pytest.approx((1 - 0.04) ** 2 * (1 - 16 * 0.05 / 15))
