"""Will the state vectors fit? One line before a simulation that would exhaust the memory."""

from __future__ import annotations

import torch

from hqexp.errors import QuantumMemoryError

ALWAYS_FITS = 64 * 2**20  # below this, reading /proc/meminfo costs more than the check saves


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Free bytes on ``device``: CUDA's free memory, or ``MemAvailable`` of the host (None if unknown)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def require_memory(need: int, backend: str, n_qubits: int, batch: int, device: torch.device | str = "cpu") -> None:
    """Raise :class:`QuantumMemoryError` when ``need`` bytes exceed what ``device`` has free."""
    if need <= ALWAYS_FITS:
        return
    have = available_bytes(device)
    if have is not None and need > have:
        gib = 2**30
        raise QuantumMemoryError(
            f"{backend} backend: {n_qubits} qubits x batch {batch} needs about {need / gib:.1f} GiB "
            f"for state vectors on {device}, only {have / gib:.1f} GiB available; "
            "reduce the batch size or the number of qubits"
        )
