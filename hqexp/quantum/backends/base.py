"""The backend interface: an executor of an :class:`~hqexp.quantum.ansatz.Ansatz`."""

from __future__ import annotations

import importlib.util

import torch

from hqexp.errors import BackendUnavailable, ConfigError
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.noise.spec import NoiseSpec
from hqexp.quantum.tally import Tally

#: what ``backend.options.grad`` may be, on every backend
GRADS = ("exact", "parameter_shift")


class Backend:
    """Base class. Subclasses set ``name``/``exact`` and implement :meth:`execute`.

    ``execute`` maps inputs ``[B, n_inputs]`` and weights (``weight_shape`` or
    ``[B, *weight_shape]``) to expectation values ``[B, n_out]``, differentiably
    through torch autograd.
    """

    name: str = "?"
    exact: bool = True
    #: shots per circuit (None: exact expectation values)
    shots: int | None = None
    #: ``exact`` (analytic gradient) or ``parameter_shift`` (shifted circuits, sampled with ``shots``)
    grad: str = "exact"
    #: the run's noise (:class:`~hqexp.quantum.noise.NoiseSpec`); backends that apply one set their own
    noise = NoiseSpec()

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailable` with an install hint if this cannot run here."""

    def execute(self, ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def nan_propagates(self, ansatz: Ansatz) -> bool:
        """True where a NaN or inf in any input or weight is certain to make the output
        non-finite; then :func:`expval` checks the (smaller) output instead of the inputs."""
        return False

    def backward_cost(self, ansatz: Ansatz) -> float:
        """A backward pass in forward-pass equivalents (autograd / adjoint: a few; parameter
        shift: two per angle) — what benchmarks use to skip a hopeless measurement."""
        return 3.0

    def states(self, ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Final state vectors ``[B, 2**n]`` (complex128), no gradient; for the state-based
        diagnostics (expressibility, entanglement). Not every backend exposes them."""
        raise BackendUnavailable(
            f"backend {self.name!r} does not return state vectors; "
            "use backend=torch or default_qubit for state-based diagnostics"
        )

    @property
    def tally(self) -> Tally:
        """Circuits and shots this backend executed (or a device would have) through ``expval``."""
        if "_tally" not in self.__dict__:
            self._tally = Tally()
        return self._tally

    @property
    def hardware_faithful(self) -> bool:
        """False where a device could not produce this backend's numbers: a sampled forward value
        with an analytic gradient (``shots`` set, ``grad=exact``)."""
        return self.shots is None or self.grad == "parameter_shift"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def check_grad(grad: object, backend: str) -> str:
    """``grad`` as one of :data:`GRADS`; one line otherwise."""
    if grad not in GRADS:
        raise ConfigError(f"backend {backend!r}: options.grad must be one of {', '.join(GRADS)}, got {grad!r}")
    return str(grad)


def need_module(backend: str, module: str, hint: str) -> None:
    """Raise :class:`BackendUnavailable` naming ``hint`` when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"backend {backend!r} needs the Python package {module!r}: {hint}")
