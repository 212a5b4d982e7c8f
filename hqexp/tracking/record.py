"""Recording one job in MLflow: start its run with the standard tags, log the resolved
config, the per-epoch table, the run summary and the plots, and print the headline.

Everything here takes plain values (histories, test outputs, metric dicts), so the
Lightning loop and the federated engines record their runs the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp import allocator
from hqexp.config import choice, is_multirun, is_rank_zero, output_dir, project_root, sweep_dir, task_overrides
from hqexp.tracking.store import MutedRecorder, Recorder, flatten, git_sha

#: the groups whose choice a checkpoint remembers (``hqexp eval`` rebuilds from them)
CHOICE_GROUPS = ("model", "dataset", "backend", "hardware")
#: a sweep's parent run id, written by the launching process and read by every job
PARENT_FILE = "mlflow_parent_run_id.txt"
#: metric name prefixes that are one value per epoch (rows of ``logs/epochs.csv``)
EPOCH_PREFIXES = ("train/", "val/", "lr", "latency/", "energy/", "grad_norm_epoch/", "qpu/epoch/")
#: the metrics the closing line of a run shows, when present
HEADLINE = (
    "test/acc",
    "test/auroc",
    "test/f1",
    "test/auroc_macro",
    "test/f1_macro",
    "test/acc_exact",
    "test/rmse",
    "test/mae",
    "test/r2",
    "test/loss",
)


def run_name(kind: str) -> str:
    """``"<kind> <model> on <dataset> [overrides]"``."""
    ov = [o for o in task_overrides() if not o.startswith("hydra")]
    base = f"{kind} {choice('model')} on {choice('dataset')}"
    return base + (f" [{', '.join(ov)}]" if ov else "")


def parent_run_id() -> str | None:
    """The sweep's parent run id in a multirun job: from :data:`PARENT_FILE` in the sweep folder
    (shared file systems: SLURM, other machines), else from $HQEXP_PARENT_RUN_ID (worker
    processes started by the launching one); None outside a sweep."""
    import os

    folder = sweep_dir()
    if folder is None:
        return None
    f = folder / PARENT_FILE
    return f.read_text().strip() if f.exists() else os.environ.get("HQEXP_PARENT_RUN_ID")


def start_run(
    cfg: DictConfig, kind: str, tags: Mapping | None = None, parent: str | None = None, name_suffix: str = ""
) -> Recorder:
    """Open the MLflow run of this job, tagged with its choices, git sha and overrides
    (a non-zero rank of a data-parallel job gets a :class:`MutedRecorder`)."""
    if not is_rank_zero():
        return MutedRecorder()
    all_tags = {
        "hqexp.command": kind,
        "model": choice("model"),
        "dataset": choice("dataset"),
        "backend": choice("backend"),
        "hardware": choice("hardware"),
        "git_sha": git_sha(project_root()),
        "hqexp.overrides": " ".join(task_overrides()),
        "hqexp.output_dir": str(output_dir()),
        **({"hqexp.allocator": allocator.POLICY} if allocator.POLICY else {}),
        **dict(tags or {}),
    }
    mcfg = OmegaConf.to_container(cfg.mlflow, resolve=True)
    name = (mcfg.get("run_name") or run_name(kind)) + name_suffix
    return Recorder.start(
        mcfg,
        run_name=name,
        tags=all_tags,
        parent_run_id=parent or (parent_run_id() if is_multirun() else None),
        offline_dir=output_dir() / "mlflow_offline",
    )


def log_config(rec: Recorder, cfg: DictConfig) -> None:
    """The resolved config as params (flattened) and as ``config/config.yaml``."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    rec.log_params(flatten(resolved))
    rec.log_text(OmegaConf.to_yaml(resolved), "config/config.yaml")


def epoch_table(history: Mapping[str, Sequence[tuple[int, float]]]) -> list[dict]:
    """Per-epoch rows (epoch, step, every epoch-level metric) from a logger's history."""
    by_step: dict[int, dict] = {}
    for key, pts in history.items():
        if key.startswith(EPOCH_PREFIXES):
            for step, v in pts:
                by_step.setdefault(step, {})[key] = v
    # Rows without a train/ or val/ value are the test-time latency entries, not epochs.
    epochs = [
        (step, vals) for step, vals in sorted(by_step.items()) if any(k.startswith(("train/", "val/")) for k in vals)
    ]
    return [{"epoch": i, "step": step, **vals} for i, (step, vals) in enumerate(epochs)]


