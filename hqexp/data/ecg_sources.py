"""Reading 12-lead ECG datasets from disk: PTB-XL and PhysioNet/CinC 2021, as multi-label arrays.

Both give signals ``[N, 12, T]`` (float32, mV) and ``labels[N, 5]`` — multi-hot over the
PTB-XL diagnostic superclasses in this fixed order: ``NORM, MI, STTC, CD, HYP``.

* PTB-XL: an unmodified download (``ptbxl_database.csv``, ``scp_statements.csv``,
  ``records100/``, ``records500/``). Labels exactly as the PTB-XL benchmark's
  ``superdiagnostic`` task: every ``scp_codes`` key whose statement has ``diagnostic == 1``
  maps to its ``diagnostic_class``; no likelihood threshold; records with no superclass
  are dropped. The ``strat_fold`` of each record is kept for the split.
* CinC 2021: a folder (searched recursively) of ``.hea`` + ``.mat`` records with SNOMED-CT
  codes in ``# Dx:``; resampled to the wanted rate, cropped or zero-padded to the wanted
  duration; codes mapped through :data:`SNOMED_SUPERCLASS`; records with no mapped code
  dropped and counted.

Reading the full PTB-XL takes minutes, so the first read shows a progress bar and
writes a cache (``.npy`` memory-mapped signals + ``.npz`` labels) under ``cache_dir``,
keyed by source, rate, length and the size/mtime of every file read; a changed or
added file gives a new key.
"""

from __future__ import annotations

import ast
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hqexp.data.base import fingerprint, read_table
from hqexp.errors import ConfigError, DataError

log = logging.getLogger("hqexp")

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
N_LEADS = 12

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
        raise DataError(
            f"{root / 'ptbxl_database.csv'} has no ecg_id column (it has: {', '.join(map(str, db.columns))})"
        )
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
            raise DataError(
                f"ptbxl_database.csv: ecg_id {ecg_id}: scp_codes {str(codes)[:60]!r} is not a dict "
                "such as {'NORM': 100.0}"
            ) from None
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
        raise DataError(
            f"{path}: signal is {sig.shape[0]} x {sig.shape[1]}, expected {length} x {n_leads} (truncated file?)"
        )
    if not np.isfinite(sig).all():
        raise DataError(f"{path}: signal contains NaN or inf (truncated or corrupt file)")
    return sig.T.astype(np.float32)


def _cached(cache_dir: Path | None, key: str, build) -> ECGArrays:
    """Load ``key`` from the cache, or build and store it (atomically, memory-mapped)."""
    if cache_dir is None:
        return build(None)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sig_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.npz"
    if sig_path.exists() and meta_path.exists():
        meta = np.load(meta_path, allow_pickle=False)
        log.info("ECG cache hit: %s", sig_path)
        return ECGArrays(
            np.load(sig_path, mmap_mode="r"),
            meta["labels"],
            meta["ids"],
            meta["folds"] if meta["folds"].size else None,
            list(meta["skipped"]),
            int(meta["dropped"]),
        )
    tmp, tmp_meta = cache_dir / f"{key}.{os.getpid()}.tmp.npy", cache_dir / f"{key}.{os.getpid()}.tmp.npz"
    try:
        arr = build(tmp)
        np.savez(
            tmp_meta,
            labels=arr.labels,
            ids=arr.ids,
            folds=arr.folds if arr.folds is not None else np.array([]),
            skipped=np.array(arr.skipped, dtype=str),
            dropped=arr.dropped_unlabelled,
        )
    except BaseException:  # a failed or interrupted read leaves no half-written (possibly GB-sized) file
        tmp.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
        raise
    os.replace(tmp, sig_path)
    os.replace(tmp_meta, meta_path)
    arr.signals = np.load(sig_path, mmap_mode="r")
    return arr


def _fill(out_path: Path | None, items: list, length: int, reader, on_bad: str, what: str, empty: str):
    """Read ``items`` into ``[n, 12, length]``, skipping (or raising on) bad records; the rows of
    the records read (compacted), their indices into ``items`` and the skip reasons.
    :class:`DataError` ``empty`` when no record could be read."""
    from tqdm.auto import tqdm

    n = len(items)
    buf = (
        np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=(n, N_LEADS, length))
        if out_path is not None
        else np.empty((n, N_LEADS, length), dtype=np.float32)
    )
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
    if not ok:
        raise DataError(empty)
    if len(ok) < n:  # skipped rows were never written
        buf = _compact(buf, out_path, len(ok))
    return buf, ok, skipped


def read_ptbxl(
    root: str | Path, rate: int = 100, on_bad_record: str = "error", cache_dir: str | Path | None = None
) -> ECGArrays:
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
    key = "ptbxl_" + fingerprint([str(rate), on_bad_record, str(length)], files)

    def build(out: Path | None) -> ECGArrays:
        buf, ok, skipped = _fill(
            out,
            paths,
            length,
            lambda p: read_record(p, rate, length),
            on_bad_record,
            "PTB-XL",
            f"no readable PTB-XL record under {root} at {rate} Hz",
        )
        sel = np.array(ok)
        return ECGArrays(
            buf,
            np.stack(db["labels"].to_numpy()[sel]),
            db.index.to_numpy()[sel],
            db["strat_fold"].to_numpy()[sel].astype(np.int64),
            skipped,
            dropped,
        )

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


def read_cinc2021(
    root: str | Path,
    rate: int = 100,
    duration_s: float = 10.0,
    on_bad_record: str = "error",
    cache_dir: str | Path | None = None,
) -> ECGArrays:
    """CinC-2021 records resampled to ``rate`` and cropped/padded to ``duration_s``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset.root {str(root)!r} is not a folder")
    labelled, dropped = _labelled_records(root, on_bad_record)
    length = int(round(rate * duration_s))
    files = [p for path, _ in labelled for p in (path.with_suffix(".hea"), path.with_suffix(".mat"))]
    key = "cinc2021_" + fingerprint([str(rate), str(length), on_bad_record], files)

    def build(out: Path | None) -> ECGArrays:
        buf, ok, skipped = _fill(
            out,
            labelled,
            length,
            lambda item: read_cinc_record(item[0], rate, length),
            on_bad_record,
            "CinC 2021",
            f"no readable CinC-2021 record under {root}",
        )
        ids = np.array([labelled[i][0].name for i in ok])
        return ECGArrays(buf, np.stack([labelled[i][1] for i in ok]), ids, None, skipped, dropped)

    return _cached(Path(cache_dir) if cache_dir else None, key, build)


def _labelled_records(root: Path, on_bad_record: str) -> tuple[list[tuple[Path, np.ndarray]], int]:
    """``(record path without suffix, labels)`` of every header under ``root`` with a mapped Dx
    code, and how many headers had none."""
    import wfdb

    heads = sorted(root.rglob("*.hea"))
    if not heads:
        raise DataError(f"no .hea records under {root}")
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
        raise DataError(
            f"none of the {len(heads)} records under {root} has a Dx code mapped to {', '.join(SUPERCLASSES)}"
        )
    return labelled, dropped


def read_cinc_record(path: Path, rate: int, length: int) -> np.ndarray:
    """One CinC-2021 record as ``[12, length]`` float32 at ``rate`` Hz (resampled, cropped or
    zero-padded); :class:`DataError` names the file."""
    import wfdb
    from scipy.signal import resample_poly

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
