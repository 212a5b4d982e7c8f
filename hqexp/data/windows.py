"""What the windowed-signal and row datasets share: the arrays a loader produces, the cache
that makes the second pass instant, the split, the training-split scaler and the clients.

A loader turns files into :class:`WindowArrays` — ``X[N, C, T]`` windows (or ``[N, F]``
rows), labels, the natural group (subject / device / patient) of every sample, a time
stamp for time-ordered splits, and an account of everything dropped. :func:`cached`
stores them once per (files, settings) under ``cache_dir``; :class:`GroupedDataModule`
splits, scales with statistics of the training split only and serves them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hqexp.data.base import DataInfo, SplitDataModule
from hqexp.errors import ConfigError, DataError

log = logging.getLogger("hqexp")

BAD_RECORD = ("error", "skip")
SPLITS = ("stratified", "time", "group")


@dataclass
class WindowArrays:
    """Samples of one dataset: ``X`` windows ``[N, C, T]`` or rows ``[N, F]`` (float32),
    ``y`` class indices ``[N]``, ``groups`` ``[N]`` (str), ``t`` ``[N]`` start time (s)."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    t: np.ndarray
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    skipped: list[str] = field(default_factory=list)  # files skipped, with the reason
    dropped: dict[str, int] = field(default_factory=dict)  # samples dropped, by reason
    seconds: float = 0.0  # time the build took


def cached(cache_dir: str | Path | None, name: str, key: str, build: Callable[[], WindowArrays]) -> WindowArrays:
    """``build()`` once per ``key``: the windows are stored as ``<name>_<key>.npy`` (memory-mapped
    when read back) and the rest as ``.npz``, written atomically so parallel jobs share them."""
    if cache_dir is None:
        return build()
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    x_path, meta_path = folder / f"{name}_{key}.npy", folder / f"{name}_{key}.npz"
    if x_path.exists() and meta_path.exists():
        t0 = time.perf_counter()
        meta = np.load(meta_path, allow_pickle=False)
        arr = WindowArrays(
            np.load(x_path, mmap_mode="r"),
            meta["y"],
            meta["groups"],
            meta["t"],
            tuple(meta["class_names"]),
            tuple(meta["channel_names"]),
            list(meta["skipped"]),
            json.loads(str(meta["dropped"])),
            time.perf_counter() - t0,
        )
        log.info("%s: %d samples from the cache %s", name, len(arr.y), x_path)
        return arr
    arr = build()
    tmp = f".{os.getpid()}.tmp"
    np.save(folder / f"{name}_{key}{tmp}.npy", np.ascontiguousarray(arr.X))
    np.savez(
        folder / f"{name}_{key}{tmp}.npz",
        y=arr.y,
        groups=arr.groups.astype(str),
        t=arr.t,
        class_names=np.array(arr.class_names, dtype=str),
        channel_names=np.array(arr.channel_names, dtype=str),
        skipped=np.array(arr.skipped, dtype=str),
        dropped=json.dumps(arr.dropped),
    )
    os.replace(folder / f"{name}_{key}{tmp}.npy", x_path)
    os.replace(folder / f"{name}_{key}{tmp}.npz", meta_path)
    return arr


def windows(n: int, fs: float, window_s: float, stride_s: float) -> np.ndarray:
    """Start indices of every full window of ``window_s`` seconds every ``stride_s`` in ``n`` samples."""
    w, s = int(round(window_s * fs)), int(round(stride_s * fs))
    if n < w:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n - w + 1, s, dtype=np.int64)