def log_tables(
    rec: Recorder,
    history: Mapping,
    test_outputs: Mapping,
    metrics: Mapping,
    elapsed: float,
    rows: list[dict] | None = None,
    epochs: int | None = None,
) -> None:
    """Per-epoch log (JSON + CSV), predictions CSV (regression) and a one-row run summary CSV
    (``epochs``: epochs trained in all, a resumed run's earlier ones included)."""
    import pandas as pd

    rows = epoch_table(history) if rows is None else rows
    rec.log_text(json.dumps(rows, indent=1), "logs/epochs.json")
    rec.log_text(pd.DataFrame(rows).to_csv(index=False), "logs/epochs.csv")
    if test_outputs and "preds" in test_outputs:
        df = pd.DataFrame({"target": test_outputs["targets"].numpy(), "prediction": test_outputs["preds"].numpy()})
        df["error"] = df.prediction - df.target
        rec.log_text(df.to_csv(index=False), "predictions/test.csv")
    summary = {
        "run_id": rec.run_id,
        "model": choice("model"),
        "dataset": choice("dataset"),
        "epochs": epochs if epochs is not None else len([r for r in rows if "train/loss" in r]),
        "time_fit_s": round(elapsed, 3),
        **metrics,
    }
    rec.log_text(pd.DataFrame([summary]).to_csv(index=False), "summary/run_summary.csv")


def log_plots(
    rec: Recorder,
    history: Mapping,
    test_outputs: Mapping,
    class_names: Sequence[str],
    loss_name: str,
    figures: Mapping | None = None,
) -> None:
    """Loss / LR / gradient-norm curves, the model's own figures, and the test-set plots
    of its task kind (ROC, PR, confusion matrix; predicted vs true for regression)."""
    from hqexp.tracking import plots

    h = history
    rec.log_figure(plots.curves(h, ["train/loss", "val/loss"], "loss", loss_name), "plots/loss.png")
    rec.log_figure(plots.curves(h, ["lr"], "learning rate", "lr", logy=True), "plots/lr.png")
    gn = [k for k in h if k.startswith("grad_norm/")]
    if gn:
        rec.log_figure(plots.curves(h, sorted(gn), "gradient norms", "L2 norm", logy=True), "plots/grad_norm.png")
    for path, fig in (figures or {}).items():
        rec.log_figure(fig, path)
    log_test_plots(rec, test_outputs, class_names)


def log_test_plots(rec: Recorder, out: Mapping, class_names: Sequence[str], prefix: str = "plots/") -> None:
    """The test-set plots of ``out`` (``probs`` / ``scores`` / ``preds`` with ``targets``)."""
    from hqexp.tracking import plots

    names = list(class_names)
    if out and "scores" in out:
        y, p = out["targets"].numpy(), out["scores"].numpy()
        rec.log_figure(plots.multilabel_roc(y, p, names), f"{prefix}roc.png")
        rec.log_figure(
            plots.per_class_confusion(y.astype(int), (p > 0.5).astype(int), names), f"{prefix}confusion_matrix.png"
        )
    elif out and "preds" in out:
        rec.log_figure(
            plots.predicted_vs_true(out["targets"].numpy(), out["preds"].numpy(), names[0]),
            f"{prefix}predicted_vs_true.png",
        )
    elif out:
        y, p = out["targets"].numpy(), out["probs"].numpy()
        rec.log_figure(plots.roc(y, p, names), f"{prefix}roc.png")
        rec.log_figure(plots.precision_recall(y, p, names), f"{prefix}pr.png")
        rec.log_figure(plots.confusion(y, p.argmax(1), names), f"{prefix}confusion_matrix.png")


def headline(metrics: Mapping[str, float], rec: Recorder, kind: str) -> None:
    """Print the run's main test metrics and where to find it."""
    if isinstance(rec, MutedRecorder):
        return
    uri = rec.tracking_uri
    shown = "  ".join(f"{k}={metrics[k]:.4f}" for k in HEADLINE if k in metrics)
    print(f"\nhqexp {kind}: {shown}")
    if "time/startup_s" in metrics:
        fit = metrics["time/fit_s"] - metrics.get("time/test_s", 0.0)
        print(
            f"time: startup {metrics['time/startup_s']:.1f} s, fit {fit:.1f} s, "
            f"test {metrics.get('time/test_s', 0):.1f} s, "
            f"record {metrics.get('time/record_s', 0):.1f} s"
        )
    print(f"MLflow run {rec.run_id} in {uri} (experiment id {rec.experiment_id}); `make ui` then open {rec.ui_path}")


def write_parent_file(folder: Path, run_id: str) -> None:
    """Tell the jobs of a sweep their parent run (see :data:`PARENT_FILE`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PARENT_FILE).write_text(run_id)


def study_table(
    recorder: Recorder, name: str, build_rows, markdown, plot=None, columns: Sequence[str] | None = None
) -> list[dict]:
    """A study table on a sweep's parent run: ``build_rows(children)`` → ``study/<name>.md``,
    ``.csv`` and (with ``plot``) ``.png``; the Markdown is printed too. Returns the rows."""
    import pandas as pd

    from hqexp.tracking.store import search_children

    rows = build_rows(search_children(recorder.client, [recorder.experiment_id], recorder.run_id))
    if not rows:
        return rows
    md = markdown(rows)
    recorder.log_text(md, f"study/{name}.md")
    recorder.log_text(
        pd.DataFrame(rows, columns=list(columns) if columns else None).to_csv(index=False), f"study/{name}.csv"
    )
    if plot is not None:
        recorder.log_figure(plot(rows), f"study/{name}.png")
    print(md)
    return rows
