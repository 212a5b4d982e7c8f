"""Energy meters over cumulative hardware counters (no hqexp imports: the bottom of the energy package)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Counter:
    """One cumulative energy counter: ``read()`` returns joules; it wraps at ``wrap_joules``."""

    name: str
    read: Callable[[], float]
    wrap_joules: float | None = None


@dataclass
class Reading:
    joules: float
    seconds: float


class Unavailable:
    """No energy measurement here; ``source`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.source = f"unavailable:{reason}"

    available = False

    def start(self) -> None:  # noqa: D102 - nothing to do
        pass

    def poll(self) -> None:  # noqa: D102
        pass

    def elapsed(self) -> Reading | None:  # noqa: D102
        return None

    def __repr__(self) -> str:
        return f"Unavailable({self.reason!r})"


@dataclass
class CounterMeter:
    """Energy since :meth:`start` from one or more counters (summed), wrap-aware.

    Call :meth:`poll` more often than the fastest counter wraps (RAPL: minutes at
    full load); :meth:`elapsed` polls too.
    """

    source: str
    counters: list[Counter]
    sync: Callable[[], None] | None = None
    min_window_s: float = 1.0
    clock: Callable[[], float] = time.perf_counter
    _last: list[float] = field(default_factory=list, repr=False)
    _total: float = field(default=0.0, repr=False)
    _t0: float | None = field(default=None, repr=False)

    available = True

    def start(self) -> None:
        """Open a window now."""
        if self.sync:
            self.sync()
        self._last = [c.read() for c in self.counters]
        self._total = 0.0
        self._t0 = self.clock()

    def poll(self) -> None:
        """Fold the counters' progress since the last poll into the window total."""
        if self._t0 is None:
            raise RuntimeError("energy meter polled before start()")
        for i, c in enumerate(self.counters):
            now = c.read()
            delta = now - self._last[i]
            if delta < 0:
                if not c.wrap_joules:
                    raise RuntimeError(f"energy counter {c.name} went backwards and has no wrap range")
                delta += c.wrap_joules
            self._total += delta
            self._last[i] = now

    def elapsed(self) -> Reading | None:
        """Joules and seconds since :meth:`start`; ``None`` while the window is < ``min_window_s``."""
        if self.sync:
            self.sync()
        self.poll()
        seconds = self.clock() - self._t0
        if seconds < self.min_window_s:
            return None
        return Reading(self._total, seconds)


Meter = CounterMeter | Unavailable
