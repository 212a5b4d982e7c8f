"""Peak memory of a training run: CUDA's allocator peak, or the process RSS sampled on CPU."""

from __future__ import annotations

import os
import threading


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Context manager; ``metrics()`` gives ``mem/peak_cuda_mb`` or ``mem/peak_rss_mb``.

    On CUDA: ``torch.cuda.max_memory_allocated`` over the block (exact, tensors only).
    On CPU: the process's resident set size sampled every 20 ms by a thread (a lower
    bound of the true peak, including Python and libraries), and ``mem/fit_rss_delta_mb``,
    its rise over the block — what this run added, where a worker process is reused by
    several sweep jobs. Where ``/proc`` is not readable (non-Linux) nothing is logged.
    """

    def __init__(self, device: str = "cpu", interval_s: float = 0.02) -> None:
        self.device, self.interval = device, interval_s
        self.peak: int | None = None
        self.baseline: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
            return self
        try:
            self.peak = self.baseline = _rss_bytes()
        except (OSError, ValueError, IndexError):
            return self
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak or 0, _rss_bytes())

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            import torch

            self.peak = int(torch.cuda.max_memory_allocated())
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak or 0, _rss_bytes())

    def metrics(self) -> dict[str, float]:
        if self.peak is None:
            return {}
        if self.device == "cuda":
            return {"mem/peak_cuda_mb": self.peak / 2**20}
        return {"mem/peak_rss_mb": self.peak / 2**20, "mem/fit_rss_delta_mb": (self.peak - self.baseline) / 2**20}
