"""NVIDIA GPU energy from NVML's total-energy counter (Volta and newer)."""

from __future__ import annotations

from collections.abc import Callable

from hqexp.energy.meter import Counter, CounterMeter, Meter, Unavailable


def nvml_meter(device_index: int = 0, sync: Callable[[], None] | None = None, pci_bus_id: str | None = None) -> Meter:
    """A meter on one NVIDIA GPU via NVML's total-energy counter, or why there is none.

    ``pci_bus_id`` (from torch) picks the GPU exactly; NVML's index ignores
    ``CUDA_VISIBLE_DEVICES``, so ``device_index`` is only the fallback.
    """
    try:
        import pynvml
    except ImportError:
        return Unavailable("nvml-not-installed (pip install nvidia-ml-py)")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return Unavailable(f"no-nvidia-driver ({exc})")
    try:
        handle = (
            pynvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id)
            if pci_bus_id
            else pynvml.nvmlDeviceGetHandleByIndex(device_index)
        )
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError as exc:
        return Unavailable(f"nvml-energy-counter-unsupported:gpu{device_index} ({exc})")
    return CounterMeter(
        "nvml",
        [Counter(f"gpu{device_index}", lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3)],
        sync=sync,
    )
