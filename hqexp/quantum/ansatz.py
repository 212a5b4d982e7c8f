"""One description of a variational circuit, shared by every executor.

An :class:`Ansatz` is data only: which embedding, which layer template, which
two-qubit entangler, which measurement. Executors read it in two forms:

* :meth:`Ansatz.gates` — the canonical flat gate list (used by the Qiskit backend
  and by tests as the reference semantics), and
* the per-layer structure (``rotation`` + ``entangling_pairs``) that the fused torch
  simulator consumes.

Template semantics follow PennyLane exactly (``StronglyEntanglingLayers`` with its
default ranges, ``BasicEntanglerLayers`` with RX), so a PennyLane device running the
PennyLane template is an independent check of our own simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from hqexp.errors import ConfigError

EMBEDDINGS = ("angle_x", "angle_y", "angle_z")
TEMPLATES = ("strongly_entangling", "basic_entangler", "hardware_efficient")
ENTANGLERS = ("cnot", "cz")
MEASUREMENTS = ("z_each", "z0", "global_projector", "local_projector")

# A state vector of 2**MAX_QUBITS complex64 amplitudes is 8 GiB per sample: past
# this, no machine we target holds even a batch of one with its autograd graph.
MAX_QUBITS = 30


class Gate(NamedTuple):
    """One gate of the canonical gate list.

    ``param`` is ``None`` for fixed gates, ``("x", i)`` for input feature ``i``,
    ``("w", k)`` for the ``k``-th entry of the flattened weights, or ``("c", value)``
    for a constant angle.
    """

    name: str
    wires: tuple[int, ...]
    param: tuple[str, float] | None = None


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


@dataclass(frozen=True)
class Ansatz:
    """A layered variational circuit: embedding → ``n_layers`` × template → measurement.

    Args:
        n_qubits: number of qubits; inputs have exactly this many features.
        n_layers: number of template layers.
        embedding: ``angle_x`` | ``angle_y`` | ``angle_z`` (one rotation per feature).
        template: ``strongly_entangling`` | ``basic_entangler`` | ``hardware_efficient``.
        measurement: ``z_each`` (⟨Z_i⟩ for every qubit), ``z0``, ``global_projector``
            (⟨|0…0⟩⟨0…0|⟩) or ``local_projector`` ((1/n) Σ_j ⟨|0⟩⟨0|_j⟩).
        entangler: two-qubit gate of the template's entangling block, ``cnot`` or ``cz``.
    """

    n_qubits: int
    n_layers: int = 1
    embedding: str = "angle_x"
    template: str = "strongly_entangling"
    measurement: str = "z_each"
    entangler: str = "cnot"

    def __post_init__(self) -> None:
        for key in ("n_qubits", "n_layers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"Ansatz.{key} must be an int, got {value!r}")
        if not 1 <= self.n_qubits <= MAX_QUBITS:
            raise ConfigError(f"Ansatz.n_qubits must be in 1..{MAX_QUBITS}, got {self.n_qubits}")
        if self.n_layers < 1:
            raise ConfigError(f"Ansatz.n_layers must be >= 1, got {self.n_layers}")
        _choice("embedding", self.embedding, EMBEDDINGS)
        _choice("template", self.template, TEMPLATES)
        _choice("measurement", self.measurement, MEASUREMENTS)
        _choice("entangler", self.entangler, ENTANGLERS)

    # ------------------------------------------------------------------ shapes
    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the trainable weights this ansatz consumes."""
        n, L = self.n_qubits, self.n_layers
        return {
            "strongly_entangling": (L, n, 3),
            "basic_entangler": (L, n),
            "hardware_efficient": (L, n, 2),
        }[self.template]

    @property
    def n_weights(self) -> int:
        return math.prod(self.weight_shape)

    @property
    def n_out(self) -> int:
        """Number of expectation values returned per sample."""
        return self.n_qubits if self.measurement == "z_each" else 1

    # --------------------------------------------------------------- structure
    @property
    def rotation_gates(self) -> tuple[str, ...]:
        """Single-qubit gates applied to each qubit in one layer, in time order."""
        return {
            "strongly_entangling": ("RZ", "RY", "RZ"),  # PennyLane Rot(φ, θ, ω)
            "basic_entangler": ("RX",),
            "hardware_efficient": ("RY", "RZ"),
        }[self.template]

    def entangling_pairs(self, layer: int) -> tuple[tuple[int, int], ...]:
        """(control, target) pairs of the entangling block of ``layer``, in order."""
        n = self.n_qubits
        if n == 1:
            return ()
        if self.template == "strongly_entangling":
            r = (layer % (n - 1)) + 1  # PennyLane's default ranges
            return tuple((i, (i + r) % n) for i in range(n))
        if self.template == "basic_entangler":
            if n == 2:
                return ((0, 1),)
            return tuple((i, (i + 1) % n) for i in range(n))
        return tuple((i, i + 1) for i in range(n - 1))  # hardware_efficient: open chain

    def gates(self) -> list[Gate]:
        """The canonical gate list (reference semantics for every backend)."""
        rot = {"angle_x": "RX", "angle_y": "RY", "angle_z": "RZ"}[self.embedding]
        out = [Gate(rot, (q,), ("x", q)) for q in range(self.n_qubits)]
        n_rot = len(self.rotation_gates)
        two = self.entangler.upper()
        for layer in range(self.n_layers):
            for q in range(self.n_qubits):
                base = (layer * self.n_qubits + q) * n_rot
                for j, g in enumerate(self.rotation_gates):
                    out.append(Gate(g, (q,), ("w", base + j)))
            out.extend(Gate(two, pair) for pair in self.entangling_pairs(layer))
        return out

    # ------------------------------------------------------------- conversion
    @classmethod
    def from_config(cls, cfg: object) -> Ansatz:
        """Build from a mapping (e.g. a Hydra ``DictConfig``); unknown keys are an error."""
        if isinstance(cfg, Ansatz):
            return cfg
        try:
            items = dict(cfg.items())  # type: ignore[attr-defined]
        except AttributeError as exc:
            raise ConfigError(f"an ansatz config must be a mapping, got {type(cfg).__name__}") from exc
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(items) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown ansatz key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        return cls(**items)
