"""12-lead ECG data: PTB-XL, PhysioNet/CinC 2021, and a synthetic set, as multi-label tasks.

All three give ``x[12, T]`` (float32, mV, standardised per lead with statistics of the
training split) and ``y[5]`` — multi-hot over the PTB-XL diagnostic superclasses in
this fixed order: ``NORM, MI, STTC, CD, HYP``.

* ``ptbxl``: an unmodified PTB-XL download (``ptbxl_database.csv``,
  ``scp_statements.csv``, ``records100/``, ``records500/``). Labels exactly as the
  PTB-XL benchmark's ``superdiagnostic`` task: every ``scp_codes`` key whose statement
  has ``diagnostic == 1`` maps to its ``diagnostic_class``; no likelihood threshold;
  records with no superclass are dropped. Split by ``strat_fold`` (1–8 / 9 / 10).
* ``cinc2021``: a folder (searched recursively) of ``.hea`` + ``.mat`` records with
  SNOMED-CT codes in ``# Dx:``; resampled to ``sampling_rate``, cropped or zero-padded
  to ``duration_s``; codes mapped through :data:`SNOMED_SUPERCLASS`; records with no
  mapped code dropped and counted; stratified seeded split.
* ``synthetic_ecg``: generated beats whose morphology depends on the classes (see
  :func:`synthetic_ecg`). Synthetic wherever it appears.

Reading the full PTB-XL takes minutes, so the first read shows a progress bar and
writes a cache (``.npy`` memory-mapped signals + ``.npz`` labels) under ``cache_dir``,
keyed by source, rate, length and the size/mtime of every file read; a changed or
added file gives a new key.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hqexp.data.base import DataInfo, SplitDataModule, read_table
from hqexp.errors import ConfigError, DataError

log = logging.getLogger("hqexp")

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
N_LEADS = 12
SOURCES = ("ptbxl", "cinc2021", "synthetic_ecg")
BAD_RECORD = ("error", "skip")

# SNOMED-CT → PTB-XL superclass, for the CinC-2021 scored and common diagnoses whose
# PTB-XL counterpart is diagnostic. Rhythm-only codes (AF, sinus tachycardia, …) are
# deliberately absent: PTB-XL's superdiagnostic task has no rhythm class.
SNOMED_SUPERCLASS: dict[str, str] = {
    "426783006": "NORM",  # sinus rhythm (PTB-XL NORM is "normal ECG"; CinC uses SNR for it)
    "164865005": "MI",  # myocardial infarction
    "57054005": "MI",  # acute myocardial infarction
    "413444003": "MI",  # acute myocardial ischemia → treated as infarction-class (PTB-XL AMI)
    "54329005": "MI",  # acute anterior MI
    "164867002": "MI",  # old myocardial infarction
    "164861001": "STTC",  # myocardial ischemia
    "164934002": "STTC",  # T-wave abnormal
    "59931005": "STTC",  # T-wave inversion
    "429622005": "STTC",  # ST depression
    "164930006": "STTC",  # ST elevation
    "428750005": "STTC",  # nonspecific ST-T abnormality
    "55930002": "STTC",  # ST changes
    "164931005": "STTC",  # ST interval abnormal
    "111975006": "STTC",  # prolonged QT
    "59118001": "CD",  # right bundle branch block
    "713427006": "CD",  # complete right bundle branch block
    "713426002": "CD",  # incomplete right bundle branch block
    "164909002": "CD",  # left bundle branch block
    "733534002": "CD",  # complete left bundle branch block
    "445118002": "CD",  # left anterior fascicular block
    "445211001": "CD",  # left posterior fascicular block
    "270492004": "CD",  # first-degree AV block
    "195042002": "CD",  # second-degree AV block
    "27885002": "CD",  # complete heart block
    "698252002": "CD",  # nonspecific intraventricular conduction disorder
    "6374002": "CD",  # bundle branch block
    "74390002": "CD",  # Wolff-Parkinson-White pattern
    "164873001": "HYP",  # left ventricular hypertrophy
    "89792004": "HYP",  # right ventricular hypertrophy
    "67741000119109": "HYP",  # left atrial enlargement
    "446358003": "HYP",  # right atrial hypertrophy
    "446813000": "HYP",  # left atrial hypertrophy
}


@dataclass
class ECGArrays:
    """Signals ``[N, 12, T]`` (possibly memory-mapped), labels ``[N, 5]`` and split keys."""

    signals: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    folds: np.ndarray | None = None  # PTB-XL strat_fold
    skipped: list[str] = field(default_factory=list)
    dropped_unlabelled: int = 0


# ------------------------------------------------------------------ PTB-XL labels
def ptbxl_labels(root: str | Path):
    """The PTB-XL table with a ``labels`` column (multi-hot over :data:`SUPERCLASSES`).

    Records without any diagnostic superclass are dropped (the benchmark's rule).
    """

    root = Path(root)
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        if not (root / name).is_file():
            raise DataError(f"dataset.root {str(root)!r} is not a PTB-XL folder: {name} is missing")
    db = read_table(root / "ptbxl_database.csv", "PTB-XL table")
    if "ecg_id" not in db.columns:
        raise DataError(f"{root / 'ptbxl_database.csv'} has no ecg_id column (it has: {', '.join(map(str, db.columns))})")
    db = db.set_index("ecg_id")
    scp = read_table(root / "scp_statements.csv", "PTB-XL statements", index_col=0)
    if not {"diagnostic", "diagnostic_class"} <= set(scp.columns):
        raise DataError(f"{root / 'scp_statements.csv'} lacks the diagnostic / diagnostic_class columns")
    need = {"scp_codes", "strat_fold", "filename_lr", "filename_hr"}
    if need - set(db.columns):
        raise DataError(f"ptbxl_database.csv lacks column(s) {', '.join(sorted(need - set(db.columns)))}")
    diag = scp[scp["diagnostic"] == 1]["diagnostic_class"].to_dict()

    def classes(item) -> np.ndarray:
        ecg_id, codes = item
        y = np.zeros(len(SUPERCLASSES), dtype=np.float32)
        try:
            parsed = ast.literal_eval(codes)
            if not isinstance(parsed, dict):
                raise ValueError("not a dict")
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise DataError(f"ptbxl_database.csv: ecg_id {ecg_id}: scp_codes {str(codes)[:60]!r} is not a dict "
                            "such as {'NORM': 100.0}") from None
        for code in parsed:
            cls = diag.get(code)
            if isinstance(cls, str) and cls in SUPERCLASSES:
                y[SUPERCLASSES.index(cls)] = 1.0
        return y

    db["labels"] = [classes(item) for item in db["scp_codes"].items()]
    keep = db["labels"].map(lambda y: y.any())
    return db[keep], int((~keep).sum())


# ------------------------------------------------------------------ reading records
def read_record(path: Path, rate: int, length: int, n_leads: int = N_LEADS) -> np.ndarray:
    """One WFDB record as ``[n_leads, length]`` float32, checked; :class:`DataError` names the file."""
    import wfdb

    hea = path.with_suffix(".hea")
    if not hea.is_file():
        raise DataError(f"missing record header {hea}")
    try:
        head = wfdb.rdheader(str(path))
    except Exception as exc:
        raise DataError(f"unreadable header {hea}: {exc}") from None
    if head.n_sig != n_leads:
        raise DataError(f"{hea}: {head.n_sig} leads, expected {n_leads}")
    if int(round(head.fs)) != rate:
        raise DataError(f"{hea}: sampling rate {head.fs:g} Hz, expected {rate} Hz")
    if head.sig_len != length:
        raise DataError(f"{hea}: {head.sig_len} samples, expected {length}")
    for f in sorted(set(head.file_name or [])):
        if not (path.parent / f).is_file():
            raise DataError(f"{hea}: signal file {path.parent / f} is missing")
    try:
        sig, _ = wfdb.rdsamp(str(path))
    except Exception as exc:
        raise DataError(f"unreadable signal of {path}: {type(exc).__name__}: {exc}") from None
    if sig.shape != (length, n_leads):
        raise DataError(f"{path}: signal is {sig.shape[0]} x {sig.shape[1]}, expected {length} x {n_leads} "
                        "(truncated file?)")
    if not np.isfinite(sig).all():
        raise DataError(f"{path}: signal contains NaN or inf (truncated or corrupt file)")
    return sig.T.astype(np.float32)


def _fingerprint(parts: list[str], files: list[Path]) -> str:
    h = hashlib.sha1("|".join(parts).encode())
    for f in files:
        try:
            st = f.stat()
            h.update(f"{f}:{st.st_size}:{st.st_mtime_ns};".encode())
        except OSError:
            h.update(f"{f}:missing;".encode())
    return h.hexdigest()[:20]


def _cached(cache_dir: Path | None, key: str, build) -> ECGArrays:
    """Load ``key`` from the cache, or build and store it (atomically, memory-mapped)."""
    if cache_dir is None:
        return build(None)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sig_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.npz"
    if sig_path.exists() and meta_path.exists():
        meta = np.load(meta_path, allow_pickle=False)
        log.info("ECG cache hit: %s", sig_path)
        return ECGArrays(np.load(sig_path, mmap_mode="r"), meta["labels"], meta["ids"],
                         meta["folds"] if meta["folds"].size else None, list(meta["skipped"]),
                         int(meta["dropped"]))
    tmp = cache_dir / f"{key}.{os.getpid()}.tmp.npy"
    arr = build(tmp)
    np.savez(meta_path.with_suffix(".tmp.npz"), labels=arr.labels, ids=arr.ids,
             folds=arr.folds if arr.folds is not None else np.array([]), skipped=np.array(arr.skipped, dtype=str),
             dropped=arr.dropped_unlabelled)
    os.replace(tmp, sig_path)
    os.replace(meta_path.with_suffix(".tmp.npz"), meta_path)
    arr.signals = np.load(sig_path, mmap_mode="r")
    return arr


def _fill(out_path: Path | None, n: int, n_leads: int, length: int, items, reader, on_bad: str, what: str):
    """Read ``items`` into ``[n, 12, length]``, skipping (or raising on) bad records."""
    from tqdm.auto import tqdm

    buf = (np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=(n, n_leads, length))
           if out_path is not None else np.empty((n, n_leads, length), dtype=np.float32))
    ok, skipped = [], []
    for i, item in enumerate(tqdm(items, desc=f"reading {what}", disable=n < 200, unit="rec")):
        try:
            buf[len(ok)] = reader(item)
            ok.append(i)
        except DataError as exc:
            if on_bad == "error":
                raise DataError(f"{exc} (set dataset.on_bad_record=skip to skip bad records)") from None
            skipped.append(str(exc))
            log.warning("skipping bad record: %s", exc)
    return buf, ok, skipped


def read_ptbxl(root: str | Path, rate: int = 100, on_bad_record: str = "error",
               cache_dir: str | Path | None = None) -> ECGArrays:
    """PTB-XL signals, superclass labels and folds (see the module docstring)."""
    root = Path(root)
    if rate not in (100, 500):
        raise ConfigError(f"dataset.sampling_rate must be 100 or 500 for PTB-XL, got {rate}")
    db, dropped = ptbxl_labels(root)
    col = "filename_lr" if rate == 100 else "filename_hr"
    paths = [root / f for f in db[col]]
    length = 10 * rate
    files = [root / "ptbxl_database.csv", root / "scp_statements.csv"]
    files += [p.with_suffix(s) for p in paths for s in (".hea", ".dat")]
    key = "ptbxl_" + _fingerprint([str(rate), on_bad_record, str(length)], files)

    def build(out: Path | None) -> ECGArrays:
        buf, ok, skipped = _fill(out, len(paths), N_LEADS, length, paths,
                                 lambda p: read_record(p, rate, length), on_bad_record, "PTB-XL")
        if not ok:
            raise DataError(f"no readable PTB-XL record under {root} at {rate} Hz")
        if len(ok) < len(paths):  # compact: skipped rows were never written
            buf = _compact(buf, out, len(ok))
        sel = np.array(ok)
        return ECGArrays(buf, np.stack(db["labels"].to_numpy()[sel]), db.index.to_numpy()[sel],
                         db["strat_fold"].to_numpy()[sel].astype(np.int64), skipped, dropped)

    return _cached(Path(cache_dir) if cache_dir else None, key, build)


def _compact(buf: np.ndarray, out: Path | None, n: int) -> np.ndarray:
    if out is None:
        return buf[:n].copy()
    small = np.array(buf[:n])
    del buf
    np.save(out, small)
    return small


# ------------------------------------------------------------------ CinC 2021
def _dx_codes(comments: list[str]) -> list[str]:
    for c in comments:
        if c.strip().lower().startswith("dx:"):
            return [x.strip() for x in c.split(":", 1)[1].split(",") if x.strip()]
    return []


def cinc_labels(codes: list[str]) -> np.ndarray:
    y = np.zeros(len(SUPERCLASSES), dtype=np.float32)
    for c in codes:
        cls = SNOMED_SUPERCLASS.get(c)
        if cls:
            y[SUPERCLASSES.index(cls)] = 1.0
    return y


def read_cinc2021(root: str | Path, rate: int = 100, duration_s: float = 10.0, on_bad_record: str = "error",
                  cache_dir: str | Path | None = None) -> ECGArrays:
    """CinC-2021 records resampled to ``rate`` and cropped/padded to ``duration_s``."""
    import wfdb

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset.root {str(root)!r} is not a folder")
    heads = sorted(root.rglob("*.hea"))
    if not heads:
        raise DataError(f"no .hea records under {root}")
    length = int(round(rate * duration_s))
    labelled, dropped = [], 0
    for h in heads:
        try:
            head = wfdb.rdheader(str(h.with_suffix("")))
        except Exception as exc:
            if on_bad_record == "error":
                raise DataError(f"unreadable header {h}: {exc} (set dataset.on_bad_record=skip)") from None
            continue
        y = cinc_labels(_dx_codes(head.comments or []))
        if y.any():
            labelled.append((h.with_suffix(""), y))
        else:
            dropped += 1
    if not labelled:
        raise DataError(f"none of the {len(heads)} records under {root} has a Dx code mapped to "
                        f"{', '.join(SUPERCLASSES)}")
    files = [p for path, _ in labelled for p in (path.with_suffix(".hea"), path.with_suffix(".mat"))]
    key = "cinc2021_" + _fingerprint([str(rate), str(length), on_bad_record], files)

    def reader(item) -> np.ndarray:
        from scipy.signal import resample_poly

        path, _ = item
        try:
            rec = wfdb.rdrecord(str(path))
        except Exception as exc:
            raise DataError(f"unreadable record {path}: {type(exc).__name__}: {exc}") from None
        if rec.n_sig != N_LEADS:
            raise DataError(f"{path}.hea: {rec.n_sig} leads, expected {N_LEADS}")
        sig = rec.p_signal
        if sig is None or sig.shape != (rec.sig_len, N_LEADS):
            raise DataError(f"{path}: signal shape {None if sig is None else sig.shape} disagrees with its header")
        sig = np.nan_to_num(sig).T  # CinC marks a few missing samples as NaN
        fs = int(round(rec.fs))
        if fs != rate:
            g = np.gcd(fs, rate)
            sig = resample_poly(sig, rate // g, fs // g, axis=1)
        out = np.zeros((N_LEADS, length), dtype=np.float32)
        n = min(length, sig.shape[1])
        out[:, :n] = sig[:, :n]
        return out

    def build(out: Path | None) -> ECGArrays:
        buf, ok, skipped = _fill(out, len(labelled), N_LEADS, length, labelled, reader, on_bad_record, "CinC 2021")
        if not ok:
            raise DataError(f"no readable CinC-2021 record under {root}")
        if len(ok) < len(labelled):
            buf = _compact(buf, out, len(ok))
        ids = np.array([labelled[i][0].name for i in ok])
        return ECGArrays(buf, np.stack([labelled[i][1] for i in ok]), ids, None, skipped, dropped)

    return _cached(Path(cache_dir) if cache_dir else None, key, build)


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
            beat = (0.12 * np.exp(-((phase + 0.16) / 0.03) ** 2)  # P
                    - q_amp * np.exp(-((phase + 0.03) / (0.6 * width)) ** 2)  # Q
                    + r_amp * np.exp(-(phase / width) ** 2)  # R
                    - s_amp * np.exp(-((phase - 0.035) / (0.6 * width)) ** 2)  # S
                    + (0.3 * np.exp(-((phase - 0.05) / 0.01) ** 2) if cd else 0.0)  # notch
                    + st * ((phase > 0.05) & (phase < 0.2))  # ST segment
                    + t_amp * np.exp(-((phase - 0.25) / 0.05) ** 2))  # T
            sig[lead] = g * beat
        sig += 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))  # baseline wander
        sig += 0.03 * rng.standard_normal(sig.shape)
        X[i] = sig
    return ECGArrays(X, Y, np.arange(n))


# ------------------------------------------------------------------ data module
class _Signals(Dataset):
    def __init__(self, signals: np.ndarray, labels: np.ndarray, idx: np.ndarray, mean: np.ndarray,
                 std: np.ndarray) -> None:
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
            parts = {name: np.flatnonzero(np.isin(arr.folds, sorted(f)))
                     for name, f in zip(("train", "val", "test"), self.folds)}
        else:
            from sklearn.model_selection import train_test_split

            idx = np.arange(n)
            strat = np.array(["".join(map(str, row.astype(int))) for row in arr.labels])
            counts = {s: (strat == s).sum() for s in set(strat)}
            strat = np.array([s if counts[s] >= 3 else "rare" for s in strat])
            try:
                rest, test = train_test_split(idx, test_size=self.test_fraction, stratify=strat,
                                              random_state=self.seed)
                train, val = train_test_split(rest, test_size=self.val_fraction / (1 - self.test_fraction),
                                              stratify=strat[rest], random_state=self.seed)
            except ValueError:  # too few records per label combination: plain seeded split
                rest, test = train_test_split(idx, test_size=self.test_fraction, random_state=self.seed)
                train, val = train_test_split(rest, test_size=self.val_fraction / (1 - self.test_fraction),
                                              random_state=self.seed)
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
            block = np.asarray(arr.signals[np.sort(train[start:start + 512])], dtype=np.float64)
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
