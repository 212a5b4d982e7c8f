"""Option pricing data (Black–Scholes, option-chain CSV) and the HQNN twins."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hqexp.data.options import (
    FEATURES,
    OptionsDataModule,
    black_scholes,
    read_option_chain,
    synthetic_options,
)
from hqexp.errors import ConfigError
from hqexp.models import count_parameters
from hqexp.models.hqnn import HQNNAutoencoder, HQNNClassical
from hqexp.tracking.study import qc_interval, study_rows, t_interval


# ----------------------------------------------------------------- Black–Scholes
def test_textbook_prices():
    # Hull, Options, Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%, σ=20%, T=0.5
    assert black_scholes(42, 40, 0.5, 0.10, 0.20, True) == pytest.approx(4.76, abs=0.005)
    assert black_scholes(42, 40, 0.5, 0.10, 0.20, False) == pytest.approx(0.81, abs=0.005)
    # At the money, r=0: C = S(2N(σ√T/2) − 1)
    c = black_scholes(100, 100, 1.0, 0.0, 0.2, True)
    assert c == pytest.approx(100 * (2 * 0.5 * (1 + math.erf(0.1 / math.sqrt(2))) - 1), rel=1e-12)


def test_put_call_parity_over_random_contracts():
    rng = np.random.default_rng(0)
    n = 10_000
    S, K = rng.uniform(50, 150, n), rng.uniform(40, 180, n)
    T, r, v = rng.uniform(0.02, 2, n), rng.uniform(0, 0.06, n), rng.uniform(0.1, 0.6, n)
    c = black_scholes(S, K, T, r, v, np.ones(n, bool))
    p = black_scholes(S, K, T, r, v, np.zeros(n, bool))
    np.testing.assert_allclose(c - p, S - K * np.exp(-r * T), atol=1e-9)
    assert (c >= np.maximum(S - K * np.exp(-r * T), 0) - 1e-9).all()  # no-arbitrage lower bound


def test_synthetic_features_and_target_are_consistent():
    X, y = synthetic_options(2000, seed=1)
    assert X.shape == (2000, len(FEATURES)) and y.shape == (2000,)
    m, logm, T, r, v, call = X.T
    np.testing.assert_allclose(np.log(m), logm)
    # price/K recomputed from the features alone (homogeneity in S, K)
    np.testing.assert_allclose(black_scholes(m, 1.0, T, r, v, call.astype(bool)), y, rtol=1e-10, atol=1e-12)
    assert ((0.8 <= m) & (m <= 1.2)).all() and set(np.unique(call)) == {0.0, 1.0}
    noisy = synthetic_options(2000, seed=1, noise=0.05)[1]
    assert not np.allclose(noisy, y) and (noisy >= 0).all()


# ----------------------------------------------------------------- option-chain CSV
CHAIN = """date,expiry,strike,option_type,underlying_price,implied_volatility,price
2024-01-02,2024-03-15,4700,C,4742.8,0.14,152.3
2024-01-02,2024-03-15,4700,P,4742.8,0.15,96.1
2024-01-03,2024-03-15,4800,C,4704.8,0.13,78.0
2024-01-03,2024-06-21,4800,P,4704.8,0.16,210.5
2024-01-04,2024-03-15,4750,call,4688.7,0.14,82.4
2024-01-05,2024-06-21,4650,put,4697.2,0.17,160.2
2024-01-08,2024-03-15,4800,C,4763.5,0.13,101.9
2024-01-09,2024-06-21,4700,P,4756.5,0.16,144.0
"""


def test_option_chain_csv_features_and_time_split(tmp_path):
    f = tmp_path / "chain.csv"
    f.write_text(CHAIN)
    X, y, dates = read_option_chain(f, rate=0.05)
    assert X.shape == (8, len(FEATURES))
    assert X[0, 0] == pytest.approx(4742.8 / 4700) and X[0, 2] == pytest.approx(73 / 365)
    assert X[0, 3] == 0.05 and list(X[:, 5]) == [1, 0, 1, 0, 1, 0, 1, 0]
    assert y[0] == pytest.approx(152.3 / 4700)
    dm = OptionsDataModule(source="csv", path=str(f), val_fraction=0.2, test_fraction=0.25)
    dm.setup()
    sizes = dm.split_sizes()
    assert sum(sizes.values()) == 8 and all(v > 0 for v in sizes.values())
    # time order: every training quote precedes every validation quote, which precede the test quotes
    order = {s: sorted(dates[np.isin(np.arange(8), idx)]) for s, idx in dm._split_indices(8, dates).items()}
    assert order["train"][-1] < order["val"][0] and order["val"][-1] < order["test"][0]


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda t: t.replace("implied_volatility", "iv"), "missing column.*implied_volatility"),
        (lambda t: t.replace("4700,C,4742.8", "-5,C,4742.8"), r"strike <= 0 in 1 row\(s\), first at line\(s\) 2"),
        (lambda t: t.replace(",C,", ",X,", 1), "option_type not one of"),
        (lambda t: t.replace("2024-03-15,4700,P", "2023-12-01,4700,P"), "expiry on or before the quote date"),
        (lambda t: t.replace("0.14,152.3", "0.14,-1"), "negative price"),
        (lambda t: t.replace("2024-01-02,2024-03-15,4700,C", "yesterday,2024-03-15,4700,C"), "unparseable date"),
    ],
)
def test_option_chain_bad_input_is_named(tmp_path, edit, match):
    f = tmp_path / "chain.csv"
    f.write_text(edit(CHAIN))
    with pytest.raises(ConfigError, match=match):
        read_option_chain(f)


def test_options_module_subsets_are_seeded_and_test_set_is_shared():
    def split(seed, n):
        dm = OptionsDataModule(n_total=400, n_samples=n, seed=seed)
        dm.setup()
        return dm._splits

    a, b, c = split(0, 50), split(0, 50), split(1, 50)
    assert torch.equal(a["train"].tensors[1], b["train"].tensors[1])
    assert not torch.equal(a["train"].tensors[1], c["train"].tensors[1])
    assert len(a["train"]) == 50
    # same test targets regardless of the training subset's seed (scalers differ, targets in units don't)
    dm0, dm1 = (
        OptionsDataModule(n_total=400, n_samples=50, seed=0),
        OptionsDataModule(n_total=400, n_samples=50, seed=1),
    )
    dm0.setup(), dm1.setup()
    t0 = dm0._splits["test"].tensors[1] * dm0.target_std + dm0.target_mean
    t1 = dm1._splits["test"].tensors[1] * dm1.target_std + dm1.target_mean
    assert torch.allclose(t0, t1, atol=1e-6)
    with pytest.raises(ConfigError, match="exceeds the"):
        OptionsDataModule(n_total=100, n_samples=90).setup()
    with pytest.raises(ConfigError, match="dataset.source=csv needs dataset.path"):
        OptionsDataModule(source="csv")


# ----------------------------------------------------------------- the twins
def test_twins_have_matched_parameter_counts_and_shapes():
    q = {"n_qubits": 4, "n_layers": 2}
    hyb = HQNNAutoencoder(6, 1, q, {"name": "torch"})
    cla = HQNNClassical(6, 1, q)
    ch, cc = count_parameters(hyb), count_parameters(cla)
    assert ch["quantum"] == 24 and cc["quantum"] == 0
    assert abs(ch["total"] - cc["total"]) <= 6  # MatchedBlock rounds its hidden width
    x = torch.randn(5, 6)
    assert hyb(x).shape == (5, 1) and cla(x).shape == (5, 1)
    assert hyb.reconstruction_loss(x).item() > 0
    z = hyb.pre_encoder(x)
    assert (z.abs() <= math.pi).all()  # angles in the rotation range


# ----------------------------------------------------------------- study statistics
def test_t_interval_and_qc_interval():
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    qc, lo, hi = qc_interval([1.0, 1.1, 0.9], [2.0, 2.2, 1.8])
    assert qc == pytest.approx(0.5) and lo < 0.5 < hi
    qc, lo, hi = qc_interval([2.0, 2.0], [2.0, 2.0])
    assert qc == 0.0 and lo == hi == 0.0


class _Run:
    def __init__(self, model, ns, nq, rmse, status="FINISHED"):
        from types import SimpleNamespace

        self.info = SimpleNamespace(status=status)
        self.data = SimpleNamespace(
            tags={"model": model},
            params={"dataset.n_samples": str(ns), "model.quantum.n_qubits": str(nq)},
            metrics={"test/rmse": rmse, "test/mse": rmse**2, "bp/grad_var/quantum": 1e-3},
        )


def test_study_rows_group_cells_and_skip_failed_runs():
    runs = [_Run("hqnn_autoencoder", 100, 2, r) for r in (0.1, 0.12, 0.11)]
    runs += [_Run("hqnn_classical", 100, 2, r) for r in (0.2, 0.22, 0.21)]
    runs += [_Run("hqnn_classical", 100, 2, 9.9, status="FAILED"), _Run("vqc_classifier", 100, 2, 1.0)]
    (row,) = study_rows(runs)
    assert row["n_hybrid"] == 3 and row["n_classical"] == 3
    assert row["hybrid_rmse_mean"] == pytest.approx(0.11)
    assert row["qc"] == pytest.approx(1 - np.mean([0.01, 0.0144, 0.0121]) / np.mean([0.04, 0.0484, 0.0441]))
    assert row["hybrid_bp_grad_var"] == pytest.approx(1e-3)