def check_windowing(window_s: float, stride_s: float) -> None:
    for key, v in (("window_s", window_s), ("stride_s", stride_s)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ConfigError(f"dataset.{key} must be a positive number of seconds, got {v!r}")


def bad_record(policy: str, message: str, skipped: list[str]) -> None:
    """Raise (``error``) or record and warn (``skip``) a bad file."""
    if policy == "error":
        raise DataError(f"{message} (set dataset.on_bad_record=skip to skip bad files)")
    skipped.append(message)
    log.warning("skipping: %s", message)


class Collector:
    """Windows gathered file by file — with the files skipped and the windows dropped, by
    reason — then assembled into one :class:`WindowArrays` (timed from construction)."""

    def __init__(self, on_bad_record: str) -> None:
        self.policy, self.t0 = on_bad_record, time.perf_counter()
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.skipped: list[str] = []
        self.dropped: dict[str, int] = {}

    def add(self, X: np.ndarray, y: np.ndarray, group: str, t: np.ndarray) -> None:
        """One file's windows, all of them from ``group`` (its subject, device or patient)."""
        self.parts.append((X, y, np.full(len(y), str(group)), t))

    def bad(self, message: str) -> None:
        """A file that could not be read: stop, or skip it, by ``on_bad_record``."""
        bad_record(self.policy, message, self.skipped)

    def arrays(
        self, channels: int, width: int, class_names: Sequence[str], channel_names: Sequence[str]
    ) -> WindowArrays:
        """Everything gathered (an empty ``[0, channels, width]`` when nothing was)."""
        cols = list(zip(*self.parts)) or [
            [np.zeros((0, channels, width), np.float32)],
            [np.zeros(0, np.int64)],
            [np.zeros(0, str)],
            [np.zeros(0)],
        ]
        X, y, g, t = (np.concatenate(c) for c in cols)
        return WindowArrays(
            X,
            y,
            g,
            t,
            tuple(class_names),
            tuple(channel_names),
            self.skipped,
            self.dropped,
            time.perf_counter() - self.t0,
        )


class _Samples(Dataset):
    """Scaled samples of one split, read lazily from (possibly memory-mapped) arrays."""

    def __init__(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
        self.X, self.labels, self.idx, self.mean, self.std = X, y, idx, mean.astype(np.float32), std.astype(np.float32)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int):
        j = self.idx[i]
        x = (np.asarray(self.X[j], dtype=np.float32) - self.mean) / self.std
        return torch.from_numpy(x), torch.tensor(int(self.labels[j]))


class GroupedDataModule(SplitDataModule):
    """Train / val / test over :class:`WindowArrays` whose samples each belong to a group.

    ``split``: ``stratified`` (seeded, by label), ``time`` (within every group and class: the
    first ``1 − val − test`` of its samples in time train, the next val, the last test — every
    client has every one of its classes in each split, and overlapping windows meet across
    splits only at those two boundaries), or ``group`` (whole groups held out for val and
    test: leave-subjects-out). Scalers (per channel) are fitted on the training split only.
    """

    SUPPORTS = frozenset({"groups"})
    REFUSALS = {
        "cv": "k-fold CV is for the small tabular sets; grouped datasets split with dataset.split "
        "(stratified | time | group)",
        "imbalance": "imbalance.method is for the small tabular sets",
    }
    name = "?"
    group_kind = "group"

    def __init__(
        self,
        split: str = "time",
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | None = None,
        on_bad_record: str = "error",
    ) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ConfigError(f"dataset.split must be one of {', '.join(SPLITS)}, got {split!r}")
        for key, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 0.5:
                raise ConfigError(f"dataset.{key} must be in (0, 0.5), got {frac!r}")
        if on_bad_record not in BAD_RECORD:
            raise ConfigError(f"dataset.on_bad_record must be error or skip, got {on_bad_record!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"dataset.batch_size must be a positive int, got {batch_size!r}")
        self.split, self.val_fraction, self.test_fraction = split, val_fraction, test_fraction
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.cache_dir, self.on_bad_record = cache_dir, on_bad_record
        self.arrays: WindowArrays | None = None
        self._splits: dict = {}
        self.info: DataInfo | None = None

    # ------------------------------------------------------------ to implement
    def load(self) -> WindowArrays:
        """Read (or take from the cache) every sample of the dataset."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared
    @property
    def n_skipped(self) -> int:
        return len(self.arrays.skipped) if self.arrays else 0

    def _parts(self, arr: WindowArrays) -> dict[str, np.ndarray]:
        n = len(arr.y)
        idx = np.arange(n)
        rng = np.random.default_rng(self.seed)
        if self.split == "stratified":
            from sklearn.model_selection import train_test_split

            counts = np.bincount(arr.y)
            strat = arr.y if counts[counts > 0].min() >= 3 else None
            try:
                rest, test = train_test_split(idx, test_size=self.test_fraction, stratify=strat, random_state=self.seed)
                tr, va = train_test_split(
                    rest,
                    test_size=self.val_fraction / (1 - self.test_fraction),
                    stratify=None if strat is None else arr.y[rest],
                    random_state=self.seed,
                )
            except ValueError as exc:
                raise DataError(f"{self.name}: {n} samples are too few to split ({str(exc).splitlines()[0]})") from None
            parts = {"train": tr, "val": va, "test": test}
        elif self.split == "time":
            parts = {"train": [], "val": [], "test": []}
            cells = np.unique(np.stack([arr.groups.astype(str), arr.y.astype(str)], 1), axis=0)
            for g, label in cells:
                mine = idx[(arr.groups == g) & (arr.y.astype(str) == label)]
                mine = mine[np.argsort(arr.t[mine], kind="stable")]
                n = len(mine)  # at least one sample for test (n >= 2) and for val (n >= 3)
                n_te = max(int(round(n * self.test_fraction)), 1 if n >= 2 else 0)
                n_va = max(int(round(n * self.val_fraction)), 1 if n >= 3 else 0)
                n_tr = n - n_va - n_te
                parts["train"].append(mine[:n_tr])
                parts["val"].append(mine[n_tr : n_tr + n_va])
                parts["test"].append(mine[n_tr + n_va :])
            parts = {k: np.sort(np.concatenate(v)) if v else np.zeros(0, np.int64) for k, v in parts.items()}
        else:
            gs = rng.permutation(np.unique(arr.groups))
            n_te = max(1, int(round(len(gs) * self.test_fraction)))
            n_va = max(1, int(round(len(gs) * self.val_fraction)))
            if len(gs) < n_te + n_va + 1:
                raise ConfigError(f"dataset.split=group needs at least 3 {self.group_kind}s, found {len(gs)}")
            held = {"test": gs[:n_te], "val": gs[n_te : n_te + n_va], "train": gs[n_te + n_va :]}
            parts = {k: idx[np.isin(arr.groups, v)] for k, v in held.items()}
        for name, p in parts.items():
            if len(p) == 0:
                raise DataError(
                    f"{self.name}: the {name} split is empty ({n} samples in "
                    f"{len(np.unique(arr.groups))} {self.group_kind}s, split={self.split}); "
                    "use more data or other fractions"
                )
        missing = sorted(set(range(len(arr.class_names))) - set(np.unique(arr.y[parts["train"]]).tolist()))
        if missing:
            names = ", ".join(arr.class_names[i] for i in missing)
            raise DataError(
                f"{self.name}: class(es) {names} absent from the training split "
                f"({len(parts['train'])} samples); use more data, another dataset.split, or a task "
                "without them"
            )
        return parts

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        arr = self.arrays = self.load()
        if len(arr.y) == 0:
            drops = ", ".join(f"{v} {k}" for k, v in arr.dropped.items() if v) or "none"
            raise DataError(f"{self.name}: no sample survived ({len(arr.skipped)} file(s) skipped; dropped: {drops})")
        parts = self._parts(arr)
        mean, std = _channel_stats(arr.X, parts["train"])
        self._splits = {k: _Samples(arr.X, arr.y, v, mean, std) for k, v in parts.items()}
        rows = arr.X.ndim == 2
        self.info = DataInfo(
            arr.X.shape[1],
            len(arr.class_names),
            arr.class_names,
            length=None if rows else arr.X.shape[2],
            group_kind=self.group_kind,
            groups={k: arr.groups[v] for k, v in parts.items()},
        )
        drops = ", ".join(f"{v} {k}" for k, v in arr.dropped.items() if v)
        log.info(
            "%s: %d samples (%s) in %d %ss; train/val/test %d/%d/%d%s",
            self.name,
            len(arr.y),
            "rows" if rows else f"windows of {arr.X.shape[2]} x {arr.X.shape[1]} channels",
            len(np.unique(arr.groups)),
            self.group_kind,
            *(len(parts[k]) for k in ("train", "val", "test")),
            f"; dropped: {drops}" if drops else "",
        )

    def targets(self, split: str) -> np.ndarray:
        ds = self._splits[split]
        return np.asarray(ds.labels)[ds.idx]


def _channel_stats(X: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per channel (rows: per feature) over the training samples, chunked."""
    axes = (0,) if X.ndim == 2 else (0, 2)
    shape = (X.shape[1],) if X.ndim == 2 else (X.shape[1], 1)
    s1 = np.zeros(X.shape[1])
    s2 = np.zeros(X.shape[1])
    count = 0
    for start in range(0, len(train), 1024):
        block = np.asarray(X[np.sort(train[start : start + 1024])], dtype=np.float64)
        s1 += block.sum(axis=axes)
        s2 += (block**2).sum(axis=axes)
        count += block.shape[0] * (1 if X.ndim == 2 else X.shape[2])
    mean = s1 / count
    std = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
    std = np.where(std < 1e-8, 1.0, std)  # a constant channel stays at zero instead of dividing by 0
    return mean.reshape(shape), std.reshape(shape)
