"""The torch backend's compiled path (``backend.options.compile``): same values, gradients and
second derivatives as default.qubit and the eager path; compile time reported apart; clean
fallbacks. Fast tests compile with Dynamo only (a counting backend) or ``aot_eager`` (which also
traces the backward); Inductor's generated code is exercised by the ``slow`` test."""

from __future__ import annotations

import math

import pytest
import torch
from circuits import assert_agree, circuit_cases, circuit_data, run_circuit
from helpers import hqexp, runs

from hqexp.errors import ConfigError
from hqexp.quantum import Ansatz, expval
from hqexp.quantum.backends.torch_statevector import TorchBackend


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch.compiler.reset()
    yield
    torch.compiler.reset()


class Counting:
    """A torch.compile backend that runs the captured graph as is and counts the graphs."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return gm.forward


def _compiled(backend="aot_eager", dtype="complex128", **opts) -> TorchBackend:
    be = TorchBackend(dtype, compile=True, **opts)
    be.compiled.backend = backend  # a callable is a valid torch.compile backend, not a config value
    return be


@pytest.mark.parametrize("ansatz,batch", list(circuit_cases(7, 9, 16)))
def test_traced_step_matches_default_qubit(ansatz, batch):
    counting = Counting()
    be = _compiled(counting)
    x, w = circuit_data(ansatz, batch, 3)
    assert_agree(run_circuit(ansatz, x, w, "default_qubit"), run_circuit(ansatz, x, w, be))
    assert counting.graphs >= 1 and not be.compiled.failures  # it was traced, not run eagerly


@pytest.mark.parametrize("n,layers,batch", [(3, 2, 5), (6, 3, 64), (8, 2, 7)])  # dense, dense, passes
@pytest.mark.parametrize("per_sample", [False, True])
def test_aot_compiled_gradients_match_eager(n, layers, batch, per_sample):
    a = Ansatz(n, layers)
    x, w = circuit_data(a, batch, 4, per_sample)
    be = _compiled("aot_eager")
    assert_agree(run_circuit(a, x, w, "torch", dtype="complex128"), run_circuit(a, x, w, be), atol=1e-10)
    assert be.compile_s > 0 and not be.compiled.failures


def test_learned_entanglement_compiles():
    a = Ansatz(4, 2, pair_gate="cry")
    x, w = circuit_data(a, 6, 5)
    be = _compiled("aot_eager")
    assert_agree(run_circuit(a, x, w, "default_qubit"), run_circuit(a, x, w, be))
    assert not be.compiled.failures


def test_compile_time_is_counted_once_per_shape_and_grad_mode():
    a = Ansatz(4, 2)
    x, w = circuit_data(a, 8, 6)
    be = _compiled(Counting())
    with torch.no_grad():
        be.execute(a, x, w)
    first = be.compile_s
    assert first > 0
    with torch.no_grad():
        be.execute(a, x, w)
    assert be.compile_s == first  # a repeat call is not a compile
    run_circuit(a, x, w, be)
    assert be.compile_s > first  # a grad-mode call traces anew


def test_second_derivatives_replay_the_eager_path():
    a = Ansatz(4, 2)
    x, w = circuit_data(a, 5, 7)
    hess = []
    for be in (TorchBackend("complex128"), _compiled("aot_eager")):
        xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
        (g,) = torch.autograd.grad(expval(a, xx, ww, be).pow(2).sum(), ww, create_graph=True)
        hess.append(torch.autograd.grad(g.pow(2).sum(), (xx, ww)))
    for u, v in zip(*hess):
        assert (u - v).abs().max().item() < 1e-10


def test_a_failing_compile_runs_eagerly_with_one_warning():
    def broken(gm, example_inputs):
        raise RuntimeError("no code generator here")

    a = Ansatz(4, 2)
    x, w = circuit_data(a, 4, 8)
    be = _compiled(broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*no code generator here"):
        got = run_circuit(a, x, w, be)
    assert_agree(run_circuit(a, x, w, "torch", dtype="complex128"), got, atol=1e-12)
    assert len(be.compiled.failures) == 1 and "4 qubits" in be.compiled.failures[0]
    run_circuit(a, x, w, be)  # from then on eager: no second warning, no second failure
    assert len(be.compiled.failures) == 1


@pytest.mark.parametrize("bad", ["fast", 1, "yes"])
def test_bad_compile_option_is_one_config_error(bad):
    with pytest.raises(ConfigError, match="compile must be false, true or a torch.compile mode"):
        TorchBackend(compile=bad)


@pytest.mark.parametrize("bad", ["", "nonsense", None])
def test_bad_compile_backend_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="compile_backend must be a torch.compile backend .*inductor"):
        TorchBackend(compile=True, compile_backend=bad)


def test_compile_off_by_default_and_reports_nothing():
    be = TorchBackend()
    assert be.compiled is None and be.compile_s == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("n,layers,batch", [(4, 2, 64), (8, 3, 32)])
def test_inductor_matches_default_qubit(n, layers, batch):
    """Inductor's generated kernels (a C++ compiler on CPU), complex64 as in training."""
    a = Ansatz(n, layers)
    x, w = circuit_data(a, batch, 9)
    be = TorchBackend(compile=True)
    assert_agree(run_circuit(a, x, w, "default_qubit"), run_circuit(a, x.float(), w.float(), be))
    assert not be.compiled.failures, be.compiled.failures


def test_torch_compiled_config_trains_and_logs_compile_time(tmp_path):
    hqexp(
        [
            "train",
            "backend=torch_compiled",
            "backend.options.compile_backend=aot_eager",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    (run,) = runs(tmp_path)
    m = run.data.metrics
    assert run.data.params["backend.options.compile"] == "True"
    assert 0 < m["time/compile_s"] < m["time/fit_s"]
    assert m["test/acc"] > 0.5  # breast cancer: better than chance after one epoch


def test_bench_times_the_compiled_path_after_compiling_it(tmp_path):
    import pandas as pd

    csv = tmp_path / "b.csv"
    hqexp(
        [
            "bench",
            "backends",
            "grid=[[3,1,4]]",
            "repeats=1",
            "warmup=1",
            "backends=[torch,torch_compiled]",
            "peers=[]",
            f"csv={csv}",
        ],
        tmp_path,
        timeout=600,
    )
    df = pd.read_csv(csv).set_index("backend")
    assert df.loc["torch_compiled", "status"] == "ok" and df.loc["torch_compiled", "compile_s"] > 0
    assert math.isnan(df.loc["torch", "compile_s"])  # the eager path compiles nothing
    assert df.loc["torch_compiled", "ratio_fwd_bwd"] > 0
