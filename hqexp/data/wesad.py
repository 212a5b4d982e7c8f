"""WESAD (Schmidt et al., ICMI 2018): wearable stress and affect detection, one client per subject.

``dataset.root`` is the unmodified download: ``root/S<k>/S<k>.pkl`` for subjects S2–S17 (no
S1, S12). Each pickle (written by Python 2: read with ``encoding='latin1'``) holds::

    {'signal': {'chest': {'ACC': (N, 3), 'ECG': (N, 1), 'EMG': (N, 1), 'EDA': (N, 1),
                          'Temp': (N, 1), 'Resp': (N, 1)},          # 700 Hz (RespiBAN)
                'wrist': {'ACC': (N/21.9, 3) @ 32 Hz, 'BVP': @ 64 Hz, 'EDA': @ 4 Hz,
                          'TEMP': @ 4 Hz}},                         # Empatica E4
     'label': (N,) @ 700 Hz, 'subject': 'S<k>'}

Labels: 0 transient, 1 baseline, 2 stress, 3 amusement, 4 meditation, 5–7 not to be used.
Tasks: ``binary`` — stress vs non-stress (baseline + amusement; Schmidt et al.'s binary
task), ``three_class`` — baseline / stress / amusement. Other labels are dropped.

Signals are named ``chest.ECG``, ``wrist.BVP``, … (``ACC`` gives three channels). Every
signal is brought to ``dataset.rate`` Hz (polyphase resampling; chest 700 Hz and wrist
32/64/4 Hz alike), labels are taken at the same instants, windows of ``window_s`` every
``stride_s`` are cut per subject, and windows whose labels are mixed or not in the task are
dropped and counted.

A pickle can run code when it is loaded. This loader unpickles with an allow-list (numpy
arrays, dtypes and the builtin containers only) and refuses anything else — and anything
that is not a dict of the shape above — with one line naming the file.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import numpy as np

from hqexp.data.base import fingerprint
from hqexp.data.windows import Collector, GroupedDataModule, WindowArrays, cached, check_windowing, windows
from hqexp.errors import ConfigError, DataError

CHEST_FS = 700
WRIST_FS = {"ACC": 32, "BVP": 64, "EDA": 4, "TEMP": 4}
CHEST = ("ACC", "ECG", "EMG", "EDA", "Temp", "Resp")
TASKS = {"binary": {1: 0, 3: 0, 2: 1}, "three_class": {1: 0, 2: 1, 3: 2}}
CLASS_NAMES = {"binary": ("non_stress", "stress"), "three_class": ("baseline", "stress", "amusement")}
SUBJECTS = tuple(f"S{k}" for k in range(2, 18) if k != 12)

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not a numpy array)")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict:
    """One subject's pickle, loaded with the allow-list and checked; :class:`DataError` names the file."""
    try:
        data = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{path}: not a readable WESAD pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or not {"signal", "label"} <= set(data) or not isinstance(data["signal"], dict):
        raise DataError(f"{path}: not a WESAD subject file (expected a dict with 'signal', 'label', 'subject')")
    label = np.asarray(data["label"]).reshape(-1)
    for dev, sigs in data["signal"].items():
        if not isinstance(sigs, dict):
            raise DataError(f"{path}: signal[{dev!r}] is not a dict of arrays")
    chest = data["signal"].get("chest", {})
    for name, arr in chest.items():
        if len(np.asarray(arr)) != len(label):
            raise DataError(
                f"{path}: chest {name} has {len(arr)} samples but the label has {len(label)} "
                "(both are 700 Hz; truncated file?)"
            )
    return data


def _channels(spec: list[str]) -> list[tuple[str, str]]:
    out = []
    for s in spec:
        m = re.fullmatch(r"(chest|wrist)\.(\w+)", str(s))
        if m is None:
            raise ConfigError(f"dataset.signals entry {s!r} must be chest.<name> or wrist.<name>")
        dev, name = m.groups()
        known = CHEST if dev == "chest" else tuple(WRIST_FS)
        if name not in known:
            raise ConfigError(f"unknown WESAD signal {s!r}; {dev} has: {', '.join(f'{dev}.{k}' for k in known)}")
        out.append((dev, name))
    return out


