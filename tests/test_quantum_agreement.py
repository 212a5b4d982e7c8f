"""Every exact backend agrees with the torch simulator: values and gradients to 1e-5."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
from circuits import assert_agree, circuit_cases, circuit_data, run_circuit

from hqexp.errors import ConfigError
from hqexp.quantum import EMBEDDINGS, MEASUREMENTS, TEMPLATES, Ansatz, available_backends, expval

AVAILABLE = {k for k, v in available_backends().items() if v is None}


@pytest.mark.parametrize("ansatz,batch", list(circuit_cases(1, 10, 32)))
def test_default_qubit_matches_torch(ansatz, batch):
    x, w = circuit_data(ansatz, batch, 0)
    assert_agree(run_circuit(ansatz, x, w, "default_qubit"), run_circuit(ansatz, x, w, "torch"))


@pytest.mark.parametrize("ansatz,batch", list(circuit_cases(2, 8, 8)))
def test_lightning_qubit_matches_torch(ansatz, batch):
    x, w = circuit_data(ansatz, batch, 1)
    assert_agree(run_circuit(ansatz, x, w, "lightning_qubit"), run_circuit(ansatz, x, w, "torch"))


@pytest.mark.skipif("aer" not in AVAILABLE, reason="qiskit-aer not installed")
@pytest.mark.parametrize("ansatz,batch", list(circuit_cases(3, 5, 4)))
def test_aer_matches_torch(ansatz, batch):
    x, w = circuit_data(ansatz, batch, 2)
    assert_agree(run_circuit(ansatz, x, w, "aer"), run_circuit(ansatz, x, w, "torch"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["lightning_qubit", "aer"])
@pytest.mark.parametrize("ansatz,batch", list(circuit_cases(4, 10, 32)))
def test_full_range_agreement(ansatz, batch, backend):
    if backend not in AVAILABLE:
        pytest.skip(f"{backend} not available")
    x, w = circuit_data(ansatz, batch, 3)
    assert_agree(run_circuit(ansatz, x, w, backend), run_circuit(ansatz, x, w, "torch"))


@pytest.mark.gpu
@pytest.mark.parametrize("ansatz,batch", list(circuit_cases(5, 10, 16)))
def test_lightning_gpu_matches_torch(ansatz, batch):
    x, w = circuit_data(ansatz, batch, 4)
    assert_agree(run_circuit(ansatz, x, w, "lightning_gpu"), run_circuit(ansatz, x, w, "torch"))


@pytest.mark.gpu
@pytest.mark.parametrize("ansatz,batch", list(circuit_cases(6, 12, 64)))
def test_torch_cuda_matches_cpu(ansatz, batch):
    x, w = circuit_data(ansatz, batch, 5)
    assert_agree(run_circuit(ansatz, x.cuda(), w.cuda(), "torch"), run_circuit(ansatz, x, w, "torch"))


def _pair_cases(seed: int, max_n: int, max_b: int):
    """Learned-entanglement circuits: every template x pair gate, randomised sizes."""
    rng = random.Random(seed)
    for t, g in itertools.product(TEMPLATES, ("crx", "cry", "crz")):
        m = rng.choice(MEASUREMENTS)
        a = Ansatz(
            rng.randint(2, max_n),
            rng.randint(1, 3),
            rng.choice(EMBEDDINGS),
            t,
            m,
            pair_gate=g,
            pauli_seed=rng.randint(0, 99),
        )
        yield pytest.param(a, rng.randint(1, max_b), id=f"{t}-{g}-{m}")


@pytest.mark.parametrize("backend", ["default_qubit", "lightning_qubit", "aer"])
@pytest.mark.parametrize("ansatz,batch", list(_pair_cases(21, 5, 4)))
def test_learned_entanglement_agrees(ansatz, batch, backend):
    if backend not in AVAILABLE:
        pytest.skip(f"{backend} not available")
    x, w = circuit_data(ansatz, batch, 13)
    assert_agree(run_circuit(ansatz, x, w, backend), run_circuit(ansatz, x, w, "torch"))


def test_learned_entanglement_input_shape_is_checked():
    from hqexp.errors import QuantumInputError

    a = Ansatz(4, 1, pair_gate="crz")
    assert a.n_pairs == 6 and a.n_inputs == 10
    with pytest.raises(QuantumInputError, match=r"\[B, 10\] \(4 qubit angles \+ 6 pair angles\)"):
        expval(a, torch.rand(2, 4), torch.rand(a.weight_shape))


@pytest.mark.parametrize("backend", ["default_qubit", "aer"])
def test_per_sample_weights(backend):
    if backend not in AVAILABLE:
        pytest.skip(f"{backend} not available")
    a = Ansatz(4, 2, "angle_y", "strongly_entangling", "local_projector")
    x, w = circuit_data(a, 5, 7, per_sample=True)
    assert_agree(run_circuit(a, x, w, backend), run_circuit(a, x, w, "torch"))
    # Each row must equal a shared-weight run with that row's weights.
    for b in range(5):
        y = expval(a, x[b : b + 1], w[b], "torch")
        assert torch.allclose(y, expval(a, x, w, "torch")[b : b + 1], atol=1e-6)


@pytest.mark.parametrize("n", range(1, 11))
def test_every_wire_layout_agrees(n):
    """Every qubit count 1…10 exercises a different split of the simulator's fused
    passes (groups of 4 with a partial remainder, equal or odd product-state halves),
    with shared and per-sample weights and both entanglers, against default_qubit."""
    for layers, entangler, per_sample in ((1, "cnot", False), (2, "cz", True), (3, "cnot", True)):
        a = Ansatz(n, layers, "angle_x", "strongly_entangling", "z_each", entangler)
        x, w = circuit_data(a, 3, 100 + n, per_sample=per_sample)
        assert_agree(run_circuit(a, x, w, "default_qubit"), run_circuit(a, x, w, "torch"))


def test_complex64_default_agrees_to_1e5():
    a = Ansatz(10, 4, "angle_x", "strongly_entangling", "z_each")
    x, w = circuit_data(a, 16, 9)
    got = run_circuit(a, x.float(), w.float(), "torch")
    ref = run_circuit(a, x, w, "default_qubit")
    assert_agree([g.double() for g in got], ref, atol=1e-5)


@pytest.mark.parametrize("template", TEMPLATES)
def test_torch_gradients_match_parameter_shift(template):
    """Every angle drives one Pauli rotation, so the shift rule is exact."""
    a = Ansatz(3, 2, "angle_x", template, "z_each")
    x, w = circuit_data(a, 2, 11)
    _, gx, gw = run_circuit(a, x, w, "torch", dtype="complex128")
    coef = torch.linspace(0.5, 1.5, a.n_out, dtype=torch.float64)
    f = lambda xx, ww: (expval(a, xx, ww, "torch", dtype="complex128") * coef).sum()  # noqa: E731
    s = math.pi / 2
    for i in range(w.numel()):
        d = torch.zeros(w.numel(), dtype=torch.float64)
        d[i] = s
        d = d.view_as(w)
        shift = (f(x, w + d) - f(x, w - d)) / 2
        assert abs(shift - gw.flatten()[i]) < 1e-9
    for j in range(x.numel()):
        d = torch.zeros(x.numel(), dtype=torch.float64)
        d[j] = s
        d = d.view_as(x)
        assert abs((f(x + d, w) - f(x - d, w)) / 2 - gx.flatten()[j]) < 1e-9


@pytest.mark.parametrize("template", TEMPLATES)
def test_torch_gradcheck_complex128(template):
    """First derivatives of the hand-written backward (4 qubits, shared weights: the dense path)."""
    a = Ansatz(4, 2, "angle_y", template, "global_projector", "cz")
    x, w = circuit_data(a, 3, 12)
    assert torch.autograd.gradcheck(
        lambda xx, ww: expval(a, xx, ww, "torch", dtype="complex128"),
        (x.requires_grad_(), w.requires_grad_()),
    )


@pytest.mark.parametrize("template", TEMPLATES)
def test_torch_gradgradcheck_complex128(template):
    """create_graph=True replays the fused passes with ordinary ops: second
    derivatives must be right, not silently missing the state's terms."""
    a = Ansatz(5, 2, "angle_x", template, "z_each")
    x, w = circuit_data(a, 2, 13)
    assert torch.autograd.gradgradcheck(
        lambda xx, ww: expval(a, xx, ww, "torch", dtype="complex128"),
        (x.requires_grad_(), w.requires_grad_()),
    )


