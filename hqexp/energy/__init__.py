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

from hqexp.energy.meter import Counter, CounterMeter, Meter, Reading, Unavailable
from hqexp.energy.nvml import nvml_meter
from hqexp.energy.rapl import RAPL_ROOT, rapl_meter

__all__ = [
    "Counter",
    "CounterMeter",
    "Meter",
    "RAPL_ROOT",
    "Reading",
    "Unavailable",
    "nvml_meter",
    "rapl_meter",
    "select_meter",
]


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
        pci = (
            f"{getattr(props, 'pci_domain_id', 0):08X}:{bus:02X}:{getattr(props, 'pci_device_id', 0):02X}.0"
            if bus is not None
            else None
        )
        return nvml_meter(index, sync=torch.cuda.synchronize, pci_bus_id=pci)
    return rapl_meter()
