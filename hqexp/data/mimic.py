"""MIMIC-III Waveform Database Matched Subset (PhysioNet): bedside waveforms → hypotension,
one client per patient.

``dataset.root`` is the download (``p00/p000020/…`` or any folder of records, searched
recursively). A record is a WFDB multi-segment master header (``<record>.hea`` listing its
segments, gaps ``~`` and a ``<id>_layout`` header that names the signals) or a single-segment
record; ``<record>n.hea`` is its numerics record (one row a minute: ``HR``, ``NBPMean``,
``ABPMean``, … where present). Signals are 125 Hz, chosen by name (``II``, ``V``, ``PLETH``,
``ABP``, …); a record lacking one is skipped and counted.

Task ``hypotension``: a window of ``window_s`` is positive when the mean arterial pressure
(MAP) is below ``map_threshold`` (65 mmHg), ``horizon_s`` after the window's end:

* ``label_source=abp`` — MAP is the mean of the ABP waveform over the ``label_window_s``
  that starts there (ABP is then never an input);
* ``label_source=numerics`` — the ``ABPMean`` (else ``NBPMean``) reading of the numerics record
  nearest to that time, within ``max_label_gap_s``.

Physiologically implausible windows are dropped and counted (``data/dropped/<reason>``): MAP
outside ``map_range`` (20–200 mmHg), a flat input channel, input or ABP missing (``NaN``) in
more than ``max_nan_fraction`` of the window. The real sample record has long stretches of
such ABP: a run on it says how many windows it dropped, and stops with one line if none is left.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hqexp.data.base import fingerprint
from hqexp.data.windows import Collector, GroupedDataModule, WindowArrays, cached, check_windowing
from hqexp.errors import ConfigError, DataError

LABEL_SOURCES = ("abp", "numerics")
NUMERIC_MAP = ("ABPMean", "NBPMean")


def find_records(root: Path) -> list[Path]:
    """Record paths (without ``.hea``): multi-segment masters, and single records that are
    not a segment, a layout or a numerics record of another."""
    import wfdb

    heads = sorted(root.rglob("*.hea"))
    segments, masters, singles = set(), [], []
    for h in heads:
        stem = h.with_suffix("")
        if h.stem.endswith("_layout"):
            continue
        if (h.parent / (h.stem[:-1] + ".hea")).exists() and h.stem.endswith("n"):
            continue  # a numerics record
        first = h.read_text(errors="replace").split("\n", 1)[0].split()
        if first and "/" in first[0]:  # "<name>/<n_segments>": a multi-segment master
            masters.append(stem)
            try:
                segments |= {h.parent / s for s in wfdb.rdheader(str(stem)).seg_name if s != "~"}
            except Exception:
                pass  # an unreadable master is reported when it is read
        else:
            singles.append(stem)
    return masters + [s for s in singles if s not in segments]


def patient_of(record: Path) -> str:
    """The patient id: the ``p<digits>`` folder of the Matched Subset, else the record name up to '-'."""
    if re.fullmatch(r"p\d{6}", record.parent.name):
        return record.parent.name
    return record.name.split("-")[0]


def signal_names(record: Path) -> list[str]:
    """Signal names of a record (from the layout header of a multi-segment record)."""
    import wfdb

    h = wfdb.rdheader(str(record))
    names = getattr(h, "sig_name", None)
    if names is None:  # multi-segment: the layout segment names them
        layout = next((s for s in h.seg_name if s.endswith("_layout")), None)
        if layout is None:
            names = sorted(
                {n for s in h.seg_name if s != "~" for n in (wfdb.rdheader(str(record.parent / s)).sig_name or [])}
            )
        else:
            names = wfdb.rdheader(str(record.parent / layout)).sig_name or []
    return list(names)


def _interp_nans(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    for c in range(out.shape[0]):
        nan = np.isnan(out[c])
        if nan.any() and not nan.all():
            idx = np.arange(out.shape[1])
            out[c, nan] = np.interp(idx[nan], idx[~nan], out[c, ~nan])
    return np.nan_to_num(out)


class MIMIC3WDBDataModule(GroupedDataModule):
    """Windows of MIMIC-III waveform records, one group per patient (see the module docstring)."""

    name = "mimic3wdb"
    group_kind = "patient"

    def __init__(
        self,
        root: str,
        signals: list[str] | tuple[str, ...] = ("II", "PLETH"),
        task: str = "hypotension",
        label_source: str = "abp",
        window_s: float = 30.0,
        stride_s: float = 15.0,
        horizon_s: float = 0.0,
        label_window_s: float | None = None,
        map_threshold: float = 65.0,
        map_range: list[float] | tuple[float, float] = (20.0, 200.0),
        max_nan_fraction: float = 0.1,
        flat_std: float = 1e-3,
        max_label_gap_s: float = 300.0,
        **kw,
    ) -> None:
        super().__init__(**kw)
        if task != "hypotension":
            raise ConfigError(f"unknown MIMIC-III task {task!r}; the one task is hypotension")
        if label_source not in LABEL_SOURCES:
            raise ConfigError(f"dataset.label_source must be one of {', '.join(LABEL_SOURCES)}, got {label_source!r}")
        if label_source == "abp" and "ABP" in signals:
            raise ConfigError(
                "ABP is the label source (dataset.label_source=abp): remove it from dataset.signals, "
                "or use dataset.label_source=numerics"
            )
        if not signals:
            raise ConfigError("dataset.signals must name at least one waveform (e.g. [II, PLETH])")
        check_windowing(window_s, stride_s)
        if horizon_s < 0:
            raise ConfigError(f"dataset.horizon_s must be >= 0, got {horizon_s}")
        lo, hi = map_range
        if not 0 <= lo < map_threshold < hi:
            raise ConfigError(f"dataset.map_range must bracket map_threshold={map_threshold}, got {list(map_range)}")
        self.root, self.signals, self.label_source = Path(root), list(signals), label_source
        self.window_s, self.stride_s, self.horizon_s = float(window_s), float(stride_s), float(horizon_s)
        self.label_window_s = float(label_window_s or window_s)
        self.map_threshold, self.map_range = float(map_threshold), (float(lo), float(hi))
        self.max_nan_fraction, self.flat_std, self.max_label_gap_s = max_nan_fraction, flat_std, max_label_gap_s

    def records(self) -> list[Path]:
        if not self.root.is_dir():
            raise DataError(
                f"dataset.root {str(self.root)!r} is not a folder; MIMIC-III waveforms are expected as "
                "root/p00/p000020/p000020-….hea (+ segments, _layout, …n.hea numerics) or any folder "
                "of WFDB records"
            )
        found = find_records(self.root)
        if not found:
            raise DataError(
                f"no WFDB record under {self.root}: expected <record>.hea master headers with their "
                "segments (e.g. p000020-2183-04-28-17-47.hea)"
            )
        return found

    def load(self) -> WindowArrays:
        recs = self.records()
        files = {p for r in recs for p in r.parent.iterdir() if p.is_file()}  # segments, layout, numerics
        key = fingerprint(
            [
                self.signals,
                self.label_source,
                self.window_s,
                self.stride_s,
                self.horizon_s,
                self.label_window_s,
                self.map_threshold,
                self.map_range,
                self.max_nan_fraction,
                self.flat_std,
                self.max_label_gap_s,
                self.on_bad_record,
            ],
            sorted(files),
        )
        return cached(self.cache_dir, self.name, key, lambda: self._build(recs))

    def _build(self, recs: list[Path]) -> WindowArrays:
        found, fs_seen = Collector(self.on_bad_record), set()
        for rec in recs:
            try:
                X, y, t, fs = self._record(rec, found.dropped)
            except DataError as exc:
                if str(exc).startswith("missing signal"):
                    found.skipped.append(f"{rec}: {exc}")
                    found.dropped["records_missing_signal"] = found.dropped.get("records_missing_signal", 0) + 1
                    continue
                found.bad(f"{rec}: {exc}")
                continue
            fs_seen.add(fs)
            if len(fs_seen) > 1:
                raise DataError(f"{rec}: sampling rate {fs} Hz differs from the other records ({sorted(fs_seen)})")
            found.add(X, y, patient_of(rec), t)
        width = int(round(self.window_s * next(iter(fs_seen), 125)))
        return found.arrays(len(self.signals), width, ("normotensive", "hypotensive"), self.signals)

    def _record(self, rec: Path, dropped: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Windows ``[W, C, T]``, labels, window start times (s) and the sampling rate of one record;
        ``dropped`` counts the windows left out, by reason."""
        need = self.signals + (["ABP"] if self.label_source == "abp" else [])
        sig, fs, wave = _read_channels(rec, need)
        w, s = int(round(self.window_s * fs)), int(round(self.stride_s * fs))
        n = sig.shape[1]
        last = (
            n
            - w
            - (
                int(round(self.horizon_s * fs)) + int(round(self.label_window_s * fs))
                if self.label_source == "abp"
                else 0
            )
        )
        if last < 0:
            raise DataError(
                f"the record ({n / fs:.0f} s) is shorter than dataset.window_s={self.window_s}"
                + (" + horizon_s + label_window_s" if self.label_source == "abp" else "")
            )
        numerics = self._numerics(rec, wave) if self.label_source == "numerics" else None
        C = len(self.signals)
        X, y, t = [], [], []
        for start in range(0, last + 1, s):
            x = sig[:C, start : start + w]
            mean_ap, reason = None, self._input_problem(x)
            if reason is None:
                mean_ap, reason = self._window_map(sig, start, w, fs, numerics)
            if reason is None and not self.map_range[0] <= mean_ap <= self.map_range[1]:
                reason = "implausible_map"
            if reason is not None:
                dropped[reason] = dropped.get(reason, 0) + 1
                continue
            X.append(_interp_nans(x))
            y.append(int(mean_ap < self.map_threshold))
            t.append(start / fs)
        return (np.stack(X) if X else np.zeros((0, C, w), np.float32), np.array(y, np.int64), np.array(t), fs)

    def _input_problem(self, x: np.ndarray) -> str | None:
        """Why an input window is left out (too many gaps, a flat channel), or None."""
        if np.isnan(x).mean() > self.max_nan_fraction:
            return "input_missing"
        if (np.nanstd(x, axis=1) < self.flat_std).any():
            return "flat_input"
        return None

    def _window_map(self, sig: np.ndarray, start: int, w: int, fs: float, numerics) -> tuple[float | None, str | None]:
        """The label's mean arterial pressure for the window at ``start``, or ``(None, why not)``."""
        if self.label_source != "abp":
            mean_ap = self._nearest(numerics, (start + w) / fs + self.horizon_s)
            return (None, "no_map_reading") if mean_ap is None else (mean_ap, None)
        hz, lw = int(round(self.horizon_s * fs)), int(round(self.label_window_s * fs))
        abp = sig[len(self.signals), start + w + hz : start + w + hz + lw]
        if np.isnan(abp).mean() > self.max_nan_fraction:
            return None, "abp_missing"
        if np.nanstd(abp) < self.flat_std:
            return None, "flat_abp"
        return float(np.nanmean(abp)), None

    def _numerics(self, rec: Path, wave) -> tuple[np.ndarray, np.ndarray]:
        """``(seconds from the waveform start, MAP)`` of the numerics record (ABPMean, else NBPMean)."""
        import wfdb

        path = rec.parent / (rec.name + "n")
        if not path.with_suffix(".hea").exists():
            raise DataError(f"label_source=numerics but the numerics record {path}.hea is missing")
        try:
            num = wfdb.rdrecord(str(path))
        except Exception as exc:
            raise DataError(f"unreadable numerics record {path}: {type(exc).__name__}: {exc}") from None
        cols = [num.sig_name.index(c) for c in NUMERIC_MAP if c in num.sig_name]
        if not cols:
            raise DataError(
                f"numerics record {path} has no {' or '.join(NUMERIC_MAP)} (it has {', '.join(num.sig_name)})"
            )
        vals = num.p_signal[:, cols]
        best = vals[:, 0].copy()
        for j in range(1, vals.shape[1]):  # ABPMean first; NBPMean where the arterial line is absent
            best = np.where(np.isnan(best), vals[:, j], best)
        offset = 0.0
        if num.base_datetime is not None and wave.base_datetime is not None:
            offset = (num.base_datetime - wave.base_datetime).total_seconds()
        times = offset + np.arange(len(best)) / float(num.fs)
        keep = ~np.isnan(best)
        return times[keep], best[keep]

    def _nearest(self, numerics: tuple[np.ndarray, np.ndarray], when: float) -> float | None:
        times, values = numerics
        if not len(times):
            return None
        i = int(np.argmin(np.abs(times - when)))
        return float(values[i]) if abs(times[i] - when) <= self.max_label_gap_s else None


def _read_channels(rec: Path, need: list[str]):
    """The ``need`` channels of a WFDB record as ``[C, N]`` float32 (NaN in gaps, in ``need``'s
    order), its sampling rate and the wfdb record; :class:`DataError` on a missing channel."""
    import wfdb

    try:
        have = signal_names(rec)
    except Exception as exc:
        raise DataError(f"unreadable header: {type(exc).__name__}: {exc}") from None
    missing = [s for s in need if s not in have]
    if missing:
        raise DataError(f"missing signal(s) {', '.join(missing)} (the record has {', '.join(have) or 'none'})")
    try:
        r = wfdb.rdrecord(str(rec), channel_names=need, return_res=32)
    except Exception as exc:
        raise DataError(f"unreadable record: {type(exc).__name__}: {exc}") from None
    sig = np.asarray(r.p_signal, dtype=np.float32).T
    return sig[[r.sig_name.index(s) for s in need]], float(r.fs), r
