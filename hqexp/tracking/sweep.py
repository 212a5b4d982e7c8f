"""A Hydra callback that makes every multirun one MLflow parent run with child runs.

The parent's id is written to ``<sweep dir>/mlflow_parent_run_id.txt``; each job
(in this process, a joblib worker or a SLURM node sharing the file system) reads
it and tags its run ``mlflow.parentRunId``. When the sweep ends, the parent gets a
table of its children (CSV + Markdown) and mean ± std of ``sweep_metric`` per
configuration (the overrides other than ``seed``), and is marked FAILED if any
child failed.
"""

from __future__ import annotations

import logging
import re
import statistics
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("hqexp")

# study name (the `study` key of a sweep preset) -> (module, function) writing its table on the parent
STUDIES = {
    "hqnn": ("hqexp.tracking.study", "record_hqnn_study"),
    "generations": ("hqexp.tracking.generations", "record_generations"),
    "sfl": ("hqexp.tracking.sfl_study", "record_sfl_study"),
    "privacy": ("hqexp.tracking.privacy_study", "record_privacy_study"),
    "noise": ("hqexp.tracking.noise_study", "record_noise_study"),
    "wearable": ("hqexp.tracking.wearable_study", "record_wearable_study"),
    "qml_benchmark": ("hqexp.tracking.qml_benchmark_study", "record_qml_benchmark_study"),
    "qml_search": ("hqexp.tracking.qml_search_study", "record_qml_search_study"),
}


def _is_group(name: str) -> bool:
    from hqexp.config import config_dir

    return (config_dir() / name).is_dir()


