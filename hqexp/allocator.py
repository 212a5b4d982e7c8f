"""Process allocator policy: keep freed CPU memory for reuse instead of handing it back.

PyTorch's CPU tensors come straight from the C library's ``malloc``, with no caching
allocator. glibc serves blocks over its mmap threshold by ``mmap`` and returns freed memory at
the top of the heap to the system past its trim threshold; both adapt at run time, but not
to a training step, which frees and re-allocates the same few-megabyte state vectors and
activations every step. Each fresh mapping then costs a page fault per 4 KiB page on first
touch. Measured (fwd+bwd of the torch simulator, 2 cores, one process each, three each):
(8,3,1024) 10.8–11.8 → 6.8–8.1 ms, (12,3,256) 37–46 → 25–29 ms, (14,3,64) 44–47 → 27–31 ms;
unchanged at 4 qubits, and the same peak RSS. Freed memory up to the trim threshold stays
with the process until it exits — what every caching allocator (CUDA's, jemalloc, tcmalloc)
does.

``HQEXP_MALLOC=system`` leaves the C library's own policy alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap, which reuses them
TRIM_THRESHOLD = (1 << 31) - 1  # keep up to 2 GiB of freed memory (mallopt takes an int)

#: what :func:`keep_freed_memory` did in this process (None: not called), for run tags and reports
POLICY: str | None = None


def keep_freed_memory() -> str:
    """Apply the policy (see the module docstring) where the C library is glibc; returns (and
    keeps in :data:`POLICY`) what was done: ``"glibc: freed memory kept"``, or why nothing was."""
    global POLICY
    POLICY = _apply()
    return POLICY


def _apply() -> str:
    if os.environ.get("HQEXP_MALLOC", "").lower() == "system":
        return "system (HQEXP_MALLOC=system)"
    if not sys.platform.startswith("linux"):
        return f"system ({sys.platform})"
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return "system (no glibc mallopt)"
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return "glibc: freed memory kept" if ok else "system (mallopt refused)"
