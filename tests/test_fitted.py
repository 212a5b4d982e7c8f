"""Fitted models (quantum kernel methods, the paper's scikit-learn baselines) through ``hqexp train``
and ``hqexp sweep``: the same record as trained models, the paper's best hyperparameters read from
its results layout (files of XanaduAI/qml-benchmarks in tests/fixtures/qml_benchmarks/results), the
paper's grid search, and one line for each option a fitted model cannot take."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import artifacts, error_line, hqexp_here, runs

RESULTS = Path(__file__).parent / "fixtures" / "qml_benchmarks" / "results"
BENCH = ["dataset=qml_benchmark", "dataset.n_features=4"]


@pytest.mark.parametrize(
    "model, extra",
    [
        ("iqp_kernel", ["model.repeats=1"]),
        ("separable_kernel", []),
        ("projected_quantum_kernel", ["model.trotter_steps=1"]),
        ("quantum_kitchen_sinks", ["model.n_episodes=20"]),
        ("svc", []),
        ("perceptron", []),
        ("mlp_sklearn", ["model.max_iter=200"]),
    ],
)
def test_every_fitted_model_is_recorded_like_a_trained_one(tmp_path, model, extra):
    hqexp_here(["train", *BENCH, f"model={model}", *extra], tmp_path)
    (run,) = runs(tmp_path)
    m, tags = run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED" and tags["model.kind"] == "fitted"
    for key in ("test/acc", "test/auroc", "test/f1_macro", "train/acc", "time/train_fit_s"):
        assert key in m, key
    assert 0.5 < m["test/acc"] <= 1.0  # linearly separable in 4 d: every model of the paper beats chance
    got = artifacts(tmp_path, run.info.run_id)
    assert {"plots/roc.png", "plots/confusion_matrix.png", "summary/run_summary.csv", "config/config.yaml"} <= got
    quantum = model not in ("svc", "perceptron", "mlp_sklearn")
    assert ("qpu/circuits" in m) == quantum
    if model in ("iqp_kernel", "separable_kernel", "projected_quantum_kernel"):
        assert "plots/gram_train.png" in got
        assert m["kernel/min_eigenvalue"] > -1e-8  # positive semidefinite, as the SVC needs
        n_train = int(m["kernel/n_train"])
        if model != "projected_quantum_kernel":  # a fidelity kernel: one circuit per distinct pair, then test x train
            assert m["qpu/circuits_fit"] == n_train * (n_train - 1) // 2
            assert m["qpu/circuits_per_inference"] == n_train


def test_the_iqp_kernel_reproduces_the_papers_score_with_its_best_hyperparameters(tmp_path):
    """linearly_separable, d = 4, C = 10, repeats = 1 (the paper's choice): the paper's test accuracy
    for seed 1, 0.8167 (49/60), exactly — same data, same kernel, same SVC."""
    hqexp_here(["train", *BENCH, "model=iqp_kernel", "seed=1", f"best_hyperparams={RESULTS}"], tmp_path)
    (run,) = runs(tmp_path)
    m, p = run.data.metrics, run.data.params
    assert (p["model.C"], p["model.repeats"]) == ("10.0", "1")
    assert m["paper/test_acc"] == pytest.approx(0.8166666666666667)
    assert m["test/acc"] == pytest.approx(m["paper/test_acc"], abs=1e-12)
    assert (
        "IQPKernelClassifier_linearly_separable_4d_GridSearchCV-best-hyperparams.csv"
        in run.data.tags["best_hyperparams.file"]
    )


def test_the_mlp_reads_the_papers_tuple_and_the_two_manifold_name(tmp_path):
    hqexp_here(["train", *BENCH, "model=mlp_sklearn", "seed=0", f"best_hyperparams={RESULTS}"], tmp_path)
    hqexp_here(
        [
            "train",
            "dataset=qml_benchmark",
            "dataset.family=two_curves",
            "dataset.n_features=3",
            "model=separable_kernel",
            f"best_hyperparams={RESULTS}",
        ],
        tmp_path,
    )
    mlp, sep = sorted(runs(tmp_path), key=lambda r: r.info.start_time)
    assert mlp.data.params["model.hidden_layer_sizes"] == "[100]" and mlp.data.params["model.alpha"] == "0.01"
    assert "two_manifold-5degree-0.1offset-3d" in sep.data.tags["best_hyperparams.file"]


def test_cross_validation_scores_the_training_split_only(tmp_path):
    hqexp_here(["train", *BENCH, "model=svc", "cv.folds=5"], tmp_path)
    (run,) = runs(tmp_path)
    m = run.data.metrics
    assert m["cv/folds"] == 5 and 0.5 < m["cv/acc"] <= 1.0
    folds = [x.value for x in __import__("helpers").client(tmp_path).get_metric_history(run.info.run_id, "cv/fold_acc")]
    assert len(folds) == 5 and np.mean(folds) == pytest.approx(m["cv/acc"])


def test_a_grid_search_sweep_chooses_by_cv_and_writes_the_papers_layout(tmp_path):
    out = hqexp_here(
        ["sweep", "sweep=qml_search/svc", *BENCH, "model.C=1,100", "model.gamma=0.01", "seed=0,1"], tmp_path
    )
    assert "chosen" in out.stdout
    (parent,) = runs(tmp_path, "tags.`mlflow.parentRunId` IS NULL")
    m = parent.data.metrics
    assert m["study/qml_search/settings"] == 2
    children = [r for r in runs(tmp_path) if r.info.run_id != parent.info.run_id]
    best = max(
        {r.data.tags["hqexp.overrides"].split(" seed=")[0] for r in children},
        key=lambda s: np.mean(
            [r.data.metrics["cv/acc"] for r in children if r.data.tags["hqexp.overrides"].startswith(s)]
        ),
    )
    assert parent.data.tags["study.qml_search.best"] in best
    path = "study/qml_search/linearly_separable/SVC/SVC_linearly_separable_4d_GridSearchCV-best-hyperparams.csv"
    assert path in artifacts(tmp_path, parent.info.run_id)
    # the written file is read back by best_hyperparams= (the paper's layout)
    local = Path(__import__("helpers").client(tmp_path).download_artifacts(parent.info.run_id, "study/qml_search"))
    hqexp_here(["train", *BENCH, "model=svc", f"best_hyperparams={local}"], tmp_path)


def test_the_benchmark_preset_tables_hqexp_beside_the_paper(tmp_path):
    out = hqexp_here(
        [
            "sweep",
            "sweep=qml_benchmark",
            f"best_hyperparams={RESULTS}",
            "dataset.family=linearly_separable",
            "dataset.n_features=4",
            "model=iqp_kernel,svc",
            "seed=0,1",
        ],
        tmp_path,
    )
    assert "| iqp_kernel | 0.817 ± 0.000 (0.817) |" in out.stdout
    (parent,) = runs(tmp_path, "tags.`mlflow.parentRunId` IS NULL")
    got = artifacts(tmp_path, parent.info.run_id)
    assert {"study/qml_benchmark.md", "study/qml_benchmark.png", "study/verdict.md"} <= got
    assert parent.data.metrics["study/qml_benchmark/flagged"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["federation=fl"], "federation=fl needs a gradient-trained model"),
        (["hardware=ddp_cpu"], "(DDP) needs a gradient-trained model"),
        (["ckpt_path=/etc/hostname"], "there is no training to resume"),
        (["noise=depolarizing"], "noisy kernels are not implemented"),
        (["backend=aer"], "prepares its states on backend=torch or backend=default_qubit, not aer"),
        (
            ["backend.options.shots=100"],
            "backend.options.shots=100 (kernel entries estimated from shots) is not implemented",
        ),
        (["model.repeats=0"], "repeats must be a positive int"),
        ([f"best_hyperparams={RESULTS}", "dataset.n_features=5"], "no file"),
    ],
)
def test_what_a_fitted_model_cannot_take_is_one_line(tmp_path, args, message):
    out = hqexp_here(["train", *BENCH, "model=iqp_kernel", *args], tmp_path, check=False)
    assert out.returncode != 0 and message in error_line(out), out.stderr[-1500:]


def test_best_hyperparams_outside_the_paper_is_one_line(tmp_path):
    out = hqexp_here(["train", *BENCH, "model=vqc_classifier", f"best_hyperparams={RESULTS}"], tmp_path, check=False)
    assert "is not a model of the benchmark paper" in error_line(out)
    out = hqexp_here(
        ["train", "dataset=breast_cancer", "model=svc", f"best_hyperparams={RESULTS}"], tmp_path, check=False
    )
    assert "use dataset=qml_benchmark, not breast_cancer" in error_line(out)


def test_the_iqp_kernel_on_pennylane_gives_the_same_numbers(tmp_path):
    for backend in ("torch", "default_qubit"):
        hqexp_here(["train", *BENCH, "model=iqp_kernel", f"backend={backend}"], tmp_path)
    a, b = runs(tmp_path)
    for key in ("test/acc", "test/auroc", "kernel/offdiag_mean"):
        assert a.data.metrics[key] == pytest.approx(b.data.metrics[key], abs=1e-6)
    assert {a.data.tags["backend_used"], b.data.tags["backend_used"]} == {"torch", "default_qubit"}


def test_eval_of_a_fitted_run_is_one_line(tmp_path):
    hqexp_here(["train", *BENCH, "model=svc"], tmp_path)
    (run,) = runs(tmp_path)
    out = hqexp_here(["eval", f"run_id={run.info.run_id}"], tmp_path, check=False)
    assert out.returncode != 0 and "is a fitted model" in error_line(out)
