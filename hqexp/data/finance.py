"""Price series → next-period direction: ``finance`` (a CSV) and ``finance_synthetic``.

CSV columns (header, case-insensitive): ``date, open, high, low, close, volume``, one row
per period, dates strictly increasing. Features per period t, from data up to t only:
the return r_t = close_t/close_{t−1} − 1, close/MA10 − 1, close/MA50 − 1, volatility
(std of the last 20 returns), RSI(14) (Wilder) scaled to [0, 1], MACD (EMA12 − EMA26)
and its signal line (EMA9), both divided by close. Target: 1 if close_{t+1} > close_t.

The split is in time order — train, then validation, then test — never shuffled
across time; standardisation is fitted on the training part only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from hqexp.data.base import DataInfo, SplitDataModule, read_table
from hqexp.errors import ConfigError, DataError

COLUMNS = ("date", "open", "high", "low", "close", "volume")
FEATURES = ("return", "ma10_gap", "ma50_gap", "volatility20", "rsi14", "macd", "macd_signal")
CLASSES = ("down", "up")
WARMUP = 50  # periods before every feature is defined (MA50)


def read_prices(path: str | Path):
    """The price CSV as a DataFrame, checked: columns, numbers, positive prices, sorted dates."""
    import pandas as pd

    df = read_table(path, "price CSV")
    path = Path(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; a price CSV needs {', '.join(COLUMNS)}")
    try:
        dates = pd.to_datetime(df["date"])
    except Exception as exc:
        raise DataError(f"{path}: unreadable date: {exc}") from None
    bad = np.flatnonzero(np.diff(dates.values.astype("datetime64[ns]").astype(np.int64)) <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        raise DataError(
            f"{path}: dates must be strictly increasing; row {i + 2} ({df['date'].iloc[i]}) does not "
            f"come after row {i + 1} ({df['date'].iloc[i - 1]}); sort the file by date"
        )
    num = df[list(COLUMNS[1:])].apply(pd.to_numeric, errors="coerce")
    if num.isna().any().any():
        col = num.columns[num.isna().any()].tolist()[0]
        raise DataError(
            f"{path}: non-numeric or empty values in column {col!r} (row {int(num[col].isna().idxmax()) + 2})"
        )
    if (num[["open", "high", "low", "close"]] <= 0).any().any():
        raise DataError(f"{path}: prices must be positive")
    if len(df) < WARMUP + 30:
        raise DataError(f"{path}: {len(df)} rows; need at least {WARMUP + 30} (MA50 warm-up plus data to split)")
    num.insert(0, "date", dates)
    return num


def _ema(x: np.ndarray, span: int) -> np.ndarray:
    a, out = 2 / (span + 1), np.empty_like(x)
    out[0] = x[0]
    for i in range(1, len(x)):
        out[i] = a * x[i] + (1 - a) * out[i - 1]
    return out


def features(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X[T', 7], y[T'])`` for the periods with every feature and a next period."""
    import pandas as pd

    c = pd.Series(close.astype(np.float64))
    r = c.pct_change()
    delta = c.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = gain / (gain + loss).replace(0, np.nan)
    macd = _ema(close, 12) - _ema(close, 26)
    signal = _ema(macd, 9)
    X = np.column_stack(
        [
            r,
            c / c.rolling(10).mean() - 1,
            c / c.rolling(50).mean() - 1,
            r.rolling(20).std(),
            rsi.fillna(0.5),
            macd / close,
            signal / close,
        ]
    )
    y = (np.roll(close, -1) > close).astype(np.int64)
    keep = np.arange(WARMUP, len(close) - 1)  # the last period has no next one
    return X[keep].astype(np.float32), y[keep]


def finance_synthetic(n: int = 3000, seed: int = 0) -> np.ndarray:
    """A SYNTHETIC regime-switching close-price series (not a market).

    A two-state Markov chain (persistence 0.98) switches between a calm trending regime
    (drift +0.06 %, vol 0.8 %, return autocorrelation +0.15) and a volatile one (drift
    −0.05 %, vol 2 %, autocorrelation −0.1), so direction is weakly predictable.
    """
    rng = np.random.default_rng(seed)
    mu, sigma, phi = (6e-4, -5e-4), (0.008, 0.02), (0.15, -0.1)
    state, prev, r = 0, 0.0, np.empty(n)
    for t in range(n):
        if rng.random() > 0.98:
            state = 1 - state
        prev = mu[state] + phi[state] * prev + sigma[state] * rng.standard_normal()
        r[t] = prev
    return 100 * np.exp(np.cumsum(r))


class FinanceDataModule(SplitDataModule):
    """Next-period direction from a price series, split in time order."""

    REFUSALS = {
        "cv": "k-fold CV shuffles across time; finance datasets use their time-ordered split (set cv.folds=1)",
        "imbalance": "imbalance.method is for the shuffled tabular sets; finance keeps time order",
    }

    def __init__(
        self,
        source: str = "synthetic",
        path: str | None = None,
        n_periods: int = 3000,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        data_seed: int = 0,
    ) -> None:
        super().__init__()
        if source not in ("synthetic", "csv"):
            raise ConfigError(f"dataset.source must be synthetic or csv, got {source!r}")
        if source == "csv" and not path:
            raise ConfigError("dataset.source=csv needs dataset.path=FILE.csv")
        for key, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 < frac < 0.5:
                raise ConfigError(f"dataset.{key} must be in (0, 0.5), got {frac}")
        self.source, self.path, self.n_periods = source, path, n_periods
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.batch_size, self.num_workers, self.seed, self.data_seed = batch_size, num_workers, seed, data_seed
        self._splits: dict[str, TensorDataset] = {}
        self.info: DataInfo | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        from sklearn.preprocessing import StandardScaler

        close = (
            read_prices(self.path)["close"].to_numpy()
            if self.source == "csv"
            else finance_synthetic(self.n_periods, self.data_seed)
        )
        X, y = features(close)
        n = len(y)
        n_te, n_va = max(1, int(n * self.test_fraction)), max(1, int(n * self.val_fraction))
        cut = {"train": slice(0, n - n_va - n_te), "val": slice(n - n_va - n_te, n - n_te), "test": slice(n - n_te, n)}
        scaler = StandardScaler().fit(X[cut["train"]])  # training periods only
        for name, sl in cut.items():
            self._splits[name] = TensorDataset(
                torch.from_numpy(scaler.transform(X[sl]).astype(np.float32)), torch.from_numpy(y[sl])
            )
        self.info = DataInfo(len(FEATURES), 2, CLASSES)
