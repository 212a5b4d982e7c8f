"""European option pricing as a regression task (``dataset=options``).

Both sources produce the same features and target, so a model trained on the
synthetic set can be pointed at a real chain:

========================  ==============================================================
feature                   meaning
========================  ==============================================================
``moneyness``             S / K (spot over strike)
``log_moneyness``         ln(S / K)
``time_to_expiry``        T in years (calendar days / 365)
``rate``                  risk-free rate r (continuous, annual)
``volatility``            σ (annual; the implied volatility for a real chain)
``is_call``               1 for a call, 0 for a put
========================  ==============================================================

Target: ``price / K`` — the option price in units of its strike. Black–Scholes prices
are homogeneous of degree one in (S, K), so this scale-free target lets one model
cover every strike level.

* ``source=synthetic``: S ~ U[50, 150], S/K ~ U[0.8, 1.2], T ~ U[1 week, 2 years],
  r ~ U[0, 6%], σ ~ U[10%, 60%], calls and puts half each, priced exactly by
  Black–Scholes, plus optional Gaussian noise of ``noise`` × price. Always called
  synthetic: it is a known formula, not a market.
* ``source=csv``: an option-chain export with columns ``date, expiry, strike,
  option_type, underlying_price, implied_volatility, price`` (``rate`` optional,
  else ``dataset.rate``). Split in time order: the earliest dates train, the latest
  test; no date is in two splits.

Splits are fixed by ``data_seed`` (synthetic) or by time (csv); ``n_samples`` then
draws a training subset reproducibly from the run's ``seed``, so runs with different
sizes and seeds are scored on the same test set. Scalers are fitted on the training
subset only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from hqexp.data.base import DataInfo, SplitDataModule, read_table
from hqexp.errors import ConfigError

FEATURES = ("moneyness", "log_moneyness", "time_to_expiry", "rate", "volatility", "is_call")
TARGET = "price_over_strike"
CSV_COLUMNS = ("date", "expiry", "strike", "option_type", "underlying_price", "implied_volatility", "price")
SOURCES = ("synthetic", "csv")


def _ndtr(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def black_scholes(spot, strike, maturity, rate, vol, is_call) -> np.ndarray:
    """Black–Scholes price of European options (no dividends); arrays broadcast."""
    S, K, T, r, v = (np.asarray(a, dtype=np.float64) for a in (spot, strike, maturity, rate, vol))
    call = np.asarray(is_call, dtype=bool)
    sq = v * np.sqrt(T)
    d1 = (np.log(S / K) + (r + 0.5 * v * v) * T) / sq
    d2 = d1 - sq
    disc = K * np.exp(-r * T)
    c = S * _ndtr(d1) - disc * _ndtr(d2)
    p = disc * _ndtr(-d2) - S * _ndtr(-d1)
    return np.where(call, c, p)


def synthetic_options(n: int, seed: int = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic European options: features ``[n, 6]`` (see ``FEATURES``) and target ``[n]``."""
    rng = np.random.default_rng(seed)
    S = rng.uniform(50.0, 150.0, n)
    m = rng.uniform(0.8, 1.2, n)
    K = S / m
    T = rng.uniform(7 / 365, 2.0, n)
    r = rng.uniform(0.0, 0.06, n)
    v = rng.uniform(0.10, 0.60, n)
    call = rng.random(n) < 0.5
    price = black_scholes(S, K, T, r, v, call)
    if noise > 0:
        price = np.maximum(price * (1.0 + noise * rng.standard_normal(n)), 0.0)
    return _features(S, K, T, r, v, call), price / K


def _features(S, K, T, r, v, call) -> np.ndarray:
    return np.stack([S / K, np.log(S / K), T, r, v, call.astype(float)], axis=1)


