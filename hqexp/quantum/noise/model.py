"""What the noise of a run is: the ``noise`` config group as one object every executor reads.

A :class:`NoiseSpec` is built from a ``conf/noise/*.yaml`` mapping (``kind`` plus its keys) and
gives, for a circuit of ``n`` qubits, a :class:`NoiseModel`: per *position* (a qubit of the
simulated register; on a device, a physical qubit of the chosen layout) the channels after each
gate and the readout error, and the gate list as the device would run it (routed, SWAPs
included). Kinds:

* ``none`` — exact; executors take their noiseless path.
* ``depolarizing`` (``p1``, ``p2``) — after every single-qubit gate a 1-qubit depolarizing
  channel, after every two-qubit gate a 2-qubit one (``channels.depolarizing`` convention).
* ``thermal`` (``t1``, ``t2``, ``gate_1q_s``, ``gate_2q_s``) — thermal relaxation of every qubit a
  gate acts on, for that gate's duration.
* ``readout`` (``p01``, ``p10``) — a per-qubit assignment error at measurement.
* ``device`` (``device``, ``qubits``) — all of them from a calibration snapshot
  (:mod:`hqexp.quantum.noise.device`).

Idle qubits do not decohere (no scheduling), as in Qiskit Aer's ``NoiseModel.from_backend``
without a schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hqexp.quantum.ansatz import Ansatz, Gate
from hqexp.quantum.noise import channels as ch

TWO_QUBIT = ("CNOT", "CZ", "CRX", "CRY", "CRZ")


@dataclass(frozen=True)
class Step:
    """One gate of the circuit as run: its name, the positions it acts on, its angle's source
    (as :class:`~hqexp.quantum.ansatz.Gate.param`), and for a learned-entanglement gate the
    ``(layer, pair)`` occurrence it is."""

    name: str
    wires: tuple[int, ...]
    param: tuple | None = None
    occurrence: tuple[int, int] | None = None
    routing: bool = False  # one of the three CNOTs of a SWAP inserted by routing


@dataclass(frozen=True)
class NoiseModel:
    """The noise of an ``n``-position register. Per-position tuples (length ``n``), per-edge
    mappings keyed by ``(a, b)`` with ``a < b``; ``None`` where a channel is absent."""

    kind: str
    n: int
    p1: tuple[float, ...] | None = None  # 1-qubit depolarizing after each 1-qubit gate
    p2: tuple[tuple[tuple[int, int], float], ...] | None = None  # per edge; (-1, -1): every pair
    t1: tuple[float, ...] | None = None
    t2: tuple[float, ...] | None = None
    gate_1q_s: tuple[float, ...] | None = None
    gate_2q_s: tuple[tuple[tuple[int, int], float], ...] | None = None
    readout_err: tuple[tuple[float, float], ...] | None = None  # (p01, p10) per position
    virtual_rz: bool = False  # RZ is a frame change on the device: no error, no duration
    pulses_per_rotation: int = 1  # RX / RY as native single-qubit pulses (2 √X on IBM devices)
    coupled: tuple[tuple[int, int], ...] | None = None  # positions a 2-qubit gate may join (None: all)
    device: str | None = None
    layout: tuple[int, ...] | None = None  # the physical qubit at each position
    calibration_date: str | None = None

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def edge(self, table, a: int, b: int) -> float:
        """The value of a per-edge table (``p2``, ``gate_2q_s``) for positions ``a``, ``b``."""
        d = dict(table)
        key = (min(a, b), max(a, b))
        return float(d.get(key, d.get((-1, -1), 0.0)))

    # ------------------------------------------------------------ channels
    def relax(self, wire: int, duration: float) -> tuple | None:
        if self.t1 is None or duration <= 0:
            return None
        return ch.thermal_kraus(self.t1[wire], self.t2[wire], duration)

    def after(self, step: Step) -> np.ndarray | None:
        """The channel's superoperator after ``step`` on its positions (None: noiseless)."""
        k = len(step.wires)
        if k == 1:
            if self.virtual_rz and step.name == "RZ":
                return None
            reps = self.pulses_per_rotation
            q = step.wires[0]
            parts = []
            relax = self.relax(q, self.gate_1q_s[q]) if self.gate_1q_s is not None else None
            for _ in range(reps):
                if relax is not None:
                    parts.append(ch.superop(relax))
                if self.p1 is not None and self.p1[q] > 0:
                    parts.append(ch.superop(ch.depolarizing_kraus(self.p1[q], 1)))
            return ch.compose(*parts) if parts else None
        a, b = step.wires
        reps = 2 if step.name.startswith("CR") else 1
        parts = []
        dur = self.edge(self.gate_2q_s, a, b) if self.gate_2q_s is not None else 0.0
        ra, rb = self.relax(a, dur), self.relax(b, dur)
        # two-qubit superoperators index (ra, ca, rb, cb): each wire's (row, column) together
        relax = np.kron(ch.superop(ra), ch.superop(rb)) if ra is not None else None
        p = self.edge(self.p2, a, b) if self.p2 is not None else 0.0
        depol = swap_middle(ch.superop(ch.depolarizing_kraus(p, 2))) if p > 0 else None
        for _ in range(reps):
            parts += [s for s in (relax, depol) if s is not None]
        return ch.compose(*parts) if parts else None

    def readout(self) -> list[np.ndarray] | None:
        """Per position, the assignment matrix ``A[measured, prepared]`` (None: perfect readout)."""
        if self.readout_err is None:
            return None
        return [ch.assignment(p01, p10) for p01, p10 in self.readout_err]

    # ------------------------------------------------------------ the circuit as run
    def steps(self, ansatz: Ansatz) -> tuple[Step, ...]:
        """The gate list on positions: the canonical gates, with every two-qubit gate between
        positions that are not coupled routed along the chain by SWAPs (there and back)."""
        return _steps(self, ansatz)

    def swaps(self, ansatz: Ansatz) -> int:
        """SWAPs routing inserted into one circuit (each three native two-qubit gates)."""
        return sum(s.routing for s in self.steps(ansatz)) // 3

    def tags(self) -> dict[str, str]:
        out = {"noise.kind": self.kind}
        if self.device:
            out.update(
                {
                    "noise.device": self.device,
                    "noise.layout": ",".join(map(str, self.layout or ())),
                    "noise.calibration_date": str(self.calibration_date),
                }
            )
        return out