def _mlflow_cfg(config: DictConfig) -> dict | None:
    if "mlflow" not in config:
        return None
    return OmegaConf.to_container(config.mlflow, resolve=True)


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.recorder = None
        self.compare: tuple[str, str] | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hqexp.tracking.record import write_parent_file
        from hqexp.tracking.store import Recorder

        mcfg = _mlflow_cfg(config)
        if mcfg is None:
            return
        from hqexp.config import group_choices
        from hqexp.tracking.compare import check_spec

        spec = OmegaConf.select(config, "compare", default=None)
        spec = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else spec
        by = spec.get("by") if isinstance(spec, dict) else None
        self.compare = check_spec(spec, {by: group_choices(by)} if by and _is_group(by) else {})
        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = list(config.hydra.overrides.task)
        raw = OmegaConf.select(config, "hydra.sweeper.params", default=None)
        params = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, DictConfig) else {}
        name = mcfg.get("run_name") or f"sweep {config.hydra.job.name} " + " ".join(overrides)[:200]
        self.recorder = Recorder.start(
            mcfg,
            run_name=name.strip(),
            tags={
                "hqexp.command": "sweep",
                "hqexp.sweep_dir": str(sweep_dir),
                "hqexp.overrides": " ".join(overrides),
            },
        )
        self.recorder.log_params(
            {f"sweep.{k}": v for k, v in (params or {}).items()} | {"sweep.overrides": " ".join(overrides)}
        )
        write_parent_file(sweep_dir, self.recorder.run_id)
        import os

        os.environ["HQEXP_PARENT_RUN_ID"] = self.recorder.run_id  # for workers this process starts
        print(f"hqexp sweep: MLflow parent run {self.recorder.run_id}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.recorder is None:
            return
        metric = OmegaConf.select(config, "sweep_metric", default=None) or "test/acc"
        rows = summarize(self.recorder, metric)
        study = OmegaConf.select(config, "study", default=None)
        if study and study not in STUDIES:
            log.warning("unknown study %r: no study table written (known: %s)", study, ", ".join(STUDIES))
        elif study and rows:
            import importlib

            module, fn = STUDIES[study]
            getattr(importlib.import_module(module), fn)(self.recorder)
        if self.compare is not None and rows:  # the paired verdict: this side against its baseline
            from hqexp.tracking.compare import record_verdicts

            record_verdicts(self.recorder, metric, *self.compare)
        tuned = Path(config.hydra.sweep.dir) / "optimization_results.yaml"
        if tuned.is_file():  # a tuning sweeper's verdict (Optuna): best value and parameters
            best = OmegaConf.to_container(OmegaConf.load(tuned), resolve=True)
            self.recorder.log_artifact(tuned, "sweep")
            if isinstance(best.get("best_value"), (int, float)):
                self.recorder.log_metrics({"sweep/best_value": float(best["best_value"])})
            self.recorder.set_tags({f"sweep.best.{k}": v for k, v in (best.get("best_params") or {}).items()})
        failed = [r for r in rows if r["status"] != "FINISHED"]
        self.recorder.terminate("FAILED" if failed or not rows else "FINISHED")
        print(f"hqexp sweep: {len(rows)} job(s), {len(failed)} failed; parent run {self.recorder.run_id}")
        if failed:
            raise SystemExit(1)


def seed_count(overrides: list[str], params: dict) -> int:
    """Seeds a sweep runs: the command line's ``seed=…`` (a sweep or one value), else the preset's
    ``hydra.sweeper.params.seed``, else the one default seed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = [o for o in overrides if re.match(r"^\+?seed=", o)]
    text = given[-1] if given else (f"seed={params['seed']}" if "seed" in (params or {}) else None)
    if text is None:
        return 1
    (ov,) = OverridesParser.create().parse_overrides([text])
    return len(list(ov.sweep_string_iterator())) if ov.is_sweep_override() else 1


def _config_key(overrides: str, common: set[str]) -> str:
    """The overrides that vary across jobs, without ``seed=…`` or ``cv.fold=…``: jobs that
    differ only in seed (or fold) share a key."""
    parts = [p for p in overrides.split() if p not in common and not re.match(r"^\+?(seed|cv\.fold)=", p)]
    return " ".join(parts) or "(base)"


def summarize(recorder, metric: str) -> list[dict]:
    """Children table + per-configuration mean/std of ``metric``, logged to the parent."""
    from hqexp.tracking.store import search_children

    children = search_children(recorder.client, [recorder.experiment_id], recorder.run_id)
    rows = []
    for run in sorted(children, key=lambda r: r.info.start_time or 0):
        rows.append(
            {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "overrides": run.data.tags.get("hqexp.overrides", ""),
                "backend_used": run.data.tags.get("backend_used", ""),
                **{
                    k: v
                    for k, v in sorted(run.data.metrics.items())
                    if k.startswith(("test/", "params/", "bp/", "val/best", "qpu/"))
                },
            }
        )
    if not rows:
        return rows
    import pandas as pd

    table = pd.DataFrame(rows)
    recorder.log_text(table.to_csv(index=False), "sweep/children.csv")
    common = set.intersection(*(set(r["overrides"].split()) for r in rows))
    groups: dict[str, list[float]] = {}
    bills: dict[str, list[float]] = {}  # the hardware bill of each configuration (estimates)
    for r in rows:
        if r["status"] == "FINISHED" and metric in r:
            key = _config_key(r["overrides"], common)
            groups.setdefault(key, []).append(float(r[metric]))
            if "qpu/est_usd" in r and r["qpu/est_usd"] == r["qpu/est_usd"]:
                bills.setdefault(key, []).append(float(r["qpu/est_usd"]))
    lines = [
        f"| configuration | n | mean {metric} | std | est. QPU USD per run (qpu/est_usd) |",
        "|---|---|---|---|---|",
    ]
    agg = {}
    for key, vals in sorted(groups.items()):
        mean = statistics.fmean(vals)
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        usd = f"{statistics.fmean(bills[key]):,.0f}" if bills.get(key) else "– (no quantum layer)"
        lines.append(f"| {key} | {len(vals)} | {mean:.4f} | {std:.4f} | {usd} |")
        agg[key] = (mean, std)
    recorder.log_text("\n".join(lines) + "\n", "sweep/summary.md")
    for i, (key, (mean, std)) in enumerate(sorted(agg.items())):
        recorder.set_tags({f"sweep.config.{i}": key})
        recorder.log_metrics({f"sweep/{metric}/mean/{i}": mean, f"sweep/{metric}/std/{i}": std})
    recorder.log_metrics(
        {"sweep/n_children": len(rows), "sweep/n_failed": sum(r["status"] != "FINISHED" for r in rows)}
    )
    print("\n".join(lines))
    return rows