def read_option_chain(path: str | Path, rate: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, target and quote dates (``datetime64[D]``) from an option-chain CSV."""
    import pandas as pd

    df = read_table(path, "dataset.path")
    path = Path(path)
    df.columns = [c.strip().lower() for c in df.columns]
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(
            f"{path.name}: missing column(s) {', '.join(missing)}; "
            f"an option chain needs {', '.join(CSV_COLUMNS)} (and optionally rate)"
        )
    if df.empty:
        raise ConfigError(f"{path.name}: no rows")

    def bad(mask, what: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            rows = (np.flatnonzero(mask)[:5] + 2).tolist()  # +2: header line, 1-based
            raise ConfigError(
                f"{path.name}: {what} in {int(mask.sum())} row(s), first at line(s) {', '.join(map(str, rows))}"
            )

    date = pd.to_datetime(df["date"], errors="coerce", format="mixed")
    expiry = pd.to_datetime(df["expiry"], errors="coerce", format="mixed")
    bad(date.isna(), "unparseable date")
    bad(expiry.isna(), "unparseable expiry")
    num = {
        c: pd.to_numeric(df[c], errors="coerce") for c in ("strike", "underlying_price", "implied_volatility", "price")
    }
    for c, s in num.items():
        bad(s.isna(), f"non-numeric {c}")
    kind = (
        df["option_type"].astype(str).str.strip().str.lower().map({"c": True, "call": True, "p": False, "put": False})
    )
    bad(kind.isna(), "option_type not one of C, P, call, put")
    bad(num["strike"] <= 0, "strike <= 0")
    bad(num["underlying_price"] <= 0, "underlying_price <= 0")
    bad((num["implied_volatility"] <= 0) | (num["implied_volatility"] > 5), "implied_volatility outside (0, 5]")
    bad(num["price"] < 0, "negative price")
    days = (expiry - date).dt.days
    bad(days <= 0, "expiry on or before the quote date")
    r = (
        pd.to_numeric(df["rate"], errors="coerce").fillna(rate)
        if "rate" in df.columns
        else pd.Series(rate, index=df.index)
    )
    S, K = num["underlying_price"].to_numpy(float), num["strike"].to_numpy(float)
    X = _features(
        S,
        K,
        days.to_numpy(float) / 365.0,
        r.to_numpy(float),
        num["implied_volatility"].to_numpy(float),
        kind.to_numpy(bool),
    )
    return X, num["price"].to_numpy(float) / K, date.to_numpy().astype("datetime64[D]")


class OptionsDataModule(SplitDataModule):
    """Option prices as a regression LightningDataModule (see the module docstring)."""

    def __init__(
        self,
        source: str = "synthetic",
        path: str | None = None,
        n_total: int = 6000,
        n_samples: int | None = None,
        noise: float = 0.0,
        rate: float = 0.0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        batch_size: int = 32,
        data_seed: int = 0,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ConfigError(f"unknown dataset.source {source!r}; choose one of: {', '.join(SOURCES)}")
        if source == "csv" and not path:
            raise ConfigError("dataset.source=csv needs dataset.path=FILE.csv")
        for key, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 < frac < 1:
                raise ConfigError(f"dataset.{key} must be in (0, 1), got {frac}")
        if val_fraction + test_fraction >= 0.9:
            raise ConfigError("dataset.val_fraction + dataset.test_fraction must leave >= 10% for training")
        if n_samples is not None and (not isinstance(n_samples, int) or n_samples < 2):
            raise ConfigError(f"dataset.n_samples must be an int >= 2 or null (all), got {n_samples!r}")
        if not isinstance(n_total, int) or n_total < 20:
            raise ConfigError(f"dataset.n_total must be an int >= 20, got {n_total!r}")
        if noise < 0:
            raise ConfigError(f"dataset.noise must be >= 0, got {noise}")
        self.source, self.path, self.n_total, self.n_samples = source, path, n_total, n_samples
        self.noise, self.rate, self.data_seed, self.seed = noise, rate, data_seed, seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.batch_size, self.num_workers = batch_size, num_workers
        self._splits: dict[str, TensorDataset] = {}
        self.info: DataInfo | None = None
        self.target_mean, self.target_std = 0.0, 1.0

    def _split_indices(self, n: int, dates: np.ndarray | None) -> dict[str, np.ndarray]:
        if dates is None:
            perm = np.random.default_rng(self.data_seed).permutation(n)
            n_te, n_va = int(round(n * self.test_fraction)), int(round(n * self.val_fraction))
            return {"test": perm[:n_te], "val": perm[n_te : n_te + n_va], "train": perm[n_te + n_va :]}
        # Time order: whole dates go to one split, earliest to train, latest to test.
        days = np.unique(dates)
        if len(days) < 3:
            raise ConfigError(f"a time-ordered split needs quotes on >= 3 dates, found {len(days)}")
        cum = np.searchsorted(np.sort(dates), days, side="right") / n  # fraction of rows up to each date
        tr_end = days[max(0, np.searchsorted(cum, 1 - self.val_fraction - self.test_fraction))]
        va_end = days[max(0, np.searchsorted(cum, 1 - self.test_fraction))]
        if va_end <= tr_end:
            va_end = days[min(len(days) - 2, np.searchsorted(days, tr_end) + 1)]
        idx = np.arange(n)
        return {
            "train": idx[dates <= tr_end],
            "val": idx[(dates > tr_end) & (dates <= va_end)],
            "test": idx[dates > va_end],
        }

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        from sklearn.preprocessing import StandardScaler

        if self.source == "synthetic":
            X, y = synthetic_options(self.n_total, self.data_seed, self.noise)
            dates = None
        else:
            X, y, dates = read_option_chain(self.path, self.rate)
        parts = self._split_indices(len(y), dates)
        for name, idx in parts.items():
            if len(idx) == 0:
                raise ConfigError(f"the {name} split is empty; give more rows or change the fractions")
        train = parts["train"]
        if self.n_samples is not None:
            if self.n_samples > len(train):
                raise ConfigError(f"dataset.n_samples={self.n_samples} exceeds the {len(train)} training rows")
            # The subset depends on the run's seed; val/test do not, so runs compare on the same test set.
            train = np.sort(np.random.default_rng(self.seed).choice(train, self.n_samples, replace=False))
            parts["train"] = train
        scaler = StandardScaler().fit(X[train])
        self.target_mean, self.target_std = float(y[train].mean()), float(y[train].std() or 1.0)
        for name, idx in parts.items():
            xs = torch.from_numpy(scaler.transform(X[idx]).astype(np.float32))
            ys = torch.from_numpy(((y[idx] - self.target_mean) / self.target_std).astype(np.float32)).unsqueeze(-1)
            self._splits[name] = TensorDataset(xs, ys)
        self.info = DataInfo(len(FEATURES), 1, (TARGET,), task="regression")

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self._splits.items()}