@pytest.mark.parametrize("per_sample", [False, True])
def test_second_derivatives_match_default_qubit(per_sample):
    """A gradient penalty on the default complex64 path, against PennyLane backprop."""
    a = Ansatz(6, 2, "angle_y", "strongly_entangling", "local_projector")
    x, w = circuit_data(a, 3, 14, per_sample=per_sample)

    def penalty_grads(backend, dtype):
        xx = x.to(dtype).requires_grad_()
        ww = w.to(dtype).requires_grad_()
        gx, gw = torch.autograd.grad(expval(a, xx, ww, backend).square().sum(), (xx, ww), create_graph=True)
        return torch.autograd.grad(gx.square().sum() + gw.sin().sum(), (xx, ww))

    got = penalty_grads("torch", torch.float32)
    ref = penalty_grads("default_qubit", torch.float64)
    for g, r in zip(got, ref):
        assert (g.double() - r).abs().max().item() < 1e-4


def test_known_values():
    """Hand-checkable circuits: RX(x)|0> has <Z> = cos x; a Bell-like state."""
    a = Ansatz(1, 1, "angle_x", "basic_entangler", "z_each")
    x = torch.tensor([[0.3], [1.2]], dtype=torch.float64)
    y = expval(a, x, torch.zeros(1, 1, dtype=torch.float64))
    assert torch.allclose(y[:, 0], torch.cos(x[:, 0]))
    # RY(pi/2) on wire 0, CNOT(0,1): <Z0> = <Z1> = 0, global projector = 1/2.
    b = Ansatz(2, 1, "angle_y", "hardware_efficient", "global_projector")
    w = torch.zeros(b.weight_shape, dtype=torch.float64)
    out = expval(b, torch.tensor([[math.pi / 2, 0.0]], dtype=torch.float64), w)
    assert abs(out.item() - 0.5) < 1e-7


