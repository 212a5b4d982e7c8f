"""``random_pauli``: McClean et al. (2018) — RY(π/4) on every qubit, then per layer a seeded
random choice of RX/RY/RZ on each qubit and a CZ chain (the template's default entangler).

The choice is a pure function of ``pauli_seed`` (hashing, not a PRNG stream), so the same
seed names the same circuit on every Python/NumPy version.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import torch

from hqexp.quantum.templates.base import REAL_OF, Template

PAULI_ROTATIONS = ("RX", "RY", "RZ")


@lru_cache(maxsize=256)
def pauli_table(seed: int, n_layers: int, n_qubits: int) -> tuple[tuple[str, ...], ...]:
    """``[layer][qubit]`` rotation names for ``seed``."""

    def pick(layer: int, q: int) -> str:
        digest = hashlib.sha256(f"hqexp-random-pauli:{seed}:{layer}:{q}".encode()).digest()
        return PAULI_ROTATIONS[int.from_bytes(digest[:8], "big") % 3]

    return tuple(tuple(pick(layer, q) for q in range(n_qubits)) for layer in range(n_layers))


class RandomPauli(Template):
    name = "random_pauli"
    rotations = ("R?",)  # one angle per qubit; which axis is drawn per (layer, qubit)
    default_entangler = "cz"

    def rotation_gates(self, ansatz, layer: int, qubit: int) -> tuple[str, ...]:
        return (ansatz.pauli_choices[layer][qubit],)

    def pre_rotation(self) -> tuple[str, float] | None:
        return ("RY", math.pi / 4)

    def unitaries(self, ansatz, weights: torch.Tensor, cdtype: torch.dtype) -> torch.Tensor:
        # One closed form for all three axes, selected by constant 0/1 masks [L, n]:
        # RX=[[c,-is],[-is,c]], RY=[[c,-s],[s,c]], RZ=[[c-is,0],[0,c+is]].
        w = weights.to(REAL_OF[cdtype])
        names = ansatz.pauli_choices
        mx, my, mz = torch.tensor(
            [[[float(g == axis) for g in row] for row in names] for axis in PAULI_ROTATIONS],
            device=w.device,
            dtype=w.dtype,
        )
        c, s = torch.cos(w / 2), torch.sin(w / 2)
        sx, sy, sz = s * mx, s * my, s * mz
        re = torch.stack([c, -sy, sy, c], dim=-1)
        im = torch.stack([-sz, -sx, -sx, sz], dim=-1)
        return torch.complex(re, im).unflatten(-1, (2, 2))
