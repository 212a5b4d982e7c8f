"""Hydra and path plumbing that every layer may use (bottom layer: imports no hqexp module).

Where the config tree and the project live, the ``${hqexp_root:}`` resolver, and small
readers of the running Hydra job (its choices, its output folder, whether it is part of
a multirun). Each reader works outside a Hydra job too, with a neutral answer.
"""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """The ``conf/`` tree: $HQEXP_CONFIG_DIR, else the one beside the package."""
    env = os.environ.get("HQEXP_CONFIG_DIR")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent / "conf"


def project_root() -> Path:
    """$HQEXP_ROOT, else the checkout hqexp runs from (the parent of ``conf/``), else cwd."""
    env = os.environ.get("HQEXP_ROOT")
    if env:
        return Path(env).resolve()
    conf = config_dir()
    return conf.parent if conf.is_dir() else Path.cwd()


def default_output_dir() -> Path:
    """$HQEXP_OUTPUT_DIR, else ``<project>/outputs`` (what ``paths.output_dir`` resolves to by default)."""
    env = os.environ.get("HQEXP_OUTPUT_DIR")
    return Path(env).resolve() if env else project_root() / "outputs"


def register_resolvers() -> None:
    """Register ``${hqexp_root:}``, ``${hqexp_pid:}`` and ``${hqexp_sweep_stamp:}`` (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("hqexp_root"):
        OmegaConf.register_new_resolver("hqexp_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("hqexp_pid"):
        OmegaConf.register_new_resolver("hqexp_pid", lambda: str(os.getpid()))
    if not OmegaConf.has_resolver("hqexp_sweep_stamp"):
        OmegaConf.register_new_resolver("hqexp_sweep_stamp", sweep_stamp)


def sweep_stamp() -> str:
    """``<date>/<time with microseconds>_p<pid>`` of the process that launched the sweep: kept in
    $HQEXP_SWEEP_STAMP so the worker processes it starts resolve the same sweep folder."""
    from datetime import datetime

    return os.environ.setdefault("HQEXP_SWEEP_STAMP", f"{datetime.now():%Y-%m-%d/%H-%M-%S-%f}_p{os.getpid()}")


def group_choices(group: str) -> list[str]:
    """The options of config group ``group`` (the YAML files of ``conf/<group>/``; a nested one
    as ``sub/name``, e.g. ``sweep=qml_search/svc``)."""
    folder = config_dir() / group
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.yaml"))


def _hydra():
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get()
    except ValueError:  # not inside a Hydra job
        return None


def choice(group: str) -> str:
    """The option chosen for ``group`` in the running Hydra job (``?`` outside one)."""
    hc = _hydra()
    return "?" if hc is None else str(hc.runtime.choices.get(group))


def is_multirun() -> bool:
    """True inside a job of a Hydra multirun (a sweep)."""
    from hydra.types import RunMode

    hc = _hydra()
    return hc is not None and hc.mode == RunMode.MULTIRUN


def output_dir() -> Path:
    """The running job's output folder (the current directory outside a Hydra job)."""
    hc = _hydra()
    return Path(hc.runtime.output_dir) if hc is not None else Path.cwd()


def sweep_dir() -> Path | None:
    """The sweep's folder in a multirun job, else None."""
    hc = _hydra()
    return Path(hc.sweep.dir) if hc is not None and is_multirun() else None


def task_overrides() -> list[str]:
    """The overrides the user gave this job (empty outside a Hydra job)."""
    hc = _hydra()
    return list(hc.overrides.task) if hc is not None else []


#: environment variables that carry a process's global rank, by launcher (torchrun/Lightning, SLURM, LSF)
RANK_VARS = ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a data-parallel job: only rank 0 records.

    Lightning's own re-launch sets LOCAL_RANK and NODE_RANK (not RANK) in the processes it starts."""
    import os

    for var in (*RANK_VARS, "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(var)
        if value not in (None, "", "0"):
            return False
    return True
