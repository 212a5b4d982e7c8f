"""The real ``hqexp`` CLI end to end, at tiny size, against a temporary MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import HQEXP, TINY, artifacts, client, error_line, hqexp, runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    out = hqexp(["train", *TINY, "seed=5"], tmp)
    (run,) = runs(tmp)
    return tmp, run, out


def test_help_is_fast_and_imports_nothing_heavy():
    out = subprocess.run([*HQEXP, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for sub in ("train", "eval", "sweep", "bench"):
        assert sub in out.stdout
    probe = (
        "import sys, hqexp.cli; "
        "print(sorted(m for m in ('torch','lightning','mlflow','pennylane') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"


def test_hydra_features_after_subcommand(tmp_path):
    out = hqexp(["train", "--cfg", "job", "model=mlp_classifier"], tmp_path)
    assert "hqexp.models.baselines.MLPClassifier" in out.stdout
    out = hqexp(["train", "--help"], tmp_path)
    groups = dict(
        ln.strip().split(": ", 1) for ln in out.stdout.splitlines() if ln.startswith(("model: ", "dataset: "))
    )
    assert {"mlp_classifier", "vqc_classifier", "hqnn_autoencoder"} <= set(groups["model"].split(", "))
    assert {"breast_cancer", "iris", "options"} <= set(groups["dataset"].split(", "))
    out = hqexp(["train", "--cfg", "job", "experiment=iris_hybrid"], tmp_path)
    assert "name: iris" in out.stdout and "n_layers: 3" in out.stdout


def test_train_records_everything(trained):
    tmp, run, out = trained
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    for key, value in {
        "model": "vqc_classifier",
        "dataset": "breast_cancer",
        "backend": "torch",
        "backend_used": "torch",
        "hardware": "cpu",
    }.items():
        assert tags[key] == value
    assert tags["git_sha"] and tags["energy_source"].startswith("unavailable")
    if sys.platform.startswith("linux"):
        assert tags["hqexp.allocator"] == "glibc: freed memory kept"
    m = run.data.metrics
    for key in (
        "train/loss",
        "val/loss",
        "val/acc",
        "test/acc",
        "test/auroc",
        "test/f1",
        "lr",
        "grad_norm/total",
        "grad_norm/quantum",
        "grad_norm/encoder",
        "params/total",
        "params/quantum",
    ):
        assert key in m, key
    assert m["params/quantum"] == 24  # 2 layers x 4 qubits x 3 Rot angles
    # diagnostics: barren-plateau indicators of the quantum layer, latency; no energy without a counter
    assert m["bp/grad_var/quantum"] > 0 and m["bp/grad_abs/quantum"] > 0
    assert 0 <= m["bp/frac_small/quantum"] <= 1
    assert m["latency/ms_per_sample"] > 0 and m["latency/train_ms_per_sample"] > 0
    if tags["energy_source"].startswith("unavailable"):
        assert not [k for k in m if k.startswith("energy/")]
    else:
        assert m["energy/j_per_sample"] > 0
    assert 0.5 < m["test/auroc"] <= 1
    assert run.data.params["model.quantum.n_qubits"] == "4"
    arts = artifacts(tmp, run.info.run_id)
    for a in (
        "config/config.yaml",
        "plots/loss.png",
        "plots/lr.png",
        "plots/roc.png",
        "plots/confusion_matrix.png",
        "plots/grad_norm.png",
    ):
        assert a in arts
    assert any(a.startswith("checkpoints/best") for a in arts)
    assert run.info.run_id in out.stdout and "test/auroc=" in out.stdout


def test_eval_checkpoint_tags_source_run(trained):
    tmp, run, _ = trained
    ckpt = next(Path(run.data.tags["hqexp.output_dir"], "checkpoints").glob("best-*.ckpt"))
    hqexp(["eval", f"ckpt_path={ckpt}", "trainer.enable_progress_bar=false"], tmp)
    (ev,) = runs(tmp, "tags.`hqexp.command` = 'eval'")
    assert ev.info.status == "FINISHED"
    assert ev.data.tags["source_run_id"] == run.info.run_id
    assert ev.data.tags["model"] == "vqc_classifier"
    assert ev.data.metrics["test/acc"] == pytest.approx(run.data.metrics["test/acc"], abs=1e-6)


def test_resume_from_checkpoint(trained):
    tmp, run, _ = trained
    last = Path(run.data.tags["hqexp.output_dir"], "checkpoints", "last.ckpt")
    hqexp(["train", "trainer.max_epochs=3", "trainer.enable_progress_bar=false", "seed=5", f"ckpt_path={last}"], tmp)
    (resumed,) = runs(tmp, "tags.resumed_from != ''")
    assert resumed.info.status == "FINISHED"


def test_same_seed_same_metrics(tmp_path):
    for _ in range(2):
        hqexp(["train", "model=mlp_classifier", "dataset=wine", *TINY, "seed=3"], tmp_path)
    a, b = runs(tmp_path)
    keys = [k for k in a.data.metrics if k.startswith("test/")]
    assert keys and all(a.data.metrics[k] == b.data.metrics[k] for k in keys)


def test_sweep_one_parent_four_children(tmp_path):
    out = hqexp(
        [
            "sweep",
            "model=vqc_classifier,mlp_classifier",
            "backend=torch,default_qubit",
            "dataset=iris",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    parents = runs(tmp_path, "tags.`hqexp.command` = 'sweep'")
    assert len(parents) == 1
    parent = parents[0]
    children = runs(tmp_path, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert {(c.data.tags["model"], c.data.tags["backend"]) for c in children} == {
        (m, b) for m in ("vqc_classifier", "mlp_classifier") for b in ("torch", "default_qubit")
    }
    assert parent.info.status == "FINISHED"
    assert {"sweep/children.csv", "sweep/summary.md"} <= artifacts(tmp_path, parent.info.run_id)
    assert "4 job(s), 0 failed" in out.stdout


def test_sweep_failed_job_is_recorded_and_others_run(tmp_path):
    out = hqexp(
        [
            "sweep",
            "dataset=breast_cancer,iris",
            "dataset.binary=versicolor_virginica",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
        check=False,
    )
    assert out.returncode == 1
    (parent,) = runs(tmp_path, "tags.`hqexp.command` = 'sweep'")
    children = runs(tmp_path, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    status = {c.data.tags["dataset"]: c.info.status for c in children}
    assert status == {"breast_cancer": "FAILED", "iris": "FINISHED"}
    assert parent.info.status == "FAILED"


def test_parallel_joblib_sweep_loses_no_runs(tmp_path):
    hqexp(
        [
            "sweep",
            "model=vqc_classifier,mlp_classifier",
            "seed=1,2",
            "dataset=iris",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            *TINY,
        ],
        tmp_path,
    )
    (parent,) = runs(tmp_path, "tags.`hqexp.command` = 'sweep'")
    children = runs(tmp_path, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert all("test/acc" in c.data.metrics for c in children)


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "model=nope"], "unknown model 'nope'; choose one of: "),
        (["train", "backend=qsim"], "unknown backend 'qsim'; choose one of: aer, default_qubit"),
        (["train", "trainer.max_epochs=[1,"], "malformed override 'trainer.max_epochs=[1,'"),
        (["train", "trainer.max_epochs=zero"], "trainer.max_epochs must be an int >= 1, got 'zero'"),
        (["eval"], "missing required config value: ckpt_path"),
        (["eval", "ckpt_path=/no/such.ckpt"], "ckpt_path '/no/such.ckpt' does not exist"),
        (["train", "mlflow.tracking_uri=sqlite:////proc/no/such/dir/m.db"], "cannot open MLflow tracking URI"),
        (["train", "mlflow.tracking_uri=nosuchscheme://x"], "cannot open MLflow tracking URI"),
        (["train", "dataset.val_fraction=1.5"], "dataset.val_fraction must be in (0, 1)"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    out = hqexp(args, tmp_path, check=False)
    assert out.returncode != 0
    assert message in error_line(out), out.stderr[-2000:]


def test_bad_checkpoint_file(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    out = hqexp(["eval", f"ckpt_path={bad}"], tmp_path, check=False)
    assert out.returncode == 2 and "is not a readable checkpoint" in out.stderr


def test_ctrl_c_marks_run_killed(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [
            *HQEXP,
            "train",
            "trainer.max_epochs=100000",
            "callbacks.early_stopping.enabled=false",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={tmp_path}/run",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 120
        ckpt_dir = tmp_path / "run" / "checkpoints"
        while time.time() < deadline and not any(ckpt_dir.glob("*.ckpt")):  # training is under way
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    (run,) = runs(tmp_path)
    assert run.info.status == "KILLED"


def test_bench_backends_writes_csv_with_ratios(tmp_path):
    csv_path = tmp_path / "bench.csv"
    out = hqexp(
        [
            "bench",
            "backends",
            "grid=[[3,1,4]]",
            "repeats=1",
            "warmup=1",
            "backends=[torch,default_qubit,lightning_gpu]",
            "peers=[]",
            f"csv={csv_path}",
        ],
        tmp_path,
    )
    import pandas as pd

    df = pd.read_csv(csv_path)
    assert set(df.backend) == {"torch", "default_qubit", "lightning_gpu"}
    dq = df[df.backend == "default_qubit"].iloc[0]
    assert dq.ratio_fwd_bwd > 0 and dq.status == "ok"
    assert df[df.backend == "torch"].iloc[0].torch_fwd_GBps > 0
    assert "ratio" in out.stdout


def test_diagnose_writes_table_csv_plots_and_mlflow_run(tmp_path):
    out = hqexp(
        [
            "diagnose",
            "qubits=[2,3,4]",
            "depths=[2,3n]",
            "samples=40",
            "bootstrap=20",
            "costs=[global_projector,local_projector,z0z1]",
            "expressibility.pairs=200",
            "entanglement.samples=50",
            "entanglement.dataset=iris",
        ],
        tmp_path,
    )
    assert "fit ln Var" in out.stdout and "expressibility" in out.stdout
    (run,) = runs(tmp_path)
    assert run.data.tags["hqexp.command"] == "diagnose"
    m = run.data.metrics
    assert m["bp/fit/global_projector/depth_3n/slope_log2"] < 0
    assert "bp/fit/z0z1/depth_2/r2" in m
    files = artifacts(tmp_path, run.info.run_id)
    assert {
        "diagnose/bp_variance.csv",
        "diagnose/bp_fits.csv",
        "diagnose/expressibility_entanglement.csv",
        "diagnose/bp_variance_depth_2.png",
        "diagnose/bp_variance_depth_3n.png",
    } <= files
    import pandas as pd

    local = client(tmp_path).download_artifacts(run.info.run_id, "diagnose/bp_variance.csv", str(tmp_path))
    df = pd.read_csv(local)
    assert len(df) == 2 * 3 * 3 and (df.var_mean > 0).all()


@pytest.mark.parametrize(
    "args,match",
    [
        (["costs=[z_each]"], "unknown cost 'z_each'"),
        (["depths=[deep]"], "bad depth 'deep'"),
        (["qubits=[0,2]"], "qubits must be a list of positive ints"),
        (["ansatz.template=nope"], "unknown template 'nope'"),
    ],
)
def test_diagnose_bad_input_is_one_line(tmp_path, args, match):
    out = hqexp(["diagnose", "samples=4", "log_to_mlflow=false", *args], tmp_path, check=False)
    assert out.returncode == 2
    assert match in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_progress_line_shows_latency(tmp_path):
    out = hqexp(["train", "trainer.max_epochs=1", "dataset=iris"], tmp_path)
    bar = out.stdout + out.stderr  # Lightning's tqdm bar writes to stdout
    assert "Lat: " in bar and " ms" in bar


REG = [
    "dataset=options",
    "model=hqnn_autoencoder",
    "dataset.n_total=300",
    "dataset.n_samples=60",
    "model.quantum.n_qubits=2",
    "scheduler=plateau",
]


def test_regression_run_records_metrics_tables_and_plots(tmp_path):
    hqexp(["train", *REG, *TINY], tmp_path)
    (run,) = runs(tmp_path)
    m = run.data.metrics
    for key in (
        "val/rmse",
        "val/mae",
        "val/r2",
        "test/rmse",
        "test/mae",
        "test/r2",
        "lr",
        "grad_norm/total",
        "grad_norm/pre_encoder",
        "grad_norm/quantum",
        "grad_norm/post_decoder",
        "train/recon_loss",
    ):
        assert key in m, key
    assert m["test/rmse"] > 0
    arts = artifacts(tmp_path, run.info.run_id)
    assert {
        "logs/epochs.json",
        "logs/epochs.csv",
        "predictions/test.csv",
        "summary/run_summary.csv",
        "plots/predicted_vs_true.png",
        "plots/loss.png",
        "plots/grad_norm.png",
        "plots/lr.png",
    } <= arts
    import pandas as pd

    c = client(tmp_path)
    preds = pd.read_csv(c.download_artifacts(run.info.run_id, "predictions/test.csv", str(tmp_path)))
    rmse = float(((preds.prediction - preds.target) ** 2).mean() ** 0.5)
    assert rmse == pytest.approx(m["test/rmse"], rel=1e-4)  # the CSV is what was scored
    epochs = pd.read_csv(c.download_artifacts(run.info.run_id, "logs/epochs.csv", str(tmp_path)))
    assert len(epochs) == 2 and {"val/rmse", "train/loss", "grad_norm_epoch/total", "grad_norm_epoch/quantum"} <= set(
        epochs.columns
    )
    assert epochs["grad_norm_epoch/total"].notna().all() and epochs["train/loss"].notna().all()
    ckpt = next(Path(run.data.tags["hqexp.output_dir"], "checkpoints").glob("best-*.ckpt"))
    hqexp(["eval", f"ckpt_path={ckpt}", "trainer.enable_progress_bar=false"], tmp_path)
    (ev,) = runs(tmp_path, "tags.`hqexp.command` = 'eval'")
    assert ev.data.metrics["test/rmse"] == pytest.approx(m["test/rmse"], rel=1e-5)


def test_model_and_dataset_kinds_must_match(tmp_path):
    out = hqexp(["train", "model=hqnn_classical"], tmp_path, check=False)
    assert out.returncode == 2 and "is a regression model but dataset=breast_cancer" in out.stderr


def test_hqnn_study_sweep_writes_the_study_table(tmp_path):
    hqexp(
        [
            "sweep",
            "sweep=hqnn_study",
            "dataset.n_total=200",
            "dataset.n_samples=40",
            "model.quantum.n_qubits=2",
            "seed=0,1",
            "trainer.max_epochs=2",
        ],
        tmp_path,
        timeout=600,
    )
    (parent,) = runs(tmp_path, "tags.`hqexp.command` = 'sweep'")
    children = runs(tmp_path, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 4 and all(ch.info.status == "FINISHED" for ch in children)
    assert {"study/hqnn_study.md", "study/hqnn_study.csv", "study/hqnn_study.png", "study/verdict.md"} <= artifacts(
        tmp_path, parent.info.run_id
    )  # the preset's paired verdict: the hybrid against its twin per cell
    assert "study/qc/n40_q2" in parent.data.metrics


ECG_TINY = [
    "experiment=ptbxl_snn_vqc",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "dataset.batch_size=16",
]


def test_ecg_dual_path_on_a_ptbxl_fixture(tmp_path):
    from ecg_fixtures import make_ptbxl

    root = make_ptbxl(tmp_path / "ptbxl", n=60)
    # A 60-record fixture has one val and one test batch: warm-up of 1 leaves one to time.
    hqexp(
        [
            "train",
            *ECG_TINY,
            f"dataset.root={root}",
            f"dataset.cache_dir={tmp_path}/cache",
            "callbacks.latency.warmup_batches=1",
        ],
        tmp_path,
    )
    (run,) = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["dataset"] == "ptbxl"
    m = run.data.metrics
    for key in (
        "test/auroc_macro",
        "test/f1_macro",
        "test/acc_exact",
        "val/auroc_macro",
        "fusion/alpha",
        "snn/spike_rate",
        "test/auroc/NORM",
        "test/sensitivity/MI",
        "test/specificity/HYP",
        "latency/ms_per_sample",
        "bp/grad_var/qpath/quantum",
    ):
        assert key in m, key
    assert m["params/total"] < 50_000 and m["data/skipped"] == 0
    arts = artifacts(tmp_path, run.info.run_id)
    assert {"plots/roc.png", "plots/confusion_matrix.png", "plots/pair_attention.png"} <= arts


@pytest.mark.parametrize("source", ["cinc2021", "synthetic_ecg"])
def test_ecg_dual_path_on_cinc_and_synthetic(tmp_path, source):
    extra = ["dataset=synthetic_ecg", "dataset.n_synthetic=120"]
    if source == "cinc2021":
        from ecg_fixtures import make_cinc

        extra = ["dataset=cinc2021", f"dataset.root={make_cinc(tmp_path / 'cinc', n=40)}", "dataset.cache_dir=null"]
    hqexp(["train", *ECG_TINY, *extra], tmp_path)
    (run,) = runs(tmp_path)
    assert run.info.status == "FINISHED" and "test/auroc_macro" in run.data.metrics


def test_bench_ecg_reports_throughput(tmp_path):
    csv_path = tmp_path / "bench.csv"
    out = hqexp(
        [
            "bench",
            "ecg",
            "ecg.models=[snn_vqc_ecg,ecg_cnn_small]",
            "ecg.batch=8",
            "repeats=1",
            "warmup=1",
            f"csv={csv_path}",
        ],
        tmp_path,
    )
    import pandas as pd

    df = pd.read_csv(tmp_path / "bench.csv")
    assert list(df.model) == ["snn_vqc_ecg", "ecg_cnn_small"]
    assert (df.train_samples_per_s > 0).all() and (df.infer_ms_per_sample_b1 > 0).all()
    assert "train_samples_per_s" in out.stdout


def test_ecg_ablation_sweep_compares_models_on_the_parent(tmp_path):
    hqexp(
        [
            "sweep",
            "sweep=ecg_ablation",
            "dataset=synthetic_ecg",
            "dataset.n_synthetic=80",
            "dataset.batch_size=16",
            "model=snn_ecg,ecg_cnn_small",
            "seed=1",
            "trainer.max_epochs=1",
        ],
        tmp_path,
        timeout=600,
    )
    (parent,) = runs(tmp_path, "tags.`hqexp.command` = 'sweep'")
    children = runs(tmp_path, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(ch.data.tags["model"] for ch in children) == ["ecg_cnn_small", "snn_ecg"]
    assert all(ch.info.status == "FINISHED" and "test/auroc_macro" in ch.data.metrics for ch in children)
    assert {"sweep/summary.md", "sweep/children.csv"} <= artifacts(tmp_path, parent.info.run_id)
    # the wearable table: each row is its model's child, energy as an estimate beside the budget
    assert {"study/wearable.md", "study/wearable.csv", "study/wearable.png"} <= artifacts(tmp_path, parent.info.run_id)
    import pandas as pd

    path = client(tmp_path).download_artifacts(parent.info.run_id, "study/wearable.csv", str(tmp_path))
    table = pd.read_csv(path).set_index("model")
    for ch in children:
        row, m = table.loc[ch.data.tags["model"]], ch.data.metrics
        assert row["auroc"] == pytest.approx(m["test/auroc_macro"])
        assert row["est_mj"] == pytest.approx(m["energy_est/j_per_inference"] * 1e3)
        assert row["macs"] == pytest.approx(m["ops/macs"]) and row["weight_bytes"] == pytest.approx(
            m["ops/weight_bytes"]
        )
    assert table.loc["snn_ecg", "acs"] > 0 and table.loc["ecg_cnn_small", "acs"] == 0  # spikes vs dense
    assert table.loc["snn_ecg", "energy_est_source"] == "ops:horowitz45nm"


GEN_TINY = ["dataset=iris_binary", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]


def test_kfold_run_is_a_parent_with_one_child_per_fold(tmp_path):
    hqexp(["train", "model=g9", "cv.folds=3", *GEN_TINY], tmp_path)
    (parent,) = runs(tmp_path, "tags.`cv.folds` = '3'")
    folds = runs(tmp_path, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(f.data.tags["cv.fold"] for f in folds) == ["0", "1", "2"]
    m = parent.data.metrics
    for key in (
        "cv/test/auroc_mean",
        "cv/test/auroc_std",
        "cv/test/sensitivity_mean",
        "cv/test/specificity_mean",
        "test/auroc",
        "int8/delta_auroc",
        "model/bytes",
        "mem/peak_rss_mb",
        "time/epochs",
    ):
        assert key in m, key
    assert m["test/auroc"] == pytest.approx(sum(f.data.metrics["test/auroc"] for f in folds) / 3)
    assert {"cv/folds.csv", "cv/summary.md"} <= artifacts(tmp_path, parent.info.run_id)
    for f in folds:
        assert f.info.status == "FINISHED" and f.data.tags["backend_used"] == "torch"
        assert {"plots/roc.png", "plots/pr.png", "plots/confusion_matrix.png"} <= artifacts(tmp_path, f.info.run_id)
        assert "sparsity/activations" in f.data.metrics and "backend/forwards/torch" in f.data.metrics


def test_generations_sweep_writes_the_summary_table(tmp_path):
    hqexp(["sweep", "sweep=generations", "model=g0,g4", *GEN_TINY], tmp_path, timeout=600)
    (parent,) = runs(tmp_path, "tags.`hqexp.command` = 'sweep'")
    assert {"study/generations.md", "study/generations.csv"} <= artifacts(tmp_path, parent.info.run_id)
    import pandas as pd

    c = client(tmp_path)
    table = pd.read_csv(c.download_artifacts(parent.info.run_id, "study/generations.csv", str(tmp_path)))
    assert [tuple(r) for r in table[["generation", "variant"]].itertuples(index=False)] == [
        ("g0", "classical"),
        ("g4", "hybrid"),
        ("g4", "twin"),
    ]
    assert table.auroc.notna().all() and table.peak_mem_mb.notna().all() and table.model_bytes.notna().all()
    hybrid = table[table.variant == "hybrid"].iloc[0]
    assert (
        hybrid.int8_model_bytes > 0
        and hybrid.trainable_params < table[table.variant == "classical"].iloc[0].trainable_params + 1000
    )


def test_folds_can_run_as_parallel_sweep_jobs(tmp_path):
    hqexp(
        [
            "sweep",
            "model=g7",
            "cv.folds=2",
            "cv.fold=0,1",
            *GEN_TINY,
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
        ],
        tmp_path,
        timeout=600,
    )
    (parent,) = runs(tmp_path, "tags.`hqexp.command` = 'sweep'")
    children = runs(tmp_path, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(ch.data.tags["cv.fold"] for ch in children) == ["0", "1"]
    c = client(tmp_path)
    summary = Path(c.download_artifacts(parent.info.run_id, "sweep/summary.md", str(tmp_path))).read_text()
    assert "| (base) | 2 |" in summary  # the folds pool into one configuration


@pytest.mark.slow
@pytest.mark.parametrize(
    "model,dataset,metric,floor",
    [
        ("g9", "breast_cancer", "test/auroc", 0.99),  # 5-fold mean AUC
        ("g6", "iris_binary", "test/f1", 0.93),  # 5-fold mean F1 on the hard pair
    ],
)
def test_generation_quality_targets(tmp_path, model, dataset, metric, floor):
    hqexp(
        ["train", f"model={model}", f"dataset={dataset}", "trainer.max_epochs=60", "trainer.enable_progress_bar=false"],
        tmp_path,
        timeout=900,
    )
    (parent,) = runs(tmp_path, "tags.`cv.folds` = '5'")
    assert parent.data.metrics[metric] >= floor
