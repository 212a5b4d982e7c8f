"""RAPL package-energy counters under ``/sys/class/powercap`` (Linux, Intel and recent AMD)."""

from __future__ import annotations

from pathlib import Path

from hqexp.energy.meter import Counter, CounterMeter, Meter, Unavailable

RAPL_ROOT = Path("/sys/class/powercap")


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
            return Unavailable(
                f"rapl-permission-denied:{energy} (root-only since Linux 5.10; run as root or grant read access)"
            )
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
