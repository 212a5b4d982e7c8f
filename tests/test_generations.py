"""The G-0 … G-10 family: model parts, k-fold / SMOTE / PCA data handling, finance data,
backend retries, INT8, the one-line API. CLI runs are in test_cli.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hqexp.data.base import require
from hqexp.data.finance import FinanceDataModule, features, read_prices
from hqexp.data.tabular import TabularDataModule
from hqexp.errors import ConfigError, DataError
from hqexp.models import count_parameters
from hqexp.models.generations import GenerationNet, LoRALinear, Threshold, merge_lora
from hqexp.quantum import Ansatz, QuantumLayer

Q = {"n_qubits": 4, "n_layers": 2, "template": "hardware_efficient", "embedding": "angle_y"}
TORCH = {"name": "torch", "fallback": [], "options": {}}


def test_hard_threshold_zeroes_small_activations_and_reports_sparsity():
    th = Threshold("hard", tau=0.5)
    out = th(torch.tensor([[-1.0, -0.2, 0.1, 0.7]]))
    assert torch.allclose(out, torch.tensor([[-1.0, 0.0, 0.0, 0.7]])) and th.last_sparsity == pytest.approx(0.5)


def test_soft_threshold_learns_tau_and_temperature():
    th = Threshold("soft", tau=0.3, temperature=0.1)
    x = torch.randn(64, 8, requires_grad=True)
    th(x).pow(2).sum().backward()
    assert th.tau.grad is not None and th.tau.grad.abs() > 0 and th.log_temperature.grad.abs() > 0
    assert 0 < th.last_sparsity < 1


def test_lora_starts_at_the_base_layer_freezes_it_and_merges_exactly():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 3)
    lora = LoRALinear(base, rank=2, alpha=4.0)
    x = torch.randn(5, 6)
    assert torch.allclose(lora(x), base(x))  # B = 0 at init
    with torch.no_grad():
        lora.B.normal_()
    assert not base.weight.requires_grad and lora.A.requires_grad
    assert torch.allclose(lora.merged()(x), lora(x), atol=1e-6)


def test_generation_net_variants_and_matched_twin():
    hybrid = GenerationNet(30, 2, quantum=Q, backend=TORCH, lora={"rank": 2, "alpha": 4})
    twin = GenerationNet(30, 2, quantum=Q, backend=TORCH, twin=True)
    g0 = GenerationNet(30, 2, quantum=None, n_qubits=4)
    x = torch.randn(7, 30)
    for m in (hybrid, twin, g0):
        assert m(x).shape == (7, 2)
    c = count_parameters(hybrid)
    assert c["quantum"] == Ansatz.from_config(Q).n_weights and c["trainable"] < c["total"]  # LoRA froze bases
    q_params, matched = c["quantum"], sum(p.numel() for p in twin.classical.parameters())
    assert abs(matched - q_params) <= 4 + 1 + 4  # within one hidden unit of the circuit's count
    assert "sparsity/activations" in hybrid.extra_metrics()
    merged = merge_lora(hybrid)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())


def test_kfold_test_sets_partition_the_data_and_are_stratified():
    seen = []
    for fold in range(5):
        dm = TabularDataModule("breast_cancer", cv_folds=5, fold=fold, seed=3)
        dm.setup()
        seen.append(len(dm._splits["test"]))
        ys = dm._splits["test"].tensors[1]
        assert abs(ys.float().mean() - 357 / 569) < 0.03
    assert sum(seen) == 569


def test_smote_is_fitted_on_the_training_split_only():
    plain = TabularDataModule("breast_cancer", seed=0)
    plain.setup()
    dm = TabularDataModule("breast_cancer", seed=0, imbalance="smote", smote_k=5)
    dm.setup()
    y_tr = dm._splits["train"].tensors[1]
    assert (y_tr == 0).sum() == (y_tr == 1).sum() > (plain._splits["train"].tensors[1] == 0).sum()
    for split in ("val", "test"):  # untouched
        assert torch.equal(dm._splits[split].tensors[0], plain._splits[split].tensors[0])
    cw = TabularDataModule("breast_cancer", seed=0, imbalance="class_weights")
    cw.setup()
    assert cw.class_weights[0] > 1 > cw.class_weights[1]


@pytest.mark.parametrize(
    "kw,match",
    [
        (
            dict(name="iris", binary="versicolor_virginica", cv_folds=60, fold=0),
            "cv.folds=60 is larger than the smallest",
        ),
        (dict(name="iris", binary="versicolor_virginica", imbalance="smote", smote_k=40), "SMOTE with k_neighbors=40"),
        (dict(name="iris", cv_folds=5, fold=5), "cv.fold must be in 0..4"),
        (dict(name="iris", imbalance="oversample"), "imbalance.method must be one of"),
    ],
)
def test_bad_cv_and_imbalance_settings_are_clear(kw, match):
    with pytest.raises(ConfigError, match=match):
        TabularDataModule(**kw).setup()


def test_genomics_synthetic_is_reduced_by_pca_fitted_on_training_data():
    dm = TabularDataModule("genomics_synthetic", pca_components=4, seed=1)
    dm.setup()
    X = dm._splits["train"].tensors[0]
    assert dm.info.n_features == 4 and X.shape[1] == 4
    assert torch.allclose(X.mean(0), torch.zeros(4), atol=1e-4)  # standardised on train
    assert not torch.allclose(dm._splits["test"].tensors[0].mean(0), torch.zeros(4), atol=1e-4)


def _prices(path, n=120, shuffle=False):
    import pandas as pd

    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n)))
    df = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1000,
        }
    )
    if shuffle:
        df = df.iloc[[0, 2, 1, *range(3, n)]]
    df.to_csv(path, index=False)
    return close


def test_finance_csv_features_use_no_future_and_split_in_time_order(tmp_path):
    close = _prices(tmp_path / "p.csv")
    X, y = features(close)
    X2, _ = features(np.concatenate([close[:80], close[80:] * 3]))  # the future changes …
    assert np.allclose(X[: 80 - 50], X2[: 80 - 50])  # … features up to period 79 do not
    assert y[0] == int(close[51] > close[50])
    dm = FinanceDataModule(source="csv", path=str(tmp_path / "p.csv"), val_fraction=0.2, test_fraction=0.2)
    dm.setup()
    n = len(y)
    assert [len(dm._splits[s]) for s in ("train", "val", "test")] == [n - 2 * int(n * 0.2), int(n * 0.2), int(n * 0.2)]
    assert torch.equal(dm._splits["test"].tensors[1], torch.from_numpy(y[-int(n * 0.2) :]))  # the last periods


def test_finance_csv_errors_are_clear(tmp_path):
    _prices(tmp_path / "unsorted.csv", shuffle=True)
    with pytest.raises(DataError, match="dates must be strictly increasing; row 4 \\(2020-01-02\\)"):
        read_prices(tmp_path / "unsorted.csv")
    (tmp_path / "cols.csv").write_text("date,close\n2020-01-01,1\n")
    with pytest.raises(DataError, match="missing column\\(s\\) open, high, low, volume"):
        read_prices(tmp_path / "cols.csv")
    with pytest.raises(ConfigError, match="k-fold CV shuffles across time"):
        require(FinanceDataModule, "cv", "finance")


def test_finance_synthetic_is_balanced_enough_and_reproducible():
    a, b = FinanceDataModule(data_seed=4), FinanceDataModule(data_seed=4)
    a.setup(), b.setup()
    assert torch.equal(a._splits["train"].tensors[0], b._splits["train"].tensors[0])
    assert 0.4 < a._splits["train"].tensors[1].float().mean() < 0.6


def test_slow_backend_is_left_after_retries_and_results_agree():
    a = Ansatz.from_config(Q)
    layer = QuantumLayer(a, backend="torch", fallback=["default_qubit"], retries=1, step_timeout_s=1e-9)
    x = torch.rand(3, 4)
    outs = [layer(x) for _ in range(3)]
    assert layer.backend_used == "default_qubit" and layer.steps == {"torch": 2, "default_qubit": 1}
    assert len(layer.events) == 1 and "step_timeout_s" in layer.events[0]
    assert torch.allclose(outs[0], outs[2], atol=1e-5)


def test_every_model_takes_retries_and_timeout_from_the_backend_config():
    from hqexp.models.vqc import VQCClassifier

    cfg = {"name": "torch", "fallback": ["default_qubit"], "options": {}, "retries": 2, "step_timeout_s": 5.0}
    for m in (VQCClassifier(30, 2, quantum=Q, backend=cfg), GenerationNet(30, 2, quantum=Q, backend=cfg)):
        assert (m.quantum.retries, m.quantum.step_timeout_s, m.quantum._remaining) == (2, 5.0, ["default_qubit"])
    plain = QuantumLayer.from_config(Q, {"name": "torch"})  # checkpoints from before these keys existed
    assert (plain.retries, plain.step_timeout_s) == (0, None)


def test_failing_backend_is_retried_then_replaced():
    layer = QuantumLayer(Ansatz.from_config(Q), backend="torch", fallback=["default_qubit"], retries=2)
    real, calls = layer.backend.execute, {"n": 0}

    def flaky(*args):  # a backend whose driver errors out on every call
        calls["n"] += 1
        raise RuntimeError("device lost")

    layer.backend.execute = flaky
    out = layer(torch.rand(2, 4))
    assert calls["n"] == 3 and layer.backend_used == "default_qubit" and out.shape == (2, 4)
    assert "RuntimeError: device lost" in layer.events[0]
    lonely = QuantumLayer(Ansatz.from_config(Q), backend="torch", retries=0)
    lonely.backend.execute = flaky
    with pytest.raises(RuntimeError, match="device lost"):  # nothing left to try: the error surfaces
        lonely(torch.rand(2, 4))
    del real


def test_int8_report_measures_bytes_and_metric_change():
    from torch.utils.data import DataLoader, TensorDataset

    from hqexp.train.int8 import int8_report, model_bytes, quantize_int8

    torch.manual_seed(0)
    model = GenerationNet(30, 2, quantum=Q, backend=TORCH, hidden=64, lora={"rank": 2, "alpha": 4})
    x, y = torch.randn(40, 30), torch.randint(0, 2, (40,))
    rep = int8_report(model, DataLoader(TensorDataset(x, y), batch_size=16), 2)
    assert rep["int8/model_bytes"] < rep["model/bytes_float"]
    assert {"int8/test/auroc", "int8/delta_auroc", "int8/test/f1"} <= set(rep)
    q = quantize_int8(model)
    assert torch.allclose(q(x), model.eval()(x), atol=0.1)  # close, not equal: it is INT8
    assert model_bytes(q) == rep["int8/model_bytes"]


def test_one_line_api_runs_the_same_composition(tmp_path, monkeypatch):
    from hqexp import api

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    m = api.run(
        model="g10",
        dataset="iris_binary",
        output_dir=tmp_path / "run",
        overrides=["trainer.max_epochs=2", "cv.folds=2", "trainer.enable_progress_bar=false"],
    )
    assert {"test/auroc", "test/f1", "cv/test/auroc_mean", "time/fit_s"} <= set(m)
    assert (tmp_path / "run" / "fold_1").is_dir()
    with pytest.raises(ConfigError, match="unknown model 'nope'; choose one of: "):
        api.run(model="nope")


def test_auroc_tiebreak_monitor_prefers_lower_loss_when_auc_saturates():
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from hqexp.train.tasks import ClassificationTask

    class Record(L.Callback):
        rows: list = []

        def on_validation_end(self, trainer, module):
            if not trainer.sanity_checking:
                m = trainer.callback_metrics
                self.rows.append({k: float(m[k]) for k in ("val/auroc", "val/loss", "val/auroc_tb")})

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    x[:, 0] *= 5  # separable: AUC is 1.0 at every epoch while the loss falls
    dl = DataLoader(TensorDataset(x, y), batch_size=16)
    head = torch.nn.Linear(4, 2)
    with torch.no_grad():  # ranks perfectly from the start, but barely confident: high loss
        head.weight.zero_(), head.bias.zero_()
        head.weight[1, 0], head.weight[0, 0] = 0.01, -0.01
    task = ClassificationTask(head, 2, optim={"lr": 0.05})
    rec = Record()
    L.Trainer(
        max_epochs=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[rec],
        num_sanity_val_steps=0,
    ).fit(task, dl, dl)
    rows = rec.rows
    for r in rows:  # the logged val/loss is the same batch-weighted mean the tie-break uses
        assert r["val/auroc_tb"] == pytest.approx(round(r["val/auroc"], 3) - 1e-4 * r["val/loss"], abs=1e-6)
    sat = [r for r in rows if r["val/auroc"] == 1.0]
    assert len(sat) >= 3, rows
    # Raw val/auroc cannot tell the saturated epochs apart; the tie-break ranks them by loss.
    assert sorted(sat, key=lambda r: r["val/auroc_tb"]) == sorted(sat, key=lambda r: -r["val/loss"])
    assert all(s["val/auroc_tb"] > r["val/auroc_tb"] for s in sat for r in rows if r["val/auroc"] < 0.9995)
