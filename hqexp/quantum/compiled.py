"""The torch backend's optional compiled path: ``torch.compile`` of the simulator step.

:func:`~hqexp.quantum.statevector.plain_step` gives the step as ordinary autograd ops (the
hand-written autograd nodes of the eager path are opaque to the tracer); it is compiled once
per circuit, and its first call for each new shape, dtype and grad mode (which traces and
compiles) is timed apart as :attr:`CompiledSteps.compile_s`.

Measured on a 2-core CPU (torch 2.13, Inductor, median of five ``hqexp bench backends`` runs):
slower than the eager path for fwd+bwd at every size of the benchmark grid — (4,2,64) 0.54
against 0.143 ms, (8,3,64) 1.92 against 0.95, (8,3,1024) 10.3 against 6.9, (12,3,256) 44 against
31.5 — because the eager path is already one hand-written node and a compiled call has a fixed
cost of its own (~65 µs for a trivial fwd+bwd); forward alone gains 5–10% from 8 qubits on
large batches. So it is off by default; it is there for GPUs, where ``mode="reduce-overhead"``
replays the fixed-shape step as a CUDA graph, and for measuring.

Clean fallbacks:

* a step whose tracing or compiling fails (no C++ compiler, an unsupported platform, a
  tracer gap) runs eagerly from then on, with one warning, and is listed in
  :attr:`CompiledSteps.failures`;
* compiled backward graphs are not differentiable again, so ``create_graph=True`` (Hessians,
  gradient penalties) replays the eager path for the second derivative (:class:`_Step`).
"""

from __future__ import annotations

import time
import types
import warnings
from collections.abc import Callable
from typing import Any

import torch

from hqexp.errors import ConfigError
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.statevector import plain_step, torch_expval

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def compile_mode(value: Any) -> str | None:
    """The torch backend's ``compile`` option as a ``torch.compile`` mode (None: eager)."""
    if value is None or value is False:
        return None
    if value is True:
        return "default"
    if isinstance(value, str) and value in MODES:
        return value
    raise ConfigError(
        f"torch backend compile must be false, true or a torch.compile mode ({', '.join(MODES)}), got {value!r}"
    )


class CompiledSteps:
    """Compiled simulator steps, one per (circuit, dtype, size rule, device), built on first use.

    Args:
        mode: a ``torch.compile`` mode (:data:`MODES`).
        backend: a ``torch.compile`` backend: ``"inductor"`` (generated kernels) or another
            registered name or callable (``"aot_eager"`` traces without generating code).
    """

    def __init__(self, mode: str = "default", backend: str | Callable = "inductor") -> None:
        self.mode = None if mode == "default" else mode
        self.backend = backend
        self.compile_s = 0.0  # wall time of the calls that traced and compiled
        self.failures: list[str] = []
        self._steps: dict[tuple, Step | None] = {}  # None: compiling failed, run eagerly
        self._seen: set[tuple] = set()

    def __call__(
        self,
        ansatz: Ansatz,
        inputs: torch.Tensor,
        weights: torch.Tensor,
        dtype: torch.dtype,
        dense_max_qubits: int | None = None,
    ) -> torch.Tensor:
        """Expectation values, as :func:`~hqexp.quantum.statevector.torch_expval` computes them."""

        def eager(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return torch_expval(ansatz, x, w, dtype, dense_max_qubits)

        step = plain_step(ansatz, inputs, weights, dtype, dense_max_qubits)  # checks run eagerly
        key = (ansatz, dtype, dense_max_qubits, str(inputs.device), step.__name__)
        if key not in self._steps:
            self._steps[key] = torch.compile(_own_code(step), mode=self.mode, backend=self.backend, dynamic=None)
        compiled = self._steps[key]
        if compiled is None:
            return eager(inputs, weights)
        grad = torch.is_grad_enabled() and (inputs.requires_grad or weights.requires_grad)

        def run() -> torch.Tensor:
            return _Step.apply(inputs, weights, compiled, eager) if grad else compiled(inputs, weights)

        call = (key, tuple(inputs.shape), tuple(weights.shape), inputs.dtype, weights.dtype, grad)
        if call in self._seen:
            return run()
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # the static tables come from lru_cache'd builders, pure functions of the circuit:
                # tracing through the cache wrapper (what the warning is about) is correct here
                warnings.filterwarnings("ignore", message=".*lru_cache", category=UserWarning)
                out = run()
        except Exception as exc:  # tracing or code generation failed: the step is not compiled
            self._steps[key] = None
            root = exc
            # torch wraps the compiler's own error (BackendCompilerFailed.inner_exception)
            while (inner := root.__cause__ or getattr(root, "inner_exception", None)) is not None:
                root = inner
            lines = str(root).strip().splitlines() or [""]
            reason = f"{ansatz.n_qubits} qubits, {ansatz.template}: {type(root).__name__}: {lines[0]}"
            self.failures.append(reason)
            warnings.warn(f"torch.compile failed ({reason}); this circuit runs eagerly", RuntimeWarning, stacklevel=2)
            return eager(inputs, weights)
        self.compile_s += time.perf_counter() - t0
        self._seen.add(call)
        return out


def _own_code(fn: Step) -> Step:
    """``fn`` with a code object of its own. torch.compile keeps its compiled graphs, and its
    limit on recompiles (8 by default), per code object: every circuit's step is a closure of
    the same ``def``, so without this a process running many circuits (a sweep, a model with
    several quantum layers) would exhaust one shared budget and quietly run the rest eagerly."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


class _Step(torch.autograd.Function):
    """A compiled step inside one autograd node, so that its backward can choose: the compiled
    backward for first derivatives, the eager path replayed under ``create_graph=True`` (compiled
    backward graphs are once-differentiable)."""

    @staticmethod
    def forward(ctx, x, w, compiled, eager):  # type: ignore[override]
        with torch.enable_grad():
            xs, ws = (t.detach().requires_grad_(t.requires_grad) for t in (x, w))
            out = compiled(xs, ws)
        ctx.inner = (out, xs, ws)
        ctx.eager = eager
        ctx.save_for_backward(x, w)
        return out.detach()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        needs = ctx.needs_input_grad[:2]
        if torch.is_grad_enabled():  # create_graph: differentiate the eager path, twice if asked
            x, w = ctx.saved_tensors
            with torch.enable_grad():
                wrt = [t for t, need in zip((x, w), needs) if need]
                got = iter(torch.autograd.grad(ctx.eager(x, w), wrt, g, create_graph=True))
        else:
            out, xs, ws = ctx.inner
            wrt = [t for t, need in zip((xs, ws), needs) if need]
            # not retained: Inductor reuses ("donates") the backward's buffers, which a retained
            # graph forbids, so a second backward through the caller's retained graph raises
            # torch's "backward through the graph a second time" (the eager path allows it)
            got = iter(torch.autograd.grad(out, wrt, g))
        return (*(next(got) if need else None for need in needs), None, None)
