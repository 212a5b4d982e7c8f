"""TON_IoT (Moustafa et al., UNSW Canberra): IoT telemetry and network flows → intrusion
detection, one client per device (telemetry) or source host (network).

``dataset.root`` is the folder of the unmodified CSVs:

* ``source=telemetry``: any of the seven ``Train_Test_IoT_<Device>.csv`` (Fridge, Garage_Door,
  GPS_Tracker, Modbus, Motion_Light, Thermostat, Weather) — ``ts,date,time,<device
  columns>,label,type``; some start with a UTF-8 BOM, values may be padded with spaces,
  ``-`` marks an absent value.
* ``source=network``: ``Train_Test_Network.csv`` — 44 columns ``src_ip,src_port,…,label,type``.

Column names match case-insensitively. Tasks: ``binary`` (``label``) and ``multiclass``
(``type``: normal, backdoor, ddos, dos, injection, mitm, password, ransomware, scanning, xss —
those present). Identifier columns (``ts``, ``date``, ``time``; IPs and ports for flows) are
dropped by default (``dataset.drop_columns``). Telemetry rows of different devices share one
padded feature layout — every device's columns, named ``<device>.<column>``, zero where a row
comes from another device — plus a one-hot device indicator, so one model reads every device
and a client sees its own columns only. Categorical columns are one-hot encoded over the
``max_categories`` most frequent training values (the rest: ``other``); numeric columns are
standardised; vocabularies and scalers are fitted on the training split only.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from hqexp.data.base import fingerprint
from hqexp.data.windows import GroupedDataModule, WindowArrays, cached
from hqexp.errors import ConfigError, DataError

DEVICES = ("Fridge", "Garage_Door", "GPS_Tracker", "Modbus", "Motion_Light", "Thermostat", "Weather")
TYPES = ("normal", "backdoor", "ddos", "dos", "injection", "mitm", "password", "ransomware", "scanning", "xss")
NETWORK_FILE = "Train_Test_Network.csv"
DROP = {"telemetry": ("ts", "date", "time"), "network": ("ts", "src_ip", "src_port", "dst_ip", "dst_port")}
TASKS = ("binary", "multiclass")


def read_csv(path: Path):
    """One TON_IoT CSV as a DataFrame of stripped strings (``-`` and blanks → missing)."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    try:
        df = pd.read_csv(path, encoding="utf-8-sig", dtype=str, skipinitialspace=True, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    df = df.apply(lambda c: c.str.strip())
    return df.replace({"-": None, "": None})


class TONIoTDataModule(GroupedDataModule):
    """TON_IoT rows (see the module docstring); groups are devices or source hosts."""

    name = "ton_iot"

    def __init__(
        self,
        root: str,
        source: str = "telemetry",
        task: str = "multiclass",
        devices: list[str] | None = None,
        drop_columns: list[str] | None = None,
        max_categories: int = 20,
        device_indicator: bool = True,
        split: str = "stratified",
        **kw,
    ) -> None:
        super().__init__(split=split, **kw)
        if source not in DROP:
            raise ConfigError(f"dataset.source must be telemetry or network, got {source!r}")
        if task not in TASKS:
            raise ConfigError(f"unknown TON_IoT task {task!r}; choose one of: {', '.join(TASKS)}")
        if devices:
            bad = [d for d in devices if d.lower() not in {x.lower() for x in DEVICES}]
            if bad:
                raise ConfigError(f"unknown TON_IoT device(s) {bad}; choose from: {', '.join(DEVICES)}")
        if not isinstance(max_categories, int) or max_categories < 1:
            raise ConfigError(f"dataset.max_categories must be a positive int, got {max_categories!r}")
        self.root, self.source, self.task = Path(root), source, task
        self.devices = [d.lower() for d in devices] if devices else None
        self.drop = [c.lower() for c in (drop_columns if drop_columns is not None else DROP[source])]
        self.max_categories, self.device_indicator = max_categories, device_indicator
        self.group_kind = "device" if source == "telemetry" else "source host"

    def files(self) -> list[Path]:
        expected = (
            f"root/{NETWORK_FILE}"
            if self.source == "network"
            else ", ".join(f"Train_Test_IoT_{d}.csv" for d in DEVICES)
        )
        if not self.root.is_dir():
            raise DataError(
                f"dataset.root {str(self.root)!r} is not a folder; TON_IoT source={self.source} expects {expected}"
            )
        if self.source == "network":
            found = [p for p in self.root.iterdir() if p.name.lower() == NETWORK_FILE.lower()]
        else:
            found = sorted(p for p in self.root.iterdir() if re.fullmatch(r"train_test_iot_\w+\.csv", p.name.lower()))
            if self.devices:
                found = [p for p in found if _device(p).lower() in self.devices]
        if not found:
            raise DataError(f"no TON_IoT {self.source} file in {self.root}: expected {expected}")
        return found

    def load(self) -> WindowArrays:
        files = self.files()
        key = fingerprint(
            [
                self.source,
                self.task,
                self.drop,
                self.max_categories,
                self.device_indicator,
                self.split,
                self.val_fraction,
                self.test_fraction,
                self.seed,
            ],
            files,
        )
        return cached(self.cache_dir, f"{self.name}_{self.source}", key, lambda: self._build(files))

    def _table(self, files: list[Path]):
        import pandas as pd

        tables = []
        for path in files:
            df = read_csv(path)
            missing = [c for c in ("label", "type") if c not in df.columns]
            if missing:
                raise DataError(f"{path}: no {' / '.join(missing)} column (it has: {', '.join(df.columns)})")
            if self.source == "telemetry":
                dev = _device(path)
                feats = [c for c in df.columns if c not in ("label", "type") and c not in self.drop]
                out = df[feats].rename(columns={c: f"{dev.lower()}.{c}" for c in feats})
                out["__group"] = dev
            else:
                if "src_ip" not in df.columns:
                    raise DataError(
                        f"{path}: no src_ip column, which names the client of every flow "
                        f"(it has: {', '.join(df.columns)})"
                    )
                out = df[[c for c in df.columns if c not in ("label", "type") and c not in self.drop]].copy()
                out["__group"] = df["src_ip"]
            out["__label"], out["__type"] = df["label"], df["type"].str.lower()
            out["__t"] = pd.to_numeric(df["ts"], errors="coerce") if "ts" in df.columns else np.arange(len(df))
            tables.append(out)
        return pd.concat(tables, ignore_index=True)

    def _build(self, files: list[Path]) -> WindowArrays:
        import pandas as pd

        t0 = time.perf_counter()
        df = self._table(files)
        dropped = {}
        if self.task == "binary":
            y_raw = pd.to_numeric(df["__label"], errors="coerce")
            bad = y_raw.isna() | ~y_raw.isin([0, 1])
            classes = ("normal", "attack")
        else:
            unknown = sorted(set(df["__type"].dropna()) - set(TYPES))
            if unknown:
                raise DataError(f"unknown attack type(s) {unknown} in the type column; known: {', '.join(TYPES)}")
            present = [c for c in TYPES if c in set(df["__type"])]
            y_raw = df["__type"].map({c: i for i, c in enumerate(present)})
            bad = y_raw.isna()
            classes = tuple(present)
        if bad.any():
            dropped["unlabelled_rows"] = int(bad.sum())
            df, y_raw = df[~bad].reset_index(drop=True), y_raw[~bad].reset_index(drop=True)
        y = y_raw.to_numpy(np.int64)
        groups = df["__group"].astype(str).to_numpy()
        t = pd.to_numeric(df["__t"], errors="coerce").fillna(0).to_numpy(np.float64)
        probe = WindowArrays(np.zeros((len(y), 1), np.float32), y, groups, t, classes, ())
        train = self._parts(probe)["train"]
        features = df.drop(columns=["__group", "__label", "__type", "__t"])
        X, names = _encode(features, train, self.max_categories)
        if self.device_indicator and self.source == "telemetry":
            devs = sorted(set(groups))
            X = np.concatenate([X, (groups[:, None] == np.array(devs)[None]).astype(np.float32)], axis=1)
            names += [f"device={d}" for d in devs]
        return WindowArrays(X, y, groups, t, classes, tuple(names), [], dropped, time.perf_counter() - t0)


def _device(path: Path) -> str:
    return re.sub(r"(?i)^train_test_iot_", "", path.stem)


def _encode(features, train: np.ndarray, max_categories: int) -> tuple[np.ndarray, list[str]]:
    """Numeric columns as floats (missing → the training mean, standardised later), categorical
    ones one-hot over their most frequent training values plus ``other``."""
    import pandas as pd

    cols, names = [], []
    for c in features.columns:
        raw = features[c]
        num = pd.to_numeric(raw, errors="coerce")
        if num.notna().sum() == raw.notna().sum():  # every present value is a number
            mean = float(num.iloc[train].mean()) if num.iloc[train].notna().any() else 0.0
            cols.append(num.fillna(mean).to_numpy(np.float32)[:, None])
            names.append(c)
            continue
        vocab = raw.iloc[train].dropna().value_counts().index[:max_categories].tolist()
        onehot = np.stack(
            [(raw == v).to_numpy() for v in vocab] + [raw.notna().to_numpy() & ~raw.isin(vocab)], axis=1
        ).astype(np.float32)
        cols.append(onehot)
        names += [f"{c}={v}" for v in vocab] + [f"{c}=other"]
    if not cols:
        raise DataError("TON_IoT: no feature column left after dataset.drop_columns")
    return np.concatenate(cols, axis=1), names
