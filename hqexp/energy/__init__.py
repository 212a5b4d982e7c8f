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
from pathlib import Path

RAPL_ROOT = Path("/sys/class/powercap")


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


# ---------------------------------------------------------------------- RAPL
def rapl_meter(root: Path = RAPL_ROOT) -> Meter:
    """A meter over every RAPL package domain under ``root``, or why there is none."""
    if not root.is_dir():
        return Unavailable("no-rapl-interface")
    domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not domains:
        return Unavailable("no-rapl-package-domain")
    counters = []
    for d in domains:
        energy = d / "energy_uj"
        try:
            energy.read_text()
        except PermissionError:
            return Unavailable(f"rapl-permission-denied:{energy} (root-only since Linux 5.10; "
                               f"run as root or grant read access)")
        except OSError as exc:
            return Unavailable(f"rapl-unreadable:{energy}:{exc.strerror or exc}")
        wrap = None
        rng = d / "max_energy_range_uj"
        if rng.exists():
            try:
                wrap = int(rng.read_text()) / 1e6
            except (OSError, ValueError):
                wrap = None
        counters.append(Counter(d.name, lambda e=energy: int(e.read_text()) / 1e6, wrap))
    return CounterMeter("rapl", counters)


# ---------------------------------------------------------------------- NVML
def nvml_meter(device_index: int = 0, sync: Callable[[], None] | None = None) -> Meter:
    """A meter on NVIDIA GPU ``device_index`` via NVML's total-energy counter, or why there is none."""
    try:
        import pynvml
    except ImportError:
        return Unavailable("nvml-not-installed (pip install nvidia-ml-py)")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return Unavailable(f"no-nvidia-driver ({exc})")
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError as exc:
        return Unavailable(f"nvml-energy-counter-unsupported:gpu{device_index} ({exc})")
    return CounterMeter("nvml", [Counter(f"gpu{device_index}",
                                         lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3)],
                        sync=sync)


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
        return nvml_meter(index, sync=torch.cuda.synchronize)
    return rapl_meter()
