"""What every measurement knows about itself: its outputs, its diagonal table, its forms.

Every measurement hqexp offers is diagonal in the computational basis, so one Z-basis readout
of a circuit gives all its values at once: each output is ``Σ_x p(x)·f(x)`` for a table
``f[2**n, n_out]`` of eigenvalues. The torch simulator reads the table (``|psi|² @ table``),
the shot sampler applies the same table to counts, the PennyLane backend asks for
:meth:`Measurement.pennylane`, and Qiskit has the same observables as Pauli sums
(:meth:`Measurement.pauli_terms`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch


@lru_cache(maxsize=64)
def z_table(n: int) -> torch.Tensor:
    """``[2**n, n]`` float64: the eigenvalue ±1 of Z on wire ``i`` (wire 0 = MSB) for every basis index."""
    idx = torch.arange(2**n, dtype=torch.int64)
    shifts = torch.arange(n - 1, -1, -1, dtype=torch.int64)
    return (1 - 2 * ((idx[:, None] >> shifts[None, :]) & 1)).to(torch.float64)


class Measurement:
    """One measurement kind. Subclasses set ``name``, ``scalar`` and ``min_qubits`` and implement
    :meth:`table`, :meth:`pauli_terms` and :meth:`pennylane`; :meth:`from_probs` may take a
    cheaper route than the table where one exists."""

    name: str = "?"
    #: one output whatever the width (``z_each`` has one per qubit)
    scalar: bool = True
    min_qubits: int = 1

    def n_out(self, n_qubits: int) -> int:
        """Values returned per sample."""
        return 1

    def table(self, n_qubits: int) -> torch.Tensor:
        """``[2**n, n_out]`` float64 eigenvalues: output ``j`` is ``Σ_x p(x)·table[x, j]``."""
        raise NotImplementedError

    def from_probs(self, probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
        """Expectation values ``[B, n_out]`` from basis probabilities (or shot frequencies) ``[B, 2**n]``."""
        return probs @ self.table(n_qubits).to(device=probs.device, dtype=probs.dtype)

    def single_shot_variance(self, probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
        """Variance of one shot's estimate of each output, ``E[f²] − E[f]²`` (``[B, n_out]``); an
        ``N``-shot mean has this divided by ``N`` (e.g. ``1 − ⟨Z⟩²`` for a Pauli Z)."""
        t = self.table(n_qubits).to(device=probs.device, dtype=probs.dtype)
        return probs @ t.square() - (probs @ t).square()

    def pauli_terms(self, n_qubits: int) -> list[list[tuple[float, str]]]:
        """Per output, the observable as ``[(coefficient, Pauli label)]``, label wire 0 first
        (``"ZII"`` is Z on wire 0 of three)."""
        raise NotImplementedError

    def pennylane(self, wires: list[int]) -> Any:
        """The PennyLane measurement process(es) for this observable (PennyLane imported lazily)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def label(n: int, on: dict[int, str]) -> str:
    """A Pauli label over ``n`` wires, wire 0 first, identity where ``on`` names nothing."""
    return "".join(on.get(w, "I") for w in range(n))
