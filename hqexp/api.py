"""The one-line Python API: ``hqexp.api.run(model="g10", dataset="breast_cancer")``.

It composes the same Hydra config tree as ``hqexp train`` (same groups, defaults and
overrides), runs the same training code, records the same MLflow run, and returns the
metrics dict instead of printing it. Bad input raises :class:`hqexp.errors.ConfigError`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from hqexp.errors import ConfigError


def run(
    model: str = "vqc_classifier",
    dataset: str = "breast_cancer",
    overrides: Sequence[str] = (),
    output_dir: str | Path | None = None,
) -> dict[str, float]:
    """Train ``model`` on ``dataset`` with Hydra ``overrides``; return the test metrics.

    Example: ``run("g10", "breast_cancer", ["trainer.max_epochs=5", "cv.folds=3"])``.
    The run directory defaults to ``outputs/runs/<date>/<time>_api`` like the CLI's.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from hqexp.cli import check_overrides
    from hqexp.config import config_dir, register_resolvers
    from hqexp.train.loop import train

    args = [f"model={model}", f"dataset={dataset}", *overrides]

    def fail(msg: str) -> None:
        raise ConfigError(msg)

    check_overrides(args, fail)
    register_resolvers()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="api"):
            cfg = compose("train", overrides=args, return_hydra_config=True)
    except Exception as exc:
        raise ConfigError(f"cannot compose the config: {str(exc).splitlines()[0]}") from None
    stamp = f"{time.strftime('%Y-%m-%d/%H-%M-%S')}-{time.time_ns() // 1000 % 1_000_000:06d}_p{os.getpid()}"
    out = Path(output_dir) if output_dir else Path(cfg.paths.output_dir) / "runs" / f"{stamp}_api"
    out.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig.instance().set_config(cfg)  # the training code reads choices and the run dir here
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
    return train(job)


def benchmark_data(family: str, value: int):
    """``((X_train, y_train), (X_test, y_test))`` of a Bowles–Ahmed–Schuld benchmark file, as the
    paper's generation script writes it (labels −1 / +1); ``value`` is the family's difficulty
    parameter (``n_features`` for linearly_separable, hidden_manifold, two_curves; the manifold
    dimension, degree, number of hyperplanes or image size for the others)."""
    from hqexp.data.qml_benchmark import generate

    X_tr, X_te, y_tr, y_te = generate(family, value)
    return (X_tr, y_tr), (X_te, y_te)
