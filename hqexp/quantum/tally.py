"""What a device would have executed: circuits and shots, counted at every call.

Every circuit call through :func:`hqexp.quantum.expval` adds its forward circuits (one per
sample) and, when its gradient is taken, the shifted circuits a device needs for that gradient
(:func:`~hqexp.quantum.shift.shift_circuits`: two per Pauli-rotation angle, four per controlled
rotation, per sample). On an exact backend the same circuits are counted, because a device would
have run them, with the shots a device would have used (``qpu.assumed_shots`` at billing time).
The counts are kept per circuit structure (:class:`~hqexp.quantum.ansatz.Ansatz`), so a bill can
price each circuit's duration.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hqexp.quantum.ansatz import Ansatz


@dataclass
class Counts:
    """Circuits and shots of one circuit structure (``shots`` is 0 for exact executions)."""

    circuits: int = 0
    shots: int = 0
    exact_circuits: int = 0  # executed exactly (no shots): priced with assumed shots

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.circuits + other.circuits, self.shots + other.shots, self.exact_circuits + other.exact_circuits
        )

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.circuits - other.circuits, self.shots - other.shots, self.exact_circuits - other.exact_circuits
        )


@dataclass
class Tally:
    """Per-ansatz :class:`Counts` of one quantum layer (or one backend), thread-safe."""

    by_ansatz: dict[Ansatz, Counts] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, ansatz: Ansatz, circuits: int, shots: int | None) -> None:
        """``circuits`` executions of ``ansatz`` with ``shots`` each (None: exact)."""
        with self._lock:
            c = self.by_ansatz.setdefault(ansatz, Counts())
            c.circuits += int(circuits)
            if shots is None:
                c.exact_circuits += int(circuits)
            else:
                c.shots += int(circuits) * int(shots)

    def add_counts(self, ansatz: Ansatz, counts: Counts) -> None:
        """Add executions counted elsewhere (a remote client's, for the run's bill)."""
        with self._lock:
            self.by_ansatz[ansatz] = self.by_ansatz.get(ansatz, Counts()) + counts

    def snapshot(self) -> dict[Ansatz, Counts]:
        with self._lock:
            return {a: Counts(c.circuits, c.shots, c.exact_circuits) for a, c in self.by_ansatz.items()}

    @property
    def circuits(self) -> int:
        return sum(c.circuits for c in self.snapshot().values())

    # A model holding a tally is deep-copied (federated clients) and pickled (DDP, Flower). A copy
    # counts its own executions from zero: summing every layer that ran never counts one twice.
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.by_ansatz = {}
        self._lock = threading.Lock()

    def __deepcopy__(self, memo) -> Tally:
        return Tally()


def merge(snapshots: Iterable[Mapping[Ansatz, Counts]]) -> dict[Ansatz, Counts]:
    """The sum of several tallies' snapshots."""
    out: dict[Ansatz, Counts] = {}
    for snap in snapshots:
        for a, c in snap.items():
            out[a] = out.get(a, Counts()) + c
    return out


def difference(after: Mapping[Ansatz, Counts], before: Mapping[Ansatz, Counts]) -> dict[Ansatz, Counts]:
    """What was added between two snapshots."""
    return {a: c - before.get(a, Counts()) for a, c in after.items() if (c - before.get(a, Counts())).circuits}


def totals(counts: Mapping[Ansatz, Counts]) -> Counts:
    out = Counts()
    for c in counts.values():
        out = out + c
    return out
