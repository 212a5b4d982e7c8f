"""The ``@hydra.main`` functions behind each subcommand (called by ``hqexp.cli``).

Each wraps its work so that a :class:`~hqexp.errors.HqexpError` is one line on
stderr and a non-zero exit in a single run; in a multirun the job is recorded as
failed and the other jobs go on. Whatever ends a job, every MLflow run it opened is
closed with a truthful status.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from hqexp.config import config_dir, is_multirun, register_resolvers
from hqexp.errors import HqexpError, storage_full
from hqexp.interrupts import describe, shielded

log = logging.getLogger("hqexp")

register_resolvers()
_CONF = str(config_dir())


def _record_failure(cfg: DictConfig, status: str, error: str, outer: set[str]) -> None:
    """End every run this job left open with ``status`` (not ``outer`` ones, such as the
    sweep's parent in this process); in a sweep, a job that failed before opening a run
    gets one that says so."""
    from hqexp.tracking import record
    from hqexp.tracking.store import open_runs

    try:
        recs = [r for r in open_runs() if r.run_id not in outer]
        if not recs:
            if not is_multirun() or "mlflow" not in cfg:
                return  # a single run that failed before starting has nothing to record
            recs = [record.start_run(cfg, "train")]
        for rec in recs:
            rec.set_tags({"hqexp.error": error[:5000]})
            rec.terminate(status)
    except Exception as exc:  # recording the failure must not hide the failure itself
        log.warning("could not record the failure in MLflow: %s", exc)


def close_open_runs(reason: str) -> int:
    """End every run this process left open — a sweep's parent and the children its workers
    were running included — as KILLED, tagged with ``reason``. Returns how many it ended."""
    from hqexp.tracking.store import open_runs, search_children

    n = 0
    for rec in open_runs():
        try:
            for child in search_children(rec.client, [rec.experiment_id], rec.run_id):
                if child.info.status == "RUNNING":  # a worker process that could not close it
                    rec.client.set_tag(child.info.run_id, "hqexp.error", f"{reason} (sweep parent)")
                    rec.client.set_terminated(child.info.run_id, "KILLED")
                    n += 1
            rec.set_tags({"hqexp.error": reason})
            rec.terminate("KILLED")
            n += 1
        except Exception as exc:  # noqa: BLE001 - closing one run must not stop closing the others
            log.warning("could not close MLflow run %s: %s", rec.run_id, exc)
    return n


def _guard(work: Callable[[DictConfig], object], cfg: DictConfig):
    from hqexp.allocator import keep_freed_memory
    from hqexp.tracking.store import open_runs

    keep_freed_memory()  # before the job allocates: see hqexp.allocator

    outer = {r.run_id for r in open_runs()}
    try:
        try:
            return work(cfg)
        except OSError as exc:  # a full disk anywhere (logs, plots, artifacts): one line, the run FAILED
            full = storage_full(exc)
            if full is None or isinstance(exc, HqexpError):
                raise
            raise full from None
    except HqexpError as exc:
        _record_failure(cfg, "FAILED", str(exc), outer)
        if is_multirun():
            log.error("job failed: %s", exc)
            return None  # recorded as FAILED in MLflow; the sweep goes on
        print(f"hqexp: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (hqexp.interrupts)
        name, code = describe(exc)
        with shielded():
            _record_failure(cfg, "KILLED", f"interrupted by {name}", outer)
        print(f"hqexp: interrupted by {name}", file=sys.stderr)
        raise SystemExit(code) from None
    except Exception as exc:
        _record_failure(cfg, "FAILED", f"{type(exc).__name__}: {exc}", outer)
        if is_multirun():
            log.error("job failed:\n%s", traceback.format_exc())
            return None
        raise


@hydra.main(config_path=_CONF, config_name="train", version_base="1.3")
def train_main(cfg: DictConfig):
    from hqexp.train.loop import train

    return objective_value(cfg, _guard(train, cfg))


def objective_value(cfg: DictConfig, metrics):
    """What a tuning sweeper optimises: ``metrics[cfg.objective]`` (NaN for a failed job, which
    Optuna records as a failed trial); the metrics themselves without an ``objective``."""
    key = cfg.get("objective")
    if key is None:
        return metrics
    if metrics is None:
        return float("nan")
    if key not in metrics:
        have = ", ".join(sorted(k for k in metrics if k.startswith(("val/", "test/"))))
        log.error("objective=%s is not a metric of this run; it has: %s", key, have)
        return float("nan")
    return float(metrics[key])


@hydra.main(config_path=_CONF, config_name="eval", version_base="1.3")
def eval_main(cfg: DictConfig):
    from hqexp.train.evaluate import evaluate

    return _guard(evaluate, cfg)


@hydra.main(config_path=_CONF, config_name="bench", version_base="1.3")
def bench_main(cfg: DictConfig):
    from hqexp.bench import run_bench

    return _guard(run_bench, cfg)


@hydra.main(config_path=_CONF, config_name="diagnose", version_base="1.3")
def diagnose_main(cfg: DictConfig):
    from hqexp.diagnostics.scan import run_diagnose

    return _guard(run_diagnose, cfg)


@hydra.main(config_path=_CONF, config_name="shots", version_base="1.3")
def shots_main(cfg: DictConfig):
    from hqexp.train.shots_curve import shots_curve

    return _guard(shots_curve, cfg)


@hydra.main(config_path=_CONF, config_name="noise_bp", version_base="1.3")
def noise_bp_main(cfg: DictConfig):
    from hqexp.diagnostics.noise_bp import run_noise_bp

    return _guard(run_noise_bp, cfg)


@hydra.main(config_path=_CONF, config_name="runs", version_base="1.3")
def runs_main(cfg: DictConfig):
    from hqexp.runs import run_runs

    return _guard(run_runs, cfg)


MAINS = {
    "train": train_main,
    "eval": eval_main,
    "bench": bench_main,
    "diagnose": diagnose_main,
    "shots": shots_main,
    "noise_bp": noise_bp_main,
    "runs": runs_main,
}


def dispatch(config_name: str) -> None:
    """Call the ``@hydra.main`` function of ``config_name`` (``sys.argv`` already rewritten)."""
    MAINS[config_name]()
