"""What every circuit template knows about itself, and the shared fused-unitary form.

A :class:`Template` is one object per layer template: its weight shape, its gates
per qubit and layer, its entangling pairs, the simulator's fused 2×2 form and its
PennyLane construction. :class:`~hqexp.quantum.ansatz.Ansatz` (the circuit
description), the torch simulator, the PennyLane backend and (through
:meth:`Ansatz.gates`) the Qiskit backend all read the template object, so a new
template is one new file in this package plus one registry line.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from hqexp.quantum.ansatz import Ansatz

REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
HALF_PI = math.pi / 2


class Template:
    """Base class of a layered template. Subclasses set the class attributes and may
    override :meth:`unitaries` (when their fused form is not a :attr:`trig_form`) or
    :meth:`pennylane_layers` (when PennyLane has a template for them)."""

    name: str = "?"
    #: single-qubit gates applied to every qubit in every layer, in time order
    rotations: tuple[str, ...] = ()
    #: entangler when the ansatz leaves it at None
    default_entangler: str = "cnot"
    #: ``(mag coeffs [p, 4], mag offsets [4], phase coeffs [p, 4], phase offsets [4])``: the fused
    #: 2×2 of one qubit has entries ``cos(w·mag + mo)·exp(i(w·phase + po))``, row-major [00, 01, 10, 11]
    trig_form: tuple | None = None

    # ------------------------------------------------------------ structure
    def weight_shape(self, n_qubits: int, n_layers: int) -> tuple[int, ...]:
        """Shape of the trainable weights: ``(L, n)`` for one angle per qubit, else ``(L, n, k)``."""
        k = len(self.rotations)
        return (n_layers, n_qubits) if k == 1 else (n_layers, n_qubits, k)

    def rotation_gates(self, ansatz: Ansatz, layer: int, qubit: int) -> tuple[str, ...]:
        """Single-qubit gates of ``qubit`` in ``layer``, in time order."""
        return self.rotations

    def pre_rotation(self) -> tuple[str, float] | None:
        """A fixed rotation on every qubit after the embedding, before layer 0 (or None)."""
        return None

    def entangling_pairs(self, n_qubits: int, layer: int) -> tuple[tuple[int, int], ...]:
        """(control, target) pairs of the entangling block of ``layer``: an open chain by default."""
        return tuple((i, i + 1) for i in range(n_qubits - 1))

    # ------------------------------------------------------------ executors
    def unitaries(self, ansatz: Ansatz, weights: torch.Tensor, cdtype: torch.dtype) -> torch.Tensor:
        """Fused single-qubit unitaries ``[..., L, n, 2, 2]`` of every layer (torch simulator)."""
        if self.trig_form is None:  # pragma: no cover - every template sets one or overrides this
            raise NotImplementedError(self.name)
        return trig_unitaries(self.name, self.trig_form, weights, len(self.rotations), cdtype)

    def pennylane_layers(self, ansatz: Ansatz, weights: Any, wires: list[int], two: Any) -> None:
        """Queue every layer on the active PennyLane tape (default: gate by gate)."""
        for layer in range(ansatz.n_layers):
            self.pennylane_layer(ansatz, weights, layer, two)

    def pennylane_layer(self, ansatz: Ansatz, weights: Any, layer: int, two: Any) -> None:
        """Queue one layer gate by gate: the rotations of every qubit, then the entanglers."""
        import pennylane as qml

        for q in range(ansatz.n_qubits):
            names = self.rotation_gates(ansatz, layer, q)
            for j, name in enumerate(names):
                angle = (
                    weights[..., layer, q]
                    if len(names) == 1 and len(self.rotations) <= 1
                    else weights[..., layer, q, j]
                )
                getattr(qml, name)(angle, wires=q)
        for c, t in self.entangling_pairs(ansatz.n_qubits, layer):
            two(wires=[c, t])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def trig_unitaries(name: str, form: tuple, weights: torch.Tensor, n_angles: int, cdtype: torch.dtype) -> torch.Tensor:
    """``[..., L, n, 2, 2]`` from a trig form: ``cos(w @ A + off) @ M`` viewed as complex.

    Every entry ``cos(α)·e^{iβ}`` has real part ``½cos(α+β) + ½cos(α−β)`` (imaginary:
    β − π/2), so the whole matrix stack is a handful of ops instead of gate-by-gate
    products: at 4–12 qubits the simulator is dispatch-bound and op count is time.
    """
    A, off, M = trig_tables(name, form, str(weights.device))
    w = weights.double().unsqueeze(-1) if n_angles == 1 else weights.double()
    re_im = torch.cos(torch.addmm(off, w.reshape(-1, A.shape[0]), A)) @ M  # [.., 8]
    return torch.view_as_complex(re_im.view(*w.shape[:-1], 2, 2, 2)).to(cdtype)


@lru_cache(maxsize=64)
def trig_tables(name: str, form: tuple, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``A[p, 16]``, ``off[16]``, ``M[16, 8]`` of a trig form: entry e's real part
    (imaginary: phase − π/2) is ½cos(lin[4e+2j]) + ½cos(lin[4e+2j+1]), j = re/im."""
    mc, mo, pc, po = (torch.tensor(t, dtype=torch.float64) for t in form)
    A = torch.zeros(mc.shape[0], 16, dtype=torch.float64)
    off = torch.zeros(16, dtype=torch.float64)
    M = torch.zeros(16, 8, dtype=torch.float64)
    for e in range(4):
        for j, shift in enumerate((0.0, -HALF_PI)):  # Re: cos φ, Im: sin φ = cos(φ − π/2)
            col = 2 * e + j
            for t, sign in enumerate((1.0, -1.0)):  # α + β, α − β
                A[:, 2 * col + t] = mc[:, e] + sign * pc[:, e]
                off[2 * col + t] = mo[e] + sign * (po[e] + shift)
                M[2 * col + t, col] = 0.5
    return tuple(t.to(device=device) for t in (A, off, M))


def rotation_matrix(name: str, theta: torch.Tensor) -> torch.Tensor:
    """``[..., 2, 2]`` complex matrix of RX/RY/RZ(theta) for a real tensor ``theta``."""
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    z = torch.zeros_like(c)
    cx = torch.complex
    if name == "RX":
        rows = [[cx(c, z), cx(z, -s)], [cx(z, -s), cx(c, z)]]
    elif name == "RY":
        rows = [[cx(c, z), cx(-s, z)], [cx(s, z), cx(c, z)]]
    elif name == "RZ":
        rows = [[cx(c, -s), cx(z, z)], [cx(z, z), cx(c, s)]]
    else:  # pragma: no cover - Ansatz validates names
        raise ValueError(name)
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)
