"""The ``@hydra.main`` functions behind each subcommand (called by ``hqexp.cli``).

Each wraps its work so that a :class:`~hqexp.errors.HqexpError` is one line on
stderr and a non-zero exit in a single run; in a multirun the job is recorded as
failed and the other jobs go on.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

import hydra
from omegaconf import DictConfig, OmegaConf

from hqexp.cli import config_dir, project_root
from hqexp.errors import HqexpError

log = logging.getLogger("hqexp")


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("hqexp_root"):
        OmegaConf.register_new_resolver("hqexp_root", lambda: str(project_root()))


register_resolvers()
_CONF = str(config_dir())


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def _record_failure(cfg: DictConfig, status: str, error: str) -> None:
    """Mark this job's MLflow run ``status``; create one if it failed before having one."""
    from hqexp.train import run as runmod

    rec = runmod.CURRENT.get("recorder")
    try:
        if rec is None:
            if not _is_multirun() or "mlflow" not in cfg:
                return  # a single run that failed before starting has nothing to record
            rec = runmod.start_recorder(cfg, "train")
        rec.set_tags({"hqexp.error": error[:5000]})
        if rec.status() == "RUNNING":
            rec.terminate(status)
    except Exception as exc:  # recording the failure must not hide the failure itself
        log.warning("could not record the failure in MLflow: %s", exc)


def _guard(work: Callable[[DictConfig], object], cfg: DictConfig):
    from hqexp.train import run as runmod

    runmod.CURRENT.clear()
    try:
        return work(cfg)
    except HqexpError as exc:
        _record_failure(cfg, "FAILED", str(exc))
        if _is_multirun():
            log.error("job failed: %s", exc)
            return None  # recorded as FAILED in MLflow; the sweep goes on
        print(f"hqexp: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        _record_failure(cfg, "KILLED", "interrupted (Ctrl-C)")
        print("hqexp: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:
        _record_failure(cfg, "FAILED", f"{type(exc).__name__}: {exc}")
        if _is_multirun():
            log.error("job failed:\n%s", traceback.format_exc())
            return None
        raise


@hydra.main(config_path=_CONF, config_name="train", version_base="1.3")
def train_main(cfg: DictConfig):
    from hqexp.train.run import train

    return _guard(train, cfg)


@hydra.main(config_path=_CONF, config_name="eval", version_base="1.3")
def eval_main(cfg: DictConfig):
    from hqexp.train.run import evaluate

    return _guard(evaluate, cfg)


@hydra.main(config_path=_CONF, config_name="bench", version_base="1.3")
def bench_main(cfg: DictConfig):
    from hqexp.bench import run_bench

    return _guard(run_bench, cfg)


@hydra.main(config_path=_CONF, config_name="diagnose", version_base="1.3")
def diagnose_main(cfg: DictConfig):
    from hqexp.diagnostics.run import run_diagnose

    return _guard(run_diagnose, cfg)


MAINS = {"train": train_main, "eval": eval_main, "bench": bench_main, "diagnose": diagnose_main}


def run(config_name: str) -> None:
    MAINS[config_name]()
