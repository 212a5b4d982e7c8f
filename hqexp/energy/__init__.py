"""Measured energy: NVML's GPU energy counter, RAPL for CPU packages, or nothing.

A meter reads hardware *counters* (cumulative joules) and reports differences over a
window. Nothing here estimates: when no counter can be read the meter is
:class:`Unavailable` and carries the reason, which runs record as the tag
``energy_source=unavailable:<reason>``.

* NVML: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and
  newer). The GPU is synchronised at both window edges so queued kernels are counted
  in the window that launched them; windows shorter than ``min_window_s`` (1 s) are
  not reported because the counter updates only every few tens of milliseconds.
* RAPL: ``/sys/class/powercap/intel-rapl:N/energy_uj`` of every *package* domain
  (sub-domains are inside their package and would be counted twice), with
  wrap-around at ``max_energy_range_uj``. Since 2020 kernels make it root-only; a
  permission error says so.
"""

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


from hqexp.energy.nvml import nvml_meter  # noqa: E402
from hqexp.energy.rapl import RAPL_ROOT, rapl_meter  # noqa: E402

__all__ = ["Counter", "CounterMeter", "Meter", "RAPL_ROOT", "Reading", "Unavailable", "nvml_meter", "rapl_meter",
           "select_meter"]


def select_meter(device: str = "cpu", prefer: str = "auto") -> Meter:
    """The meter for where the model runs: NVML for ``cuda[:i]``, RAPL for ``cpu``.

    ``prefer``: ``auto`` | ``nvml`` | ``rapl`` | ``none``.
    """
    if prefer == "none":
        return Unavailable("disabled")
    if prefer not in ("auto", "nvml", "rapl"):
        raise ValueError(f"energy meter must be auto, nvml, rapl or none, got {prefer!r}")
    on_gpu = str(device).startswith("cuda")
    if prefer == "nvml" or (prefer == "auto" and on_gpu):
        import torch

        if not torch.cuda.is_available():
            return Unavailable("no-cuda-gpu")
        index = int(str(device).split(":")[1]) if ":" in str(device) else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        bus = getattr(props, "pci_bus_id", None)
        pci = (f"{getattr(props, 'pci_domain_id', 0):08X}:{bus:02X}:{getattr(props, 'pci_device_id', 0):02X}.0"
               if bus is not None else None)
        return nvml_meter(index, sync=torch.cuda.synchronize, pci_bus_id=pci)
    return rapl_meter()
