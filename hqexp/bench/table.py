"""Timing and tables shared by the benchmark suites."""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path

MIN_SAMPLE_S = 0.02  # one timing sample lasts at least this long (timeit's autorange idea)


def median_time(fn, warmup: int, repeats: int, budget: float) -> float | None:
    """Median seconds per call of ``fn()`` over ``repeats`` samples after ``warmup`` calls.

    A call faster than :data:`MIN_SAMPLE_S` is timed in loops of many calls per sample, so a
    sub-millisecond step is not measured against the clock's own overhead and one cold call;
    slow callables get fewer samples so one measurement stays within about ``budget`` seconds,
    and None when a single call exceeds it."""
    first = None
    for _ in range(max(1, warmup)):
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        if first > budget:
            return None
    inner = max(1, int(MIN_SAMPLE_S / max(first, 1e-9)))
    n = max(1, min(repeats, int(budget / max(first * inner, 1e-9))))
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        ts.append((time.perf_counter() - t0) / inner)
    return statistics.median(ts)


def format_table(rows: list[dict], cols: list[str]) -> str:
    """A fixed-width text table of ``cols`` (floats to 3 significant digits)."""
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    body = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(b[i][:60]) for b in body)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v[:60].ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(b) for b in body)])


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as CSV, columns in first-seen order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
