"""``expval`` (functional) and ``QuantumLayer`` (module): the only doors models use."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from hqexp.errors import BackendUnavailable, ConfigError, QuantumInputError, QuantumMemoryError
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.backends import Backend, resolve_backend
from hqexp.quantum.shift import shift_circuits
from hqexp.quantum.tally import Tally

log = logging.getLogger("hqexp")


def _validate(ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor) -> None:
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 2 or inputs.shape[1] != ansatz.n_inputs:
        shape = list(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        what = (
            "one angle per qubit"
            if not ansatz.n_pairs
            else f"{ansatz.n_qubits} qubit angles + {ansatz.n_pairs} pair angles"
        )
        raise QuantumInputError(f"inputs must have shape [B, {ansatz.n_inputs}] ({what}), got {shape}")
    if inputs.shape[0] == 0:
        raise QuantumInputError("inputs have batch size 0")
    ws = tuple(weights.shape)
    if ws != ansatz.weight_shape and ws != (inputs.shape[0], *ansatz.weight_shape):
        raise QuantumInputError(
            f"weights must have shape {list(ansatz.weight_shape)} or "
            f"[{inputs.shape[0]}, {', '.join(map(str, ansatz.weight_shape))}], got {list(ws)}"
        )
    if inputs.is_complex() or weights.is_complex():
        raise QuantumInputError("inputs and weights must be real tensors (rotation angles)")


def _check_finite(inputs: torch.Tensor, weights: torch.Tensor) -> None:
    for what, t in (("inputs", inputs), ("weights", weights)):
        if not torch.isfinite(t.detach()).all():
            raise QuantumInputError(f"{what} contain NaN or inf; refusing to produce a silent wrong answer")


def _count(tally: Tally, be: Backend, ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor, out) -> None:
    """The forward's circuits now; the gradient's shifted circuits when (if) the gradient is taken."""
    B = inputs.shape[0]
    tally.add(ansatz, B, be.shots)
    if not out.requires_grad:
        return
    per = shift_circuits(ansatz, inputs.requires_grad, weights.requires_grad)
    if per:
        out.register_hook(lambda grad: tally.add(ansatz, B * per, be.shots))


def expval(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    backend: str | Backend = "torch",
    fallback: Sequence[str] = (),
    tally: Tally | None = None,
    noise: Mapping | None = None,
    **options,
) -> torch.Tensor:
    """Expectation values ``[B, ansatz.n_out]`` of ``ansatz`` for a batch of inputs.

    Differentiable w.r.t. ``inputs`` ``[B, ansatz.n_inputs]`` and ``weights``
    (``ansatz.weight_shape``, or ``[B, *weight_shape]`` for per-sample weights).
    The result has the dtype of ``inputs``. The circuits a device would run for this call (and
    for its gradient, when taken) are counted in ``tally`` (default: the backend's own). ``noise``
    (a ``conf/noise`` mapping, e.g. ``{"kind": "depolarizing", "p1": 0.001, "p2": 0.01}``) builds a
    noisy backend from a name; a backend object carries its own.
    """
    _validate(ansatz, inputs, weights)
    be = backend if isinstance(backend, Backend) else resolve_backend(backend, fallback, options, noise)
    checked_after = be.nan_propagates(ansatz)
    if not checked_after:
        _check_finite(inputs, weights)
    out = be.execute(ansatz, inputs, weights)
    _count(tally if tally is not None else be.tally, be, ansatz, inputs, weights, out)
    # A NaN or inf in any input or weight makes this backend's whole output row non-finite, so
    # one reduction of the (smaller) output and one host read stand for the input check; the
    # exact check then names the culprit.
    if checked_after and not math.isfinite(float(out.detach().sum())):
        _check_finite(inputs, weights)
        raise FloatingPointError(f"backend {be.name} returned NaN or inf from finite inputs and weights")
    return out if out.dtype == inputs.dtype else out.to(inputs.dtype)


_INITS = ("uniform", "normal", "zeros", "small")


class QuantumLayer(nn.Module):
    """A variational circuit with its own trainable weights.

    Args:
        ansatz: an :class:`Ansatz` or a mapping of its fields.
        backend: backend name (``conf/backend/*.yaml``).
        fallback: backends tried in order when ``backend`` cannot run here.
        backend_options: keyword options of the backend (e.g. ``dtype``, ``shots``).
        init: ``uniform`` on [0, 2π) (default), ``normal`` (std ``init_scale``),
            ``small`` (uniform on [-init_scale, init_scale], a barren-plateau
            mitigation), or ``zeros``.
        init_scale: scale used by ``normal`` and ``small``.
        retries: failed circuit evaluations tolerated on one backend (each is retried
            at once) before the layer moves on to the next backend of ``fallback``.
        step_timeout_s: a forward pass slower than this counts as a failure too (its
            result is kept: a running simulation cannot be pre-empted safely), so a
            backend that is persistently too slow is left after ``retries + 1`` steps.

    ``backend_used`` holds the name of the backend that actually runs; ``steps`` counts
    forward passes per backend and ``events`` lists every switch with its reason.
    """

    def __init__(
        self,
        ansatz: Ansatz | Mapping,
        backend: str = "torch",
        fallback: Sequence[str] = (),
        backend_options: Mapping | None = None,
        init: str = "uniform",
        init_scale: float = 0.1,
        retries: int = 0,
        step_timeout_s: float | None = None,
        noise: Mapping | None = None,
    ) -> None:
        super().__init__()
        self.ansatz = Ansatz.from_config(ansatz)
        if init not in _INITS:
            raise ConfigError(f"unknown init {init!r}; choose one of: {', '.join(_INITS)}")
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"backend.retries must be an int >= 0, got {retries!r}")
        if step_timeout_s is not None and not step_timeout_s > 0:
            raise ConfigError(f"backend.step_timeout_s must be > 0 (or null), got {step_timeout_s!r}")
        chain = [backend, *fallback]
        self.noise = dict(noise) if noise else None
        self._backend = resolve_backend(backend, list(fallback), dict(backend_options or {}), self.noise)
        # What is left to try after the backend in use, for run-time failures.
        self._remaining = chain[chain.index(self._backend.name) + 1 :] if self._backend.name in chain else []
        self.retries, self.step_timeout_s = retries, step_timeout_s
        self._failures = 0
        self.steps: dict[str, int] = {}
        self.events: list[str] = []
        #: circuits and shots a device would have run for this layer (across backend switches)
        self.tally = Tally()
        self.backend_requested = backend
        w = torch.empty(self.ansatz.weight_shape)
        if init == "uniform":
            nn.init.uniform_(w, 0.0, 2 * math.pi)
        elif init == "normal":
            nn.init.normal_(w, 0.0, init_scale)
        elif init == "small":
            nn.init.uniform_(w, -init_scale, init_scale)
        else:
            nn.init.zeros_(w)
        self.weights = nn.Parameter(w)

    @property
    def backend(self) -> Backend:
        """The backend object that runs this layer now (after any fallback or switch)."""
        return self._backend

    def use_backend(self, backend: Backend) -> None:
        """Run this layer's circuits on ``backend`` from now on (e.g. the same simulator with shots)."""
        self._backend = backend
        self._remaining = []
        self._failures = 0

    @property
    def backend_used(self) -> str:
        return self._backend.name

    @property
    def n_out(self) -> int:
        return self.ansatz.n_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The circuit always runs in full precision, also under AMP autocast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
            while True:
                t0 = time.perf_counter()
                try:
                    out = expval(self.ansatz, xf, self.weights, self._backend, tally=self.tally)
                except (ConfigError, QuantumInputError, QuantumMemoryError):
                    raise  # the request is wrong, not the backend: retrying cannot help
                except Exception as exc:
                    self._fail(f"{type(exc).__name__}: {exc}", raise_from=exc)
                    continue
                name = self._backend.name
                self.steps[name] = self.steps.get(name, 0) + 1
                dt = time.perf_counter() - t0
                if self.step_timeout_s is not None and dt > self.step_timeout_s:
                    self._fail(f"step took {dt:.3g} s > step_timeout_s={self.step_timeout_s:g}", raise_from=None)
                else:
                    self._failures = 0
                return out

    @classmethod
    def from_config(cls, ansatz: Ansatz | Mapping, backend: Mapping, init: str = "uniform") -> QuantumLayer:
        """A layer for a ``conf/backend/*.yaml`` mapping: ``name``, ``fallback``, ``options``,
        ``retries``, ``step_timeout_s``, ``noise`` (all but the name optional) — how every model builds one."""
        return cls(
            ansatz,
            backend=backend["name"],
            fallback=list(backend.get("fallback") or []),
            backend_options=dict(backend.get("options") or {}),
            init=init,
            retries=int(backend.get("retries") or 0),
            step_timeout_s=backend.get("step_timeout_s"),
            noise=backend.get("noise"),
        )

    def _fail(self, reason: str, raise_from: BaseException | None) -> None:
        """Count a failure; past ``retries`` move to the next backend that can run here."""
        self._failures += 1
        if self._failures <= self.retries:
            log.warning("backend %s: %s (retry %d of %d)", self._backend.name, reason, self._failures, self.retries)
            return
        old = self._backend.name
        while self._remaining:
            candidate = self._remaining.pop(0)
            try:
                self._backend = resolve_backend(candidate, noise=self.noise)
            except BackendUnavailable:
                continue
            self._failures = 0
            self.events.append(f"{old}->{self._backend.name}: {reason}")
            log.warning("backend %s gave up (%s); switching to %s", old, reason, self._backend.name)
            return
        if raise_from is not None:
            raise raise_from
        self._failures = 0  # a slow last resort is still a result: keep going

    def extra_repr(self) -> str:
        a = self.ansatz
        return (
            f"n_qubits={a.n_qubits}, n_layers={a.n_layers}, template={a.template}, "
            f"embedding={a.embedding}, measurement={a.measurement}, backend={self.backend_used}"
        )