def swap_middle(s: np.ndarray) -> np.ndarray:
    """A two-qubit superoperator between index orders (ra, rb, ca, cb) — ``Σ K ⊗ conj(K)`` of a
    4×4 Kraus operator — and (ra, ca, rb, cb), each wire's row and column bit together (both ways)."""
    t = s.reshape(2, 2, 2, 2, 2, 2, 2, 2)
    return t.transpose(0, 2, 1, 3, 4, 6, 5, 7).reshape(16, 16)


_STEP_CACHE: dict = {}


def _steps(model: NoiseModel, ansatz: Ansatz) -> tuple[Step, ...]:
    key = (model, ansatz)
    hit = _STEP_CACHE.get(key)
    if hit is not None:
        return hit
    coupled = None if model.coupled is None else {tuple(sorted(e)) for e in model.coupled}
    out: list[Step] = []
    seen = 0  # learned-entanglement gates so far: every layer has one per pair, in pairs() order
    for g in ansatz.gates():
        occ = None
        if g.name.startswith("CR"):
            occ = divmod(seen, ansatz.n_pairs)
            seen += 1
        if len(g.wires) == 2 and coupled is not None and tuple(sorted(g.wires)) not in coupled:
            out.extend(_routed(g, occ))
        else:
            out.append(Step(g.name, g.wires, g.param, occ))
    if len(_STEP_CACHE) > 256:
        _STEP_CACHE.clear()
    result = _STEP_CACHE[key] = tuple(out)
    return result


def _routed(g: Gate, occ) -> list[Step]:
    """A two-qubit gate between chain positions ``c`` and ``t``: SWAP ``c`` along the chain until
    it neighbours ``t``, apply the gate there, SWAP back (the layout is unchanged afterwards)."""
    c, t = g.wires
    step = 1 if t > c else -1
    path = list(range(c, t, step))  # c, c±1, ..., the position next to t
    swaps = [_swap(a, a + step) for a in path[:-1]]
    here = path[-1]
    return [
        *(s for sw in swaps for s in sw),
        Step(g.name, (here, t), g.param, occ),
        *(s for sw in reversed(swaps) for s in sw),
    ]


def _swap(a: int, b: int) -> list[Step]:
    """A SWAP as the device runs it: three CNOTs, each with its own noise."""
    return [Step("CNOT", (a, b), routing=True), Step("CNOT", (b, a), routing=True), Step("CNOT", (a, b), routing=True)]
