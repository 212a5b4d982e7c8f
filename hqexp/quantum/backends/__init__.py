"""Backends: executors of an :class:`~hqexp.quantum.ansatz.Ansatz`, one file each, found by
the names of ``conf/backend/*.yaml``.

Every backend maps inputs ``[B, n_inputs]`` and weights (``weight_shape`` or
``[B, *weight_shape]``) to expectation values ``[B, n_out]``, differentiably through
torch autograd. Heavy packages (PennyLane, Qiskit) are imported only when a backend
that needs them runs. Everything builds a backend through :func:`from_config` (a
``conf/backend`` mapping) or :func:`resolve_backend` (name, fallback, options).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hqexp.errors import BackendUnavailable, ConfigError
from hqexp.quantum.backends.base import Backend
from hqexp.quantum.backends.torch_statevector import TorchBackend

log = logging.getLogger(__name__)


@dataclass
class BackendSpec:
    """How to build one named backend."""

    factory: Callable[..., Backend]
    description: str


def _pennylane(device: str, name: str) -> Callable[..., Backend]:
    def make(shots: int | None = None, grad: str = "exact", seed: int | None = None, noise=None) -> Backend:
        from hqexp.quantum.backends.pennylane import PennyLaneBackend

        diff = "backprop" if device == "default.qubit" else "adjoint"
        return PennyLaneBackend(device, diff, name, shots, grad, seed, noise)

    return make


def _aer(shots: int | None = None, grad: str = "exact", seed: int | None = None, noise=None) -> Backend:
    from hqexp.quantum.backends.aer import AerBackend

    return AerBackend(shots=shots, grad=grad, seed=seed, noise=noise)


REGISTRY: dict[str, BackendSpec] = {
    "torch": BackendSpec(TorchBackend, "hqexp's batched PyTorch state-vector simulator (fast path)"),
    "default_qubit": BackendSpec(
        _pennylane("default.qubit", "default_qubit"), "PennyLane default.qubit, backprop with parameter broadcasting"
    ),
    "lightning_qubit": BackendSpec(
        _pennylane("lightning.qubit", "lightning_qubit"), "PennyLane lightning.qubit (C++), adjoint differentiation"
    ),
    "lightning_gpu": BackendSpec(
        _pennylane("lightning.gpu", "lightning_gpu"),
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
    import inspect

    takes = [p for p in inspect.signature(spec.factory).parameters if p != "self"]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ConfigError(
            f"backend {name!r} does not take option(s) {', '.join(unknown)}; its options: {', '.join(takes) or 'none'}"
        )
    return spec.factory(**options)


def resolve_backend(
    name: str, fallback: Sequence[str] = (), options: Mapping | None = None, noise: Mapping | None = None
) -> Backend:
    """The first backend of ``[name, *fallback]`` that can run here.

    ``options`` go to ``name`` only; fallbacks are built with their defaults. ``noise`` (a
    ``conf/noise`` mapping) is a property of the run: every candidate gets it, and one that cannot
    apply it says so. Raises :class:`BackendUnavailable` listing every reason when none can run.
    """
    reasons = []
    extra = {"noise": dict(noise)} if noise and noise.get("kind", "none") != "none" else {}
    for i, candidate in enumerate([name, *fallback]):
        backend = get_backend(candidate, **(dict(options or {}) if i == 0 else {}), **extra)
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


def from_config(cfg: Mapping) -> Backend:
    """The backend for a ``conf/backend/*.yaml`` mapping (``name``, ``fallback``, ``options``)."""
    if "name" not in cfg:
        raise ConfigError(f"a backend config needs a name; choose one of: {', '.join(REGISTRY)}")
    return resolve_backend(
        cfg["name"], list(cfg.get("fallback") or []), dict(cfg.get("options") or {}), cfg.get("noise")
    )


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


__all__ = [
    "REGISTRY",
    "Backend",
    "BackendSpec",
    "TorchBackend",
    "available_backends",
    "backend_names",
    "from_config",
    "get_backend",
    "resolve_backend",
]
