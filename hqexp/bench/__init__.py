"""``hqexp bench``: speed measured as ratios against peers in one process.

Suites: ``backends`` (:mod:`hqexp.bench.backends`) and ``ecg`` (:mod:`hqexp.bench.ecg`).
Each prints a table, writes a CSV into the run folder and, with ``log_to_mlflow``,
records one MLflow run.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp import allocator
from hqexp.bench.table import write_csv
from hqexp.errors import ConfigError

SUITES = ("backends", "ecg")


def run_bench(cfg: DictConfig) -> list[dict]:
    """Run the suite ``cfg.suite``; print, write the CSV, optionally record in MLflow."""
    if cfg.suite not in SUITES:
        raise ConfigError(f"unknown bench suite {cfg.suite!r}; choose one of: {', '.join(SUITES)}")
    import torch

    if cfg.suite == "ecg":
        from hqexp.bench import ecg as suite

        rows = suite.bench_ecg(cfg)
        print(
            f"hqexp bench ecg — torch {torch.__version__}, {torch.get_num_threads()} threads, allocator "
            f"{allocator.POLICY or 'system'}; ratios are to "
            f"{rows[0]['model']} (train: higher = faster; latency: higher = slower)"
        )
    else:
        from hqexp.bench import backends as suite

        rows = suite.bench_backends(cfg)
        print(
            f"hqexp bench backends — torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"device {cfg.device}, allocator {allocator.POLICY or 'system'}, shots {cfg.get('shots')}, "
            f"grad {cfg.get('grad') or 'exact'}; ratio = backend time / "
            f"{cfg.backend.name} time (higher = {cfg.backend.name} faster)"
        )
    print(suite.table(rows))
    path = Path(cfg.csv if cfg.suite == "backends" else str(cfg.csv).replace("bench_backends", f"bench_{cfg.suite}"))
    write_csv(path, rows)
    print(f"CSV: {path}")
    if cfg.log_to_mlflow:
        _record(cfg, rows, path)
    return rows


def _record(cfg: DictConfig, rows: list[dict], path: Path) -> None:
    import torch

    from hqexp.tracking.store import Recorder

    rec = Recorder.start(
        OmegaConf.to_container(cfg.mlflow, resolve=True),
        run_name=f"bench {cfg.suite}",
        tags={"hqexp.command": "bench", "hqexp.bench_suite": cfg.suite},
    )
    rec.log_params(
        {"grid": str(list(map(list, cfg.grid))), "threads": torch.get_num_threads(), "torch": torch.__version__}
    )
    rec.log_artifact(path, "bench")
    for r in rows:
        if cfg.suite == "ecg":
            rec.log_metrics(
                {
                    f"bench/ecg/{r['model']}/{k}": r[k]
                    for k in ("train_samples_per_s", "infer_ms_per_sample_b1", "infer_ms_per_sample_batch")
                    if r.get(k)
                }
            )
            continue
        for k in ("ratio_fwd", "ratio_fwd_bwd", "torch_fwd_GBps"):
            if r.get(k):
                rec.log_metrics({f"bench/{r['backend']}/{k}/n{r['n_qubits']}_L{r['n_layers']}_B{r['batch']}": r[k]})
    rec.terminate("FINISHED")
    print(f"MLflow run {rec.run_id}")
