"""PAMAP2 (Reiss & Stricker, ISWC 2012): physical activity monitoring, one client per subject.

``dataset.root`` is the unmodified ``PAMAP2_Dataset`` folder: ``Protocol/subject101.dat`` …
``subject109.dat`` (and ``Optional/`` for the optional activities). Each ``.dat`` is
whitespace-separated, no header, 54 columns at 100 Hz: ``timestamp, activityID, heart rate``
(~9 Hz, ``NaN`` between readings), then three IMU blocks of 17 columns — hand, chest, ankle:
temperature, acceleration ±16 g (x, y, z), acceleration ±6 g (x, y, z), gyroscope (x, y, z),
magnetometer (x, y, z), orientation (4, invalid in this collection: never used).

Activity 0 (transient) is dropped. Heart rate is forward-filled (it is sampled at ~9 Hz);
IMU drop-outs (``NaN``) are interpolated when no longer than ``max_gap_s``, and windows
touching a longer gap are dropped and counted. ``activities``: ``protocol`` (the 12 protocol
activities), ``all`` (18 incl. the optional ones) or a list of activity IDs. Signals:
``hand.acc16``, ``chest.gyro``, ``ankle.mag``, ``heart_rate``, ``hand.temperature`` … (each
3-axis name gives three channels).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hqexp.data.base import fingerprint
from hqexp.data.windows import Collector, GroupedDataModule, WindowArrays, cached, check_windowing, windows
from hqexp.errors import ConfigError, DataError

FS = 100
N_COLUMNS = 54
ACTIVITIES = {
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "nordic_walking",
    9: "watching_tv",
    10: "computer_work",
    11: "car_driving",
    12: "ascending_stairs",
    13: "descending_stairs",
    16: "vacuum_cleaning",
    17: "ironing",
    18: "folding_laundry",
    19: "house_cleaning",
    20: "playing_soccer",
    24: "rope_jumping",
}
PROTOCOL = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)
IMUS = {"hand": 3, "chest": 20, "ankle": 37}  # first column of each 17-column block
FIELDS = {"temperature": (0, 1), "acc16": (1, 4), "acc6": (4, 7), "gyro": (7, 10), "mag": (10, 13)}


def columns(signals: list[str]) -> tuple[list[int], list[str]]:
    """File columns and channel names of ``signals`` (``hand.acc16``, ``heart_rate``, …)."""
    cols, names = [], []
    for s in signals:
        if s == "heart_rate":
            cols.append(2)
            names.append(s)
            continue
        m = re.fullmatch(r"(hand|chest|ankle)\.(\w+)", str(s))
        if m is None or m.group(2) not in FIELDS:
            known = ["heart_rate"] + [f"{i}.{f}" for i in IMUS for f in FIELDS]
            raise ConfigError(f"unknown PAMAP2 signal {s!r}; choose from: {', '.join(known)}")
        imu, fld = m.groups()
        a, b = FIELDS[fld]
        cols += [IMUS[imu] + j for j in range(a, b)]
        names += [s] if b - a == 1 else [f"{s}_{ax}" for ax in "xyz"]
    return cols, names


def read_dat(path: Path) -> np.ndarray:
    """One subject file as ``[N, 54]`` float64 (``NaN`` kept); :class:`DataError` names the file and line."""
    import pandas as pd

    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    with path.open("rb") as fh:  # pandas fills short lines with NaN: count the fields ourselves
        for i, line in enumerate(fh, 1):
            n = len(line.split())
            if n != N_COLUMNS and n:
                raise DataError(f"{path}: line {i} has {n} columns, expected {N_COLUMNS}")
    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, dtype=np.float64, engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a PAMAP2 data file ({str(exc).splitlines()[0]})") from None
    return df.to_numpy()


def _fill(sig: np.ndarray, cols: list[int], max_gap: int) -> np.ndarray:
    """Heart rate forward-filled; other channels linearly interpolated over gaps of at most
    ``max_gap`` samples. Longer gaps and gaps at either end stay ``NaN`` (their windows are dropped)."""
    out = sig.astype(np.float64)
    idx = np.arange(len(out))
    for j, c in enumerate(cols):
        x = out[:, j]
        nan = np.isnan(x)
        if not nan.any() or nan.all():
            continue
        good = np.flatnonzero(~nan)
        if c == 2:  # last reading carried forward; before the first one, the first one
            x[:] = x[good[np.clip(np.searchsorted(good, idx, side="right") - 1, 0, None)]]
            continue
        filled = np.interp(idx, good, x[good])
        edges = np.diff(np.r_[0, nan.astype(np.int8), 0])
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if b - a > max_gap or a == 0 or b == len(x):
                filled[a:b] = np.nan
        out[:, j] = filled
    return out.astype(np.float32)


def subject_windows(
    raw: np.ndarray,
    path: Path,
    cols: list[int],
    activities: list[int],
    window_s: float,
    stride_s: float,
    max_gap_s: float,
    dropped: dict,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    act = raw[:, 1].astype(np.int64)
    sig = _fill(raw[:, cols], cols, int(round(max_gap_s * FS)))
    w = int(round(window_s * FS))
    starts = windows(len(raw), FS, window_s, stride_s)
    if not len(starts):
        raise DataError(f"{path}: the recording ({len(raw) / FS:.0f} s) is shorter than dataset.window_s={window_s}")
    lookup = {a: i for i, a in enumerate(activities)}
    X, y, t = [], [], []
    for s in starts:
        seg = act[s : s + w]
        if seg.min() != seg.max():
            dropped["mixed_label"] = dropped.get("mixed_label", 0) + 1
            continue
        if int(seg[0]) not in lookup:
            dropped["not_in_task"] = dropped.get("not_in_task", 0) + 1
            continue
        block = sig[s : s + w]
        if np.isnan(block).any():
            dropped["long_gap"] = dropped.get("long_gap", 0) + 1
            continue
        X.append(block.T)
        y.append(lookup[int(seg[0])])
        t.append(raw[s, 0])
    return (
        np.stack(X) if X else np.zeros((0, len(cols), w), np.float32),
        np.array(y, np.int64),
        np.array(t, np.float64),
    )


class PAMAP2DataModule(GroupedDataModule):
    """PAMAP2 windows, one group per subject (see the module docstring)."""

    name = "pamap2"
    group_kind = "subject"

    def __init__(
        self,
        root: str,
        activities: str | list[int] = "protocol",
        signals: list[str] | tuple[str, ...] = (
            "hand.acc16",
            "chest.acc16",
            "ankle.acc16",
            "hand.gyro",
            "chest.gyro",
            "ankle.gyro",
            "heart_rate",
        ),
        sessions: list[str] | tuple[str, ...] = ("Protocol",),
        window_s: float = 5.12,
        stride_s: float = 2.56,
        max_gap_s: float = 0.1,
        task: str = "activity",
        **kw,
    ) -> None:
        super().__init__(**kw)
        if task != "activity":
            raise ConfigError(f"unknown PAMAP2 task {task!r}; the one task is activity")
        if activities == "protocol":
            acts = list(PROTOCOL)
        elif activities == "all":
            acts = sorted(ACTIVITIES)
        else:
            acts = [int(a) for a in activities]
            bad = [a for a in acts if a not in ACTIVITIES]
            if bad:
                raise ConfigError(
                    f"unknown PAMAP2 activity ID(s) {bad}; known: "
                    f"{', '.join(f'{k} {v}' for k, v in ACTIVITIES.items())}"
                )
        check_windowing(window_s, stride_s)
        for s in sessions:
            if s not in ("Protocol", "Optional"):
                raise ConfigError(f"dataset.sessions entries must be Protocol or Optional, got {s!r}")
        self.root, self.activities, self.sessions = Path(root), acts, list(sessions)
        self.cols, self.channel_names = columns(list(signals))
        self.window_s, self.stride_s, self.max_gap_s = float(window_s), float(stride_s), float(max_gap_s)

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            raise DataError(
                f"dataset.root {str(self.root)!r} is not a folder; PAMAP2 expects "
                "root/Protocol/subject101.dat … subject109.dat (and root/Optional/)"
            )
        found = [p for s in self.sessions for p in sorted((self.root / s).glob("subject1*.dat"))]
        if not found:
            raise DataError(
                f"no PAMAP2 subject file under {self.root}: expected "
                f"{', '.join(f'{s}/subject101.dat' for s in self.sessions)} … subject109.dat"
            )
        return found

    def load(self) -> WindowArrays:
        files = self.files()
        key = fingerprint(
            [self.activities, self.cols, self.window_s, self.stride_s, self.max_gap_s, self.on_bad_record], files
        )
        return cached(self.cache_dir, self.name, key, lambda: self._build(files))

    def _build(self, files: list[Path]) -> WindowArrays:
        found = Collector(self.on_bad_record)
        for path in files:
            try:
                X, y, t = subject_windows(
                    read_dat(path),
                    path,
                    self.cols,
                    self.activities,
                    self.window_s,
                    self.stride_s,
                    self.max_gap_s,
                    found.dropped,
                )
            except DataError as exc:
                found.bad(str(exc))
                continue
            # sessions in time order: Optional after Protocol
            found.add(X, y, path.stem.replace("subject", ""), t + (1e6 if path.parent.name == "Optional" else 0.0))
        return found.arrays(
            len(self.cols),
            int(round(self.window_s * FS)),
            tuple(ACTIVITIES[a] for a in self.activities),
            self.channel_names,
        )
