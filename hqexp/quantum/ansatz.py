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
from functools import cached_property
from typing import NamedTuple

from hqexp.errors import ConfigError
from hqexp.quantum.measurements import REGISTRY as MEASUREMENT_REGISTRY
from hqexp.quantum.measurements import Measurement
from hqexp.quantum.templates import REGISTRY, Template, pauli_table

EMBEDDINGS = ("angle_x", "angle_y", "angle_z")
TEMPLATES = tuple(REGISTRY)
ENTANGLERS = ("cnot", "cz")
MEASUREMENTS = tuple(MEASUREMENT_REGISTRY)
PAIR_GATES = ("crx", "cry", "crz")

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
        template: ``strongly_entangling`` | ``basic_entangler`` | ``hardware_efficient``
            | ``random_pauli`` (McClean et al. 2018: RY(π/4) on every qubit, then per
            layer a seeded random choice of RX/RY/RZ on each qubit and a CZ chain).
        measurement: ``z_each`` (⟨Z_i⟩ for every qubit), ``z0``, ``z0z1`` (⟨Z_0 Z_1⟩),
            ``global_projector`` (⟨|0…0⟩⟨0…0|⟩) or ``local_projector``
            ((1/n) Σ_j ⟨|0⟩⟨0|_j⟩).
        entangler: two-qubit gate of the template's entangling block, ``cnot`` or ``cz``;
            ``None`` (default) means the template's own: ``cz`` for ``random_pauli``,
            ``cnot`` for the others.
        pauli_seed: fixes the random gate choice of ``random_pauli`` (ignored otherwise).
        pair_gate: ``None`` or ``crx`` | ``cry`` | ``crz``: a *learned entanglement* block.
            After each layer's entangler, a controlled rotation acts on every qubit pair
            (i < j, control i, target j) with a per-sample angle taken from the inputs:
            inputs are then ``[B, n_qubits + n_pairs]`` — the embedding angles first,
            then one angle per pair in :meth:`pairs` order (the same angle every layer).
            Models compute these angles, e.g. from an attention over qubit pairs.
    """

    n_qubits: int
    n_layers: int = 1
    embedding: str = "angle_x"
    template: str = "strongly_entangling"
    measurement: str = "z_each"
    entangler: str | None = None
    pauli_seed: int = 0
    pair_gate: str | None = None

    def __post_init__(self) -> None:
        if self.entangler is None and self.template in REGISTRY:
            # Frozen dataclass: resolve the template default once, at construction.
            object.__setattr__(self, "entangler", REGISTRY[self.template].default_entangler)
        for key in ("n_qubits", "n_layers", "pauli_seed"):
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
        if self.pair_gate is not None:
            _choice("pair_gate", self.pair_gate, PAIR_GATES)
            if self.n_qubits < 2:
                raise ConfigError("pair_gate needs n_qubits >= 2 (it acts on qubit pairs)")
        if self.n_qubits < self.observable.min_qubits:
            raise ConfigError(f"measurement {self.measurement!r} needs n_qubits >= {self.observable.min_qubits}")
        if self.template == "random_pauli":
            self.pauli_choices  # noqa: B018 - fill the cache now (see pauli_choices)

    # ------------------------------------------------------------------ shapes
    @property
    def spec(self) -> Template:
        """The template object (``hqexp.quantum.templates``) that knows this circuit's layers."""
        return REGISTRY[self.template]

    @cached_property  # read on every circuit call; the dataclass is frozen
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the trainable weights this ansatz consumes."""
        return self.spec.weight_shape(self.n_qubits, self.n_layers)

    @property
    def n_weights(self) -> int:
        return math.prod(self.weight_shape)

    def pairs(self) -> tuple[tuple[int, int], ...]:
        """(control, target) qubit pairs of the learned-entanglement block, ``i < j``."""
        n = self.n_qubits
        return tuple((i, j) for i in range(n) for j in range(i + 1, n))

    @cached_property
    def n_pairs(self) -> int:
        """Number of pair angles the inputs carry (0 without ``pair_gate``)."""
        return len(self.pairs()) if self.pair_gate else 0

    @cached_property
    def n_inputs(self) -> int:
        """Input features per sample: one embedding angle per qubit, plus the pair angles."""
        return self.n_qubits + self.n_pairs

    @property
    def observable(self) -> Measurement:
        """The measurement object (``hqexp.quantum.measurements``) that knows this circuit's outputs."""
        return MEASUREMENT_REGISTRY[self.measurement]

    @cached_property
    def n_out(self) -> int:
        """Number of expectation values returned per sample."""
        return self.observable.n_out(self.n_qubits)

    # --------------------------------------------------------------- structure
    def rotation_gates(self, layer: int = 0, qubit: int = 0) -> tuple[str, ...]:
        """Single-qubit gates applied to ``qubit`` in ``layer``, in time order."""
        return self.spec.rotation_gates(self, layer, qubit)

    @cached_property
    def pauli_choices(self) -> tuple[tuple[str, ...], ...]:
        """``[layer][qubit]`` gate names of ``random_pauli``, a pure function of ``pauli_seed``.

        Derived by hashing rather than from a PRNG stream so that the same seed names
        the same circuit on every Python/NumPy version. Cached on the instance, and filled at
        construction for ``random_pauli``, so that ``torch.compile`` reads a constant instead of
        tracing into ``hashlib`` (a graph break).
        """
        return pauli_table(self.pauli_seed, self.n_layers, self.n_qubits)

    @property
    def pre_rotation(self) -> tuple[str, float] | None:
        """A fixed rotation applied to every qubit after the embedding, before layer 0."""
        return self.spec.pre_rotation()

    def entangling_pairs(self, layer: int) -> tuple[tuple[int, int], ...]:
        """(control, target) pairs of the entangling block of ``layer``, in order."""
        return self.spec.entangling_pairs(self.n_qubits, layer)

    def gates(self) -> list[Gate]:
        """The canonical gate list (reference semantics for every backend)."""
        rot = {"angle_x": "RX", "angle_y": "RY", "angle_z": "RZ"}[self.embedding]
        out = [Gate(rot, (q,), ("x", q)) for q in range(self.n_qubits)]
        if self.pre_rotation is not None:
            name, angle = self.pre_rotation
            out.extend(Gate(name, (q,), ("c", angle)) for q in range(self.n_qubits))
        two = self.entangler.upper()
        for layer in range(self.n_layers):
            for q in range(self.n_qubits):
                names = self.rotation_gates(layer, q)
                base = (layer * self.n_qubits + q) * len(names)
                for j, g in enumerate(names):
                    out.append(Gate(g, (q,), ("w", base + j)))
            out.extend(Gate(two, pair) for pair in self.entangling_pairs(layer))
            if self.pair_gate:
                gate = self.pair_gate.upper()
                out.extend(Gate(gate, pair, ("x", self.n_qubits + p)) for p, pair in enumerate(self.pairs()))
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
            raise ConfigError(f"unknown ansatz key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**items)
