"""Backends: executors of an :class:`Ansatz`, chosen by the names of ``conf/backend/*.yaml``.

Every backend maps inputs ``[B, n_qubits]`` and weights (``weight_shape`` or
``[B, *weight_shape]``) to expectation values ``[B, n_out]``, differentiably through
torch autograd. Heavy packages (PennyLane, Qiskit) are imported only when a backend
that needs them is built.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from hqexp.errors import BackendUnavailable, ConfigError
from hqexp.quantum.ansatz import Ansatz

log = logging.getLogger(__name__)

_DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


class Backend:
    """Base class. Subclasses set ``name``/``exact`` and implement :meth:`run`."""

    name: str = "?"
    exact: bool = True

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailable` with an install hint if this cannot run here."""

    def run(self, ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class TorchBackend(Backend):
    """hqexp's own batched state-vector simulator (``hqexp.quantum.statevector``)."""

    name = "torch"

    def __init__(self, dtype: str = "complex64", device: str | None = None) -> None:
        if dtype not in _DTYPES:
            raise ConfigError(f"torch backend dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        self.dtype = _DTYPES[dtype]
        self.device = device

    def check_available(self) -> None:
        if self.device and self.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable(
                "backend 'torch' was asked for device 'cuda' but torch sees no CUDA GPU "
                "(install a CUDA build of torch, or set backend.device=null)"
            )

    def run(self, ansatz, inputs, weights):
        from hqexp.quantum.statevector import torch_expval

        if self.device is not None and inputs.device != torch.device(self.device):
            out = torch_expval(ansatz, inputs.to(self.device), weights.to(self.device), self.dtype)
            return out.to(inputs.device)
        return torch_expval(ansatz, inputs, weights, self.dtype)


def _need_module(backend: str, module: str, hint: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"backend {backend!r} needs the Python package {module!r}: {hint}")


class PennyLaneBackend(Backend):
    """A PennyLane device running the PennyLane templates (an independent reference)."""

    def __init__(self, device: str, diff_method: str, name: str, shots: int | None = None) -> None:
        self.device_name, self.diff_method, self.name = device, diff_method, name
        self.shots = shots
        self.exact = shots is None
        self._qnodes: dict = {}

    def check_available(self) -> None:
        _need_module(self.name, "pennylane", "pip install pennylane pennylane-lightning")
        if self.device_name == "lightning.gpu":
            _need_module(self.name, "pennylane_lightning.lightning_gpu_ops",
                         "pip install 'hqexp[gpu]' (pennylane-lightning-gpu, needs an NVIDIA GPU with CUDA)")
            if not torch.cuda.is_available():
                raise BackendUnavailable("backend 'lightning_gpu' needs an NVIDIA GPU with CUDA; none is visible")
        elif self.device_name == "lightning.qubit":
            _need_module(self.name, "pennylane_lightning", "pip install pennylane-lightning")

    def _qnode(self, ansatz: Ansatz) -> Callable:
        hit = self._qnodes.get(ansatz)
        if hit is None:
            from hqexp.quantum.pennylane_circuits import build_qnode

            hit = build_qnode(ansatz, self.device_name, self.diff_method, self.shots)
            self._qnodes[ansatz] = hit
        return hit

    def run(self, ansatz, inputs, weights):
        qnode = self._qnode(ansatz)
        x = inputs.to(torch.float64)
        w = weights.to(torch.float64)
        if w.dim() == len(ansatz.weight_shape):
            if self.diff_method == "adjoint":
                # Adjoint differentiation does not take broadcast tapes: one tape per sample.
                out = torch.stack([_as_row(qnode(x[b], w), ansatz) for b in range(x.shape[0])])
            else:
                out = _as_matrix(qnode(x, w), ansatz, x.shape[0])
        else:
            out = torch.stack([_as_row(qnode(x[b], w[b]), ansatz) for b in range(x.shape[0])])
        return out.to(inputs.dtype)


def _as_row(res, ansatz: Ansatz) -> torch.Tensor:
    if isinstance(res, (tuple, list)):
        return torch.stack([torch.as_tensor(r) for r in res])
    return torch.as_tensor(res).reshape(ansatz.n_out)


def _as_matrix(res, ansatz: Ansatz, batch: int) -> torch.Tensor:
    if isinstance(res, (tuple, list)):
        return torch.stack([torch.as_tensor(r).reshape(batch) for r in res], dim=-1)
    return torch.as_tensor(res).reshape(batch, ansatz.n_out)


@dataclass
class BackendSpec:
    """How to build one named backend and what it accepts."""

    factory: Callable[..., Backend]
    description: str
    options: dict = field(default_factory=dict)


def _aer(**kw) -> Backend:
    from hqexp.quantum.aer import AerBackend

    return AerBackend(**kw)


REGISTRY: dict[str, BackendSpec] = {
    "torch": BackendSpec(TorchBackend, "hqexp's batched PyTorch state-vector simulator (fast path)"),
    "default_qubit": BackendSpec(
        lambda shots=None: PennyLaneBackend("default.qubit", "backprop" if shots is None else "parameter-shift",
                                            "default_qubit", shots),
        "PennyLane default.qubit, backprop with parameter broadcasting",
    ),
    "lightning_qubit": BackendSpec(
        lambda: PennyLaneBackend("lightning.qubit", "adjoint", "lightning_qubit"),
        "PennyLane lightning.qubit (C++), adjoint differentiation",
    ),
    "lightning_gpu": BackendSpec(
        lambda: PennyLaneBackend("lightning.gpu", "adjoint", "lightning_gpu"),
        "PennyLane lightning.gpu (cuStateVec), adjoint differentiation; needs an NVIDIA GPU",
    ),
    "aer": BackendSpec(_aer, "Qiskit Aer; exact statevector by default, shots=N for sampling"),
}


def backend_names() -> list[str]:
    return list(REGISTRY)


def get_backend(name: str, **options) -> Backend:
    """Build the backend ``name`` (does not check availability)."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise ConfigError(f"unknown backend {name!r}; choose one of: {', '.join(REGISTRY)}")
    try:
        return spec.factory(**options)
    except TypeError as exc:
        raise ConfigError(f"backend {name!r} does not take options {sorted(options)}: {exc}") from exc


def resolve_backend(name: str, fallback: Sequence[str] = (), options: dict | None = None) -> Backend:
    """The first backend of ``[name, *fallback]`` that can run here.

    ``options`` go to ``name`` only; fallbacks are built with their defaults. Raises
    :class:`BackendUnavailable` listing every reason when none can run.
    """
    reasons = []
    for i, candidate in enumerate([name, *fallback]):
        backend = get_backend(candidate, **((options or {}) if i == 0 else {}))
        try:
            backend.check_available()
        except BackendUnavailable as exc:
            reasons.append(str(exc))
            continue
        if i > 0:
            log.warning("backend %r unavailable (%s); falling back to %r", name, reasons[0], candidate)
        return backend
    if len(reasons) == 1:
        raise BackendUnavailable(reasons[0])
    raise BackendUnavailable("no backend of " + str([name, *fallback]) + " can run here: " + "; ".join(reasons))


def available_backends() -> dict[str, str | None]:
    """``{name: None if it can run here else the reason}`` for every registered backend."""
    out: dict[str, str | None] = {}
    for name in REGISTRY:
        try:
            get_backend(name).check_available()
            out[name] = None
        except BackendUnavailable as exc:
            out[name] = str(exc)
    return out
