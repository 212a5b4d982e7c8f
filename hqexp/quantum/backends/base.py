"""The backend interface: an executor of an :class:`~hqexp.quantum.ansatz.Ansatz`."""

from __future__ import annotations

import importlib.util

import torch

from hqexp.errors import BackendUnavailable
from hqexp.quantum.ansatz import Ansatz


class Backend:
    """Base class. Subclasses set ``name``/``exact`` and implement :meth:`execute`.

    ``execute`` maps inputs ``[B, n_inputs]`` and weights (``weight_shape`` or
    ``[B, *weight_shape]``) to expectation values ``[B, n_out]``, differentiably
    through torch autograd.
    """

    name: str = "?"
    exact: bool = True

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def need_module(backend: str, module: str, hint: str) -> None:
    """Raise :class:`BackendUnavailable` naming ``hint`` when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"backend {backend!r} needs the Python package {module!r}: {hint}")