def test_twenty_qubits_runs():
    a = Ansatz(20, 1, "angle_x", "strongly_entangling", "z_each")
    x = torch.rand(1, 20)
    w = torch.rand(a.weight_shape)
    with torch.no_grad():
        y = expval(a, x, w)
    assert y.shape == (1, 20) and torch.isfinite(y).all()
    # Product state after one layer then a CNOT ring: <Z> stays within [-1, 1].
    assert y.abs().max() <= 1 + 1e-5


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("measurement", MEASUREMENTS)
def test_small_circuit_dense_path_equals_the_pass_path(template, measurement):
    """The one-matrix path for small shared-weight circuits against the pass structure:
    values, first and second derivatives, for every template, measurement and 1-6 qubits."""
    from hqexp.quantum import statevector

    for n in range(2 if measurement == "z0z1" else 1, 7):
        for layers, ent in ((1, "cnot"), (2, "cz"), (3, "cnot")) if n < 6 else ((2, "cnot"),):  # 6: slow
            a = Ansatz(n, layers, "angle_y", template, measurement, ent, pauli_seed=n)
            x, w = circuit_data(a, 4, n)
            got = []
            for dense in (6, 0):
                assert statevector.dense_applies(a, w, len(x), dense) == (dense == 6)
                xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
                y = expval(a, xx, ww, "torch", dtype="complex128", dense_max_qubits=dense)
                loss = (y * torch.linspace(0.5, 1.5, y.shape[1], dtype=y.dtype)).sum()
                first = torch.autograd.grad(loss, (xx, ww), retain_graph=True)  # the hand-written backward
                again = torch.autograd.grad(loss, (xx, ww), retain_graph=True)  # a retained graph reads it twice
                assert all(torch.equal(u, v) for u, v in zip(first, again))
                gx, gw = torch.autograd.grad(loss, (xx, ww), create_graph=True)  # the replay
                (hx,) = torch.autograd.grad(gx.sum(), xx)
                got.append((y.detach(), *first, gx.detach(), gw.detach(), hx))
            for u, v in zip(*got):
                assert (u - v).abs().max().item() < 1e-10


def test_dense_path_size_rule():
    """Dense up to 6 qubits, at 6 not for a deep circuit on a small batch (measured crossover);
    never for per-sample weights, learned entanglement or 7+ qubits. At 6 qubits it agrees
    with the passes."""
    from hqexp.quantum import statevector
    from hqexp.quantum.dense import DEEP_LAYERS, DEEP_MIN_BATCH

    a5, a6, a7 = (Ansatz(n, 2) for n in (5, 6, 7))
    deep5, deep6 = Ansatz(5, DEEP_LAYERS), Ansatz(6, DEEP_LAYERS)
    big = DEEP_MIN_BATCH
    assert statevector.dense_applies(a5, torch.zeros(a5.weight_shape), 1)
    assert statevector.dense_applies(deep5, torch.zeros(deep5.weight_shape), 1)
    assert statevector.dense_applies(a6, torch.zeros(a6.weight_shape), 1)
    assert not statevector.dense_applies(deep6, torch.zeros(deep6.weight_shape), big - 1)
    assert statevector.dense_applies(deep6, torch.zeros(deep6.weight_shape), big)
    assert not statevector.dense_applies(a6, torch.zeros(big, *a6.weight_shape), big)
    assert not statevector.dense_applies(a7, torch.zeros(a7.weight_shape), 10**6)
    assert not statevector.dense_applies(Ansatz(4, 2, pair_gate="crx"), torch.zeros(a5.weight_shape[:1] + (4, 3)), big)
    assert statevector.dense_applies(a7, torch.zeros(a7.weight_shape), 1, 7)
    assert not statevector.dense_applies(a5, torch.zeros(a5.weight_shape), 1, 0)
    for bad in ("five", -1, 2.5, True):
        with pytest.raises(ConfigError, match=f"dense_max_qubits must be an int >= 0 .* got {bad!r}"):
            expval(a5, torch.zeros(1, 5), torch.zeros(a5.weight_shape), "torch", dense_max_qubits=bad)
    x, w = circuit_data(a6, big, 21)
    got = []
    for dense in (None, 0):
        xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = expval(a6, xx, ww, "torch", dtype="complex128", dense_max_qubits=dense)
        got.append((y.detach(), *torch.autograd.grad((y * torch.arange(1.0, 7.0, dtype=y.dtype)).sum(), (xx, ww))))
    for u, v in zip(*got):
        assert (u - v).abs().max().item() < 1e-10
