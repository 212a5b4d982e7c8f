"""Windowing speed of the distributed-learning loaders: samples per second of the first
(uncached) pass and of the cached pass, on format-faithful fixtures (built here) and on the
real samples in ../shared/data where present.

    .venv/bin/python scripts/bench_loaders.py [--scale 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fixture writers


def timed(cls, **kw) -> tuple[int, float, float]:
    first = cls(**kw)
    t0 = time.perf_counter()
    n = len(first.load().y)
    t1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    cls(**kw).load()
    return n, t1, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=4, help="subjects / patients in each fixture")
    args = ap.parse_args()
    from fixtures_distributed import make_mimic, make_pamap2, make_ton_iot, make_wesad

    from hqexp.data.mimic import MIMIC3WDBDataModule
    from hqexp.data.pamap2 import PAMAP2DataModule
    from hqexp.data.ton_iot import TONIoTDataModule
    from hqexp.data.wesad import WESADDataModule

    shared = ROOT.parent / "shared" / "data"
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        k = args.subjects
        cases = [
            ("wesad (fixture)", WESADDataModule, {"root": str(make_wesad(t / "w", subjects=range(2, 2 + k)))}),
            ("pamap2 (fixture)", PAMAP2DataModule, {"root": str(make_pamap2(t / "p", subjects=range(101, 101 + k)))}),
            (
                "mimic3wdb (fixture)",
                MIMIC3WDBDataModule,
                {"root": str(make_mimic(t / "m", patients=[f"p0001{i:02d}" for i in range(k)], minutes=30))},
            ),
            ("ton_iot (fixture)", TONIoTDataModule, {"root": str(make_ton_iot(t / "t", rows_per_type=400))}),
        ]
        if (shared / "mimic3wdb-sample").is_dir():
            cases.append(
                (
                    "mimic3wdb (real sample, numerics)",
                    MIMIC3WDBDataModule,
                    {"root": str(shared / "mimic3wdb-sample"), "signals": ["II", "V"], "label_source": "numerics"},
                )
            )
        if (shared / "ton-iot-sample").is_dir():
            cases.append(("ton_iot (real sample)", TONIoTDataModule, {"root": str(shared / "ton-iot-sample")}))
        print(f"{'loader':<36} {'samples':>8} {'first pass':>12} {'samples/s':>10} {'cached':>9} {'samples/s':>11}")
        for name, cls, kw in cases:
            n, first, again = timed(cls, cache_dir=str(t / "cache"), **kw)
            print(f"{name:<36} {n:>8} {first:>10.2f} s {n / first:>10.0f} {again:>7.3f} s {n / again:>11.0f}")


if __name__ == "__main__":
    main()
