"""12-lead ECG tasks: PTB-XL, PhysioNet/CinC 2021, and a synthetic set, as a Lightning data module.

All three give ``x[12, T]`` (float32, mV, standardised per lead with statistics of the
training split) and ``y[5]`` — multi-hot over the PTB-XL diagnostic superclasses in
this fixed order: ``NORM, MI, STTC, CD, HYP``.

* ``ptbxl`` and ``cinc2021``: read by :mod:`hqexp.data.ecg_sources` (labels, resampling,
  bad records, cache). PTB-XL is split by ``strat_fold`` (1–8 / 9 / 10); CinC 2021 by a
  stratified seeded split.
* ``synthetic_ecg``: generated beats whose morphology depends on the classes (see
  :func:`synthetic_ecg`). Synthetic wherever it appears.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from hqexp.data.base import DataInfo, SplitDataModule
from hqexp.data.ecg_sources import N_LEADS, SUPERCLASSES, ECGArrays, read_cinc2021, read_ptbxl
from hqexp.errors import ConfigError, DataError

SOURCES = ("ptbxl", "cinc2021", "synthetic_ecg")
BAD_RECORD = ("error", "skip")


# ------------------------------------------------------------------ synthetic
def synthetic_ecg(n: int, rate: int = 100, duration_s: float = 10.0, seed: int = 0) -> ECGArrays:
    """A synthetic 12-lead set with class-dependent morphology (not physiology: a test bed).

    Beats are sums of Gaussians (P, Q, R, S, T) with lead-specific gains at a random
    heart rate of 55–100 bpm, plus baseline wander and noise. Classes change shape:
    MI deepens Q and elevates ST in leads V1–V4; STTC inverts T and depresses ST;
    CD widens QRS and adds a notch; HYP enlarges R in V5–V6 and S in V1–V2.
    NORM records have no other class; others have one or two abnormal classes.
    """
    rng = np.random.default_rng(seed)
    length = int(round(rate * duration_s))
    t = np.arange(length) / rate
    gains = rng.uniform(0.4, 1.2, (N_LEADS,)) * np.where(np.arange(N_LEADS) == 3, -1.0, 1.0)  # aVR inverted
    X = np.empty((n, N_LEADS, length), dtype=np.float32)
    Y = np.zeros((n, len(SUPERCLASSES)), dtype=np.float32)
    for i in range(n):
        if rng.random() < 0.4:
            Y[i, 0] = 1
        else:
            Y[i, rng.choice(np.arange(1, 5), size=rng.integers(1, 3), replace=False)] = 1
        mi, sttc, cd, hyp = Y[i, 1:]
        rr = 60.0 / rng.uniform(55, 100)
        width = 0.025 * (1.8 if cd else 1.0)
        phase = (t % rr) - 0.25  # beat-relative time, R peak at 0.25 s into each beat
        sig = np.zeros((N_LEADS, length))
        for lead in range(N_LEADS):
            chest = 6 <= lead <= 9
            g = gains[lead]
            r_amp = 1.0 + (0.8 if hyp and lead >= 10 else 0.0)
            s_amp = 0.25 + (0.6 if hyp and lead in (6, 7) else 0.0)
            q_amp = 0.1 + (0.5 if mi and chest else 0.0)
            t_amp = 0.3 * (-1.0 if sttc else 1.0)
            st = (0.15 if mi and chest else 0.0) - (0.1 if sttc else 0.0)
            beat = (
                0.12 * np.exp(-(((phase + 0.16) / 0.03) ** 2))  # P
                - q_amp * np.exp(-(((phase + 0.03) / (0.6 * width)) ** 2))  # Q
                + r_amp * np.exp(-((phase / width) ** 2))  # R
                - s_amp * np.exp(-(((phase - 0.035) / (0.6 * width)) ** 2))  # S
                + (0.3 * np.exp(-(((phase - 0.05) / 0.01) ** 2)) if cd else 0.0)  # notch
                + st * ((phase > 0.05) & (phase < 0.2))  # ST segment
                + t_amp * np.exp(-(((phase - 0.25) / 0.05) ** 2))
            )  # T
            sig[lead] = g * beat
        sig += 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))  # baseline wander
        sig += 0.03 * rng.standard_normal(sig.shape)
        X[i] = sig
    return ECGArrays(X, Y, np.arange(n))


# ------------------------------------------------------------------ data module
class _Signals(Dataset):
    def __init__(
        self, signals: np.ndarray, labels: np.ndarray, idx: np.ndarray, mean: np.ndarray, std: np.ndarray
    ) -> None:
        self.signals, self.labels, self.idx = signals, labels, idx
        self.mean, self.std = mean[:, None].astype(np.float32), std[:, None].astype(np.float32)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int):
        j = self.idx[i]
        x = (np.asarray(self.signals[j], dtype=np.float32) - self.mean) / self.std
        return torch.from_numpy(x), torch.from_numpy(self.labels[j])


class ECGDataModule(SplitDataModule):
    """A multi-label 12-lead ECG data module over any of :data:`SOURCES`."""

    def __init__(
        self,
        source: str = "synthetic_ecg",
        root: str | None = None,
        sampling_rate: int = 100,
        duration_s: float = 10.0,
        on_bad_record: str = "error",
        train_folds: list[int] | tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8),
        val_folds: list[int] | tuple[int, ...] = (9,),
        test_folds: list[int] | tuple[int, ...] = (10,),
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        n_synthetic: int = 1200,
        batch_size: int = 64,
        num_workers: int = 0,
        cache_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ConfigError(f"unknown ECG source {source!r}; choose one of: {', '.join(SOURCES)}")
        if on_bad_record not in BAD_RECORD:
            raise ConfigError(f"dataset.on_bad_record must be error or skip, got {on_bad_record!r}")
        if source != "synthetic_ecg" and not root:
            raise ConfigError(f"dataset={source} needs dataset.root=DIR (the unmodified download)")
        if not isinstance(sampling_rate, int) or sampling_rate < 10:
            raise ConfigError(f"dataset.sampling_rate must be an int >= 10, got {sampling_rate!r}")
        folds = [set(train_folds), set(val_folds), set(test_folds)]
        if any(a & b for a, b in ((folds[0], folds[1]), (folds[0], folds[2]), (folds[1], folds[2]))):
            raise ConfigError("dataset train/val/test folds overlap")
        self.source, self.root, self.rate, self.duration_s = source, root, sampling_rate, duration_s
        self.on_bad_record, self.folds = on_bad_record, folds
        self.val_fraction, self.test_fraction, self.n_synthetic = val_fraction, test_fraction, n_synthetic
        self.batch_size, self.num_workers, self.cache_dir, self.seed = batch_size, num_workers, cache_dir, seed
        self.arrays: ECGArrays | None = None
        self._splits: dict[str, _Signals] = {}
        self.info: DataInfo | None = None

    def _split(self, arr: ECGArrays) -> dict[str, np.ndarray]:
        n = len(arr.labels)
        if arr.folds is not None:
            parts = {
                name: np.flatnonzero(np.isin(arr.folds, sorted(f)))
                for name, f in zip(("train", "val", "test"), self.folds)
            }
        else:
            from sklearn.model_selection import train_test_split

            idx = np.arange(n)
            strat = np.array(["".join(map(str, row.astype(int))) for row in arr.labels])
            counts = {s: (strat == s).sum() for s in set(strat)}
            strat = np.array([s if counts[s] >= 3 else "rare" for s in strat])
            try:
                rest, test = train_test_split(idx, test_size=self.test_fraction, stratify=strat, random_state=self.seed)
                train, val = train_test_split(
                    rest,
                    test_size=self.val_fraction / (1 - self.test_fraction),
                    stratify=strat[rest],
                    random_state=self.seed,
                )
            except ValueError:  # too few records per label combination: plain seeded split
                rest, test = train_test_split(idx, test_size=self.test_fraction, random_state=self.seed)
                train, val = train_test_split(
                    rest, test_size=self.val_fraction / (1 - self.test_fraction), random_state=self.seed
                )
            parts = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
        for name, idx in parts.items():
            if len(idx) == 0:
                raise DataError(f"the {name} split is empty ({self.source}: {n} records); check the folds/fractions")
        return parts

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        if self.source == "ptbxl":
            if self.duration_s != 10.0:
                raise ConfigError("PTB-XL records are 10 s long: leave dataset.duration_s at 10")
            arr = read_ptbxl(self.root, self.rate, self.on_bad_record, self.cache_dir)
        elif self.source == "cinc2021":
            arr = read_cinc2021(self.root, self.rate, self.duration_s, self.on_bad_record, self.cache_dir)
        else:
            arr = synthetic_ecg(self.n_synthetic, self.rate, self.duration_s, seed=0)
        self.arrays = arr
        parts = self._split(arr)
        train = parts["train"]
        # Per-lead statistics of the training split only (chunked: the signals may be a memmap).
        s1 = np.zeros(N_LEADS)
        s2 = np.zeros(N_LEADS)
        for start in range(0, len(train), 512):
            block = np.asarray(arr.signals[np.sort(train[start : start + 512])], dtype=np.float64)
            s1 += block.sum(axis=(0, 2))
            s2 += (block**2).sum(axis=(0, 2))
        count = len(train) * arr.signals.shape[2]
        mean = s1 / count
        std = np.sqrt(np.maximum(s2 / count - mean**2, 1e-12))
        self._splits = {k: _Signals(arr.signals, arr.labels, v, mean, std) for k, v in parts.items()}
        self.info = DataInfo(N_LEADS, len(SUPERCLASSES), SUPERCLASSES, task="multilabel", length=arr.signals.shape[2])

    @property
    def n_skipped(self) -> int:
        return len(self.arrays.skipped) if self.arrays else 0