def _resample(x: np.ndarray, fs_in: int, fs_out: int, n_out: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(int(fs_in), int(fs_out))
    y = resample_poly(x.astype(np.float64), fs_out // g, fs_in // g, axis=0) if fs_in != fs_out else x
    if len(y) < n_out:  # the E4 stops a fraction of a second before the RespiBAN
        y = np.concatenate([y, np.repeat(y[-1:], n_out - len(y), axis=0)])
    return y[:n_out]


def subject_windows(
    data: dict,
    path: Path,
    channels: list[tuple[str, str]],
    rate: int,
    window_s: float,
    stride_s: float,
    task: str,
    dropped: dict,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X[n, C, T], y[n], t[n])`` of one subject."""
    label = np.asarray(data["label"]).reshape(-1).astype(np.int64)
    n = int(len(label) * rate / CHEST_FS)
    cols = []
    for dev, name in channels:
        sig = data["signal"].get(dev, {}).get(name)
        if sig is None:
            raise DataError(
                f"{path}: signal {dev}.{name} is missing (has: "
                f"{', '.join(f'{d}.{k}' for d, s in data['signal'].items() for k in s)})"
            )
        sig = np.asarray(sig, dtype=np.float64).reshape(len(sig), -1)
        fs = CHEST_FS if dev == "chest" else WRIST_FS[name]
        cols.append(_resample(sig, fs, rate, n))
    sig = np.concatenate(cols, axis=1).astype(np.float32)  # [n, C]
    lab = label[(np.arange(n) * CHEST_FS // rate).clip(max=len(label) - 1)]
    starts = windows(n, rate, window_s, stride_s)
    w = int(round(window_s * rate))
    if not len(starts):
        raise DataError(f"{path}: the recording ({n / rate:.0f} s) is shorter than dataset.window_s={window_s}")
    mapping = TASKS[task]
    X, y, t = [], [], []
    for s in starts:
        seg = lab[s : s + w]
        if seg.min() != seg.max():
            dropped["mixed_label"] = dropped.get("mixed_label", 0) + 1
            continue
        if int(seg[0]) not in mapping:
            dropped["not_in_task"] = dropped.get("not_in_task", 0) + 1
            continue
        X.append(sig[s : s + w].T)
        y.append(mapping[int(seg[0])])
        t.append(s / rate)
    C = sig.shape[1]
    return (np.stack(X) if X else np.zeros((0, C, w), np.float32), np.array(y, np.int64), np.array(t, np.float64))


class WESADDataModule(GroupedDataModule):
    """WESAD windows, one group per subject (see the module docstring)."""

    name = "wesad"
    group_kind = "subject"

    def __init__(
        self,
        root: str,
        task: str = "binary",
        signals: list[str] | tuple[str, ...] = ("chest.ECG", "chest.EDA", "chest.Resp", "chest.Temp"),
        rate: int = 35,
        window_s: float = 10.0,
        stride_s: float = 5.0,
        subjects: list[str] | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        if task not in TASKS:
            raise ConfigError(f"unknown WESAD task {task!r}; choose one of: {', '.join(TASKS)}")
        if not isinstance(rate, int) or not 1 <= rate <= CHEST_FS:
            raise ConfigError(f"dataset.rate must be an int in 1..{CHEST_FS} Hz, got {rate!r}")
        check_windowing(window_s, stride_s)
        self.root, self.task, self.channels = Path(root), task, _channels(list(signals))
        self.rate, self.window_s, self.stride_s = rate, float(window_s), float(stride_s)
        self.subjects = list(subjects) if subjects else None

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            raise DataError(
                f"dataset.root {str(self.root)!r} is not a folder; WESAD expects "
                f"root/S2/S2.pkl … root/S17/S17.pkl (the unmodified download)"
            )
        found = sorted(self.root.glob("S*/S*.pkl"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
        found = [p for p in found if p.parent.name == p.stem]
        if self.subjects:
            want = set(self.subjects)
            missing = want - {p.stem for p in found}
            if missing:
                raise DataError(
                    f"WESAD subject(s) {', '.join(sorted(missing))} not found under {self.root} "
                    f"(expected root/<S>/<S>.pkl; found: {', '.join(p.stem for p in found) or 'none'})"
                )
            found = [p for p in found if p.stem in want]
        if not found:
            raise DataError(
                f"no WESAD subject under {self.root}: expected root/S2/S2.pkl … root/S17/S17.pkl "
                f"(subjects {', '.join(SUBJECTS)})"
            )
        return found

    def load(self) -> WindowArrays:
        files = self.files()
        key = fingerprint(
            [self.task, self.channels, self.rate, self.window_s, self.stride_s, self.on_bad_record], files
        )
        return cached(self.cache_dir, self.name, key, lambda: self._build(files))

    def _build(self, files: list[Path]) -> WindowArrays:
        found = Collector(self.on_bad_record)
        for path in files:
            try:
                data = read_pickle(path)
                X, y, t = subject_windows(
                    data, path, self.channels, self.rate, self.window_s, self.stride_s, self.task, found.dropped
                )
            except DataError as exc:
                found.bad(str(exc))
                continue
            found.add(X, y, data.get("subject", path.stem), t)
        names = tuple(
            f"{d}.{n}_{ax}" if n == "ACC" else f"{d}.{n}"
            for d, n in self.channels
            for ax in (("x", "y", "z") if n == "ACC" else ("",))
        )
        channels = sum(3 if n == "ACC" else 1 for _, n in self.channels)
        return found.arrays(channels, int(round(self.window_s * self.rate)), CLASS_NAMES[self.task], names)
