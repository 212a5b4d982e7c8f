"""``hqexp train``: one run, a k-fold CV parent (:mod:`hqexp.train.cv`), or a split /
split-federated protocol (:mod:`hqexp.federated`), chosen by the config."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp.errors import ConfigError
from hqexp.tracking import record
from hqexp.train.checks import check_distributed, hardware, validate
from hqexp.train.fit import train_one


def train(cfg: DictConfig) -> dict:
    """One training run — or a k-fold parent with a child per fold, or a federated run."""
    validate(cfg)
    hardware(cfg)
    from hqexp.train.fitted import is_fitted, train_fitted
    from hqexp.train.paper_settings import apply_best_hyperparams

    paper = apply_best_hyperparams(cfg)
    if is_fitted(cfg):  # a kernel method or scikit-learn baseline: fitted, not trained by Lightning
        return train_fitted(cfg, *paper)
    if paper[0]:  # pragma: no cover - only fitted models declare paper_keys so far
        raise ConfigError(f"best_hyperparams= sets fitted models only so far, not model={cfg.model._target_}")
    check_distributed(cfg)
    if cfg.ckpt_path is not None and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path {cfg.ckpt_path!r} does not exist")
    folds = cfg.cv.folds
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ConfigError(f"cv.folds must be an int >= 1, got {folds!r}")
    federation = OmegaConf.select(cfg, "federation.mode", default="none")
    engine = OmegaConf.select(cfg, "federation.engine", default="inprocess")
    if federation == "none" and engine != "inprocess":
        raise ConfigError(
            f"federation.engine={engine} runs clients of a federation; federation=none trains "
            "centrally (choose federation=fl|sflv1|sflv2)"
        )
    if federation != "none":
        if folds > 1:
            raise ConfigError(f"federation={federation} trains one split across clients; set cv.folds=1")
        from hqexp.train.federated import train_federated

        return train_federated(cfg)
    if folds > 1 and cfg.cv.fold is None:
        if cfg.ckpt_path is not None:
            raise ConfigError("ckpt_path resumes one run; with cv.folds > 1 resume a fold with cv.fold=i")
        from hqexp.train.cv import train_cv

        return train_cv(cfg, folds)
    metrics, rec = train_one(cfg, cfg.cv.fold if folds > 1 else None)
    rec.terminate("FINISHED")
    record.headline(metrics, rec, "train")
    return metrics
