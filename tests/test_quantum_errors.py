"""Bad input to the quantum core: one clear error, never a silent wrong answer."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hqexp.errors import BackendUnavailable, ConfigError, QuantumInputError, QuantumMemoryError
from hqexp.quantum import Ansatz, QuantumLayer, expval, resolve_backend


@pytest.fixture
def a():
    return Ansatz(3, 2)


def test_wrong_input_width(a):
    with pytest.raises(QuantumInputError, match=r"shape \[B, 3\].*\[4, 2\]"):
        expval(a, torch.rand(4, 2), torch.rand(a.weight_shape))


def test_wrong_weight_shape(a):
    with pytest.raises(QuantumInputError, match="weights must have shape"):
        expval(a, torch.rand(4, 3), torch.rand(2, 3))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_inf_inputs(a, bad):
    x = torch.rand(4, 3)
    x[1, 2] = bad
    with pytest.raises(QuantumInputError, match="inputs contain NaN or inf"):
        expval(a, x, torch.rand(a.weight_shape))


@pytest.mark.parametrize("dense", [5, 0])
def test_every_nan_position_is_caught_on_torch(dense):
    """The torch backend checks its output, not its inputs (one reduction less per call): that
    holds only if a NaN in any single input or weight reaches the output, for every template,
    embedding, measurement and entangler, on the dense path and the passes alike."""
    from hqexp.quantum import EMBEDDINGS, MEASUREMENTS, TEMPLATES

    for template, embedding, measurement, ent in itertools.product(TEMPLATES, EMBEDDINGS, MEASUREMENTS, ("cnot", "cz")):
        b = Ansatz(3, 2, embedding, template, measurement, ent)
        x, w = torch.rand(2, 3), torch.rand(b.weight_shape)
        for what, t in (("inputs", x), ("weights", w)):
            for i in range(t.numel()):
                t.view(-1)[i] = math.nan
                with pytest.raises(QuantumInputError, match=f"{what} contain NaN"):
                    expval(b, x, w, "torch", dense_max_qubits=dense)
                t.view(-1)[i] = 0.3


def test_pair_gates_check_inputs_first():
    """A controlled pair gate leaves the control-0 amplitudes alone, so a projector can read a
    finite value past a NaN pair angle: there the inputs are checked before the circuit runs."""
    b = Ansatz(3, 1, measurement="global_projector", pair_gate="crx")
    x = torch.rand(2, b.n_inputs)
    x[0, -1] = math.nan
    assert not resolve_backend("torch").nan_propagates(b)
    with pytest.raises(QuantumInputError, match="inputs contain NaN"):
        expval(b, x, torch.rand(b.weight_shape))


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"template": "nope"}, "unknown template 'nope'; choose one of: strongly_entangling"),
        ({"embedding": "amplitude"}, "unknown embedding 'amplitude'"),
        ({"measurement": "x0"}, "unknown measurement 'x0'"),
        ({"entangler": "swap"}, "unknown entangler 'swap'"),
        ({"n_layers": 0}, "n_layers must be >= 1"),
        ({"n_qubits": 0}, "n_qubits must be in 1..30"),
        ({"n_qubits": 2.5}, "n_qubits must be an int"),
        ({"n_qubits": 1, "measurement": "z0z1"}, "'z0z1' needs n_qubits >= 2"),
        ({"pauli_seed": "a"}, "pauli_seed must be an int"),
    ],
)
def test_bad_ansatz(kw, match):
    args = {"n_qubits": 2, **kw}
    with pytest.raises(ConfigError, match=match):
        Ansatz(**args)


def test_unknown_backend(a):
    with pytest.raises(ConfigError, match="unknown backend 'qsim'; choose one of: torch, default_qubit"):
        expval(a, torch.rand(2, 3), torch.rand(a.weight_shape), backend="qsim")


def test_unknown_ansatz_key():
    with pytest.raises(ConfigError, match="unknown ansatz key"):
        Ansatz.from_config({"n_qubits": 2, "depth": 3})


def test_too_many_qubits_for_memory():
    a = Ansatz(30, 2)
    with pytest.raises(QuantumMemoryError, match="30 qubits x batch 64 needs about .* GiB"):
        expval(a, torch.rand(64, 30), torch.rand(a.weight_shape))


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-GPU message")
def test_lightning_gpu_unavailable_says_what_to_install():
    with pytest.raises(BackendUnavailable, match="lightning_gpu"):
        resolve_backend("lightning_gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests fallback without a GPU")
def test_fallback_list_is_tried_in_order():
    layer = QuantumLayer(Ansatz(2, 1), backend="lightning_gpu", fallback=["lightning_qubit", "torch"])
    assert layer.backend_used == "lightning_qubit"
    assert layer(torch.rand(3, 2)).shape == (3, 2)


def test_quantum_layer_trains_and_stays_fp32_under_autocast():
    torch.manual_seed(0)
    layer = QuantumLayer({"n_qubits": 3, "n_layers": 2, "measurement": "z0"}, init="small")
    x = torch.rand(8, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x.bfloat16())
    assert y.dtype == torch.float32 and y.shape == (8, 1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((layer(x) - 0.7) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]  # one target for 8 inputs: 0 is not reachable


def test_bad_init_name():
    with pytest.raises(ConfigError, match="unknown init"):
        QuantumLayer(Ansatz(2), init="glorot")


def test_random_pauli_is_fixed_by_its_seed():
    a = Ansatz(6, 4, template="random_pauli", pauli_seed=3)
    assert a.entangler == "cz" and a.weight_shape == (4, 6)
    assert a.pauli_choices == Ansatz(6, 4, template="random_pauli", pauli_seed=3).pauli_choices
    assert a.pauli_choices != Ansatz(6, 4, template="random_pauli", pauli_seed=4).pauli_choices
    # every axis occurs: the choice is not degenerate
    assert {g for row in a.pauli_choices for g in row} == {"RX", "RY", "RZ"}
    assert Ansatz(3).entangler == "cnot"


def test_non_finite_output_from_finite_input_is_a_backend_failure(a):
    """Finite inputs, non-finite output: the backend is at fault, not the request, so the error
    is not a QuantumInputError (which QuantumLayer re-raises without trying its fallback)."""
    from hqexp.quantum.backends.torch_statevector import TorchBackend

    class Broken(TorchBackend):
        def execute(self, ansatz, inputs, weights):
            return super().execute(ansatz, inputs, weights) * math.inf

    with pytest.raises(FloatingPointError, match="backend torch returned NaN or inf from finite inputs"):
        expval(a, torch.rand(4, 3), torch.rand(a.weight_shape), Broken())
