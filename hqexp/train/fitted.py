"""``hqexp train`` for a fitted model (a kernel method or a scikit-learn baseline): fit on the
training split, score the test split, and record it as every run is recorded.

The training split is the dataset's whole training part (train + validation: a fitted model has
no epochs to validate), as the benchmark paper fits its models. ``cv.folds=k`` adds the paper's
model selection score: stratified k-fold cross-validation on that split (scikit-learn's
``StratifiedKFold``, unshuffled, as ``GridSearchCV(cv=k)`` does), logged as ``cv/acc`` (mean),
``cv/acc_std`` and one ``cv/fold_acc`` point per fold; a sweep ranks settings by it
(``sweep_metric=cv/acc``) without ever looking at the test split.
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig, OmegaConf

from hqexp.config import choice
from hqexp.errors import ConfigError
from hqexp.tracking import record
from hqexp.train.build import build_datamodule, energy_meter, model_arguments, unwrap


def is_fitted(cfg: DictConfig) -> bool:
    """Whether ``model=`` is a fitted model (its class declares ``fitted = True``)."""
    from hydra.utils import get_class

    try:
        return bool(getattr(get_class(cfg.model._target_), "fitted", False))
    except Exception as exc:  # noqa: BLE001 - one line, as for any model that cannot be imported
        raise ConfigError(f"cannot import model {cfg.model.get('_target_')!r}: {exc}") from None


def check_fitted(cfg: DictConfig) -> None:
    """One line for each run-level option a fitted model cannot take."""
    model = choice("model")
    what = f"model={model} is fitted (a kernel method or scikit-learn estimator), not trained by gradient steps"
    federation = OmegaConf.select(cfg, "federation.mode", default="none")
    strategy = str(OmegaConf.select(cfg, "hardware.strategy", default="auto") or "auto")
    refusals = [
        (federation != "none", f"federation={federation} needs a gradient-trained model (use federation=none)"),
        (
            strategy.startswith("ddp"),
            f"hardware={choice('hardware')} (DDP) needs a gradient-trained model; use hardware=cpu",
        ),
        (cfg.ckpt_path is not None, "there is no training to resume (ckpt_path=…); run it again instead"),
        (
            cfg.cv.fold is not None,
            "cv.fold=i runs one fold of a gradient-trained model; set cv.folds=k for its CV score",
        ),
        (cfg.imbalance.method != "none", f"imbalance.method={cfg.imbalance.method} is not applied to it"),
        (bool(cfg.quantize.int8), "quantize.int8 quantises nn.Linear layers; it has none"),
        (cfg.attack.name != "none", f"attack={cfg.attack.name} needs input gradients"),
        (OmegaConf.select(cfg, "privacy.name", default="none") != "none", "privacy= measures a split model's cut"),
        (
            OmegaConf.select(cfg, "noise.kind", default="none") not in (None, "none") or bool(cfg.get("noise_eval")),
            "noisy kernels are not implemented (noise=none, noise_eval=[])",
        ),
    ]
    for refused, why in refusals:
        if refused:
            raise ConfigError(f"{what}: {why}")


def _arrays(dm, split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = dm.dataset(split)
    X, y = ds.tensors
    return X.numpy().astype(np.float64), y.numpy()


def train_fitted(cfg: DictConfig, tags: dict | None = None, reference: dict | None = None) -> dict:
    """Fit, cross-validate (``cv.folds``), test and record one fitted model; ``tags`` and
    ``reference`` (the paper's scores, ``paper/*``) are added to the run."""
    import torch
    from hydra.utils import instantiate

    from hqexp.tracking.metrics import task_scores

    check_fitted(cfg)
    folds = int(cfg.cv.folds)
    dm = build_datamodule(cfg, None) if folds == 1 else _datamodule_without_cv(cfg)
    if dm.info.task != "classification":
        raise ConfigError(
            f"model={choice('model')} is a classifier; dataset={choice('dataset')} is a {dm.info.task} dataset"
        )
    (Xa, ya), (Xv, yv), (X_te, y_te) = (_arrays(dm, s) for s in ("train", "val", "test"))
    X_tr, y_tr = np.concatenate([Xa, Xv]), np.concatenate([ya, yv])
    size = {"n_features": dm.info.n_features, "n_classes": dm.info.n_classes, "random_state": int(cfg.seed)}
    try:
        model = instantiate(model_arguments(cfg), **size, _convert_="all")
    except Exception as exc:
        raise unwrap(exc, "model") from None
    rec = record.start_run(cfg, "train", _tags(cfg, model, dm, tags))
    record.log_config(rec, cfg)
    meter = energy_meter(cfg)
    rec.set_tags({"energy_source": meter.source})
    import hqexp

    started = time.perf_counter()
    metrics: dict[str, float] = {"time/startup_s": started - hqexp.STARTED, **(reference or {})}
    try:
        if folds > 1:
            metrics.update(_cross_validate(model, X_tr, y_tr, folds, rec))
        labels, proba, timing = _fit_and_predict(model, X_tr, y_tr, X_te, meter)
    except BaseException as exc:
        rec.set_tags({"hqexp.error": str(exc)[:5000]})
        rec.terminate("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    metrics.update(timing)
    circuits = model.circuits()  # before train/acc: predicting the training split is not part of the bill
    scores = task_scores("classification", dm.info.n_classes, torch.as_tensor(proba), torch.as_tensor(y_te))
    metrics.update({f"test/{k}": v for k, v in scores.items()})
    metrics["test/acc"] = float(np.mean(labels == y_te))  # the estimator's own decision: the paper's score
    metrics["train/acc"] = float(np.mean(model.predict(X_tr) == y_tr))
    metrics.update(model.facts())
    metrics.update(_bill(circuits, len(y_te)))
    if circuits["fit"] + circuits["predict"]:
        rec.set_tags({"qpu.estimate": "circuits counted (see qpu/circuits_fit in the README); not priced"})
    rec.log_metrics(metrics)
    _record(rec, model, dm, proba, y_te, metrics, time.perf_counter() - started)
    rec.terminate("FINISHED")
    record.headline(metrics, rec, "train")
    return metrics


def _tags(cfg: DictConfig, model, dm, extra: dict | None) -> dict[str, str]:
    tags = {"federation": "none", "model.kind": "fitted", "backend_used": _backend_used(model), **(extra or {})}
    if getattr(model, "paper_name", None):
        tags["model.paper_name"] = model.paper_name
    if hasattr(dm, "family") and hasattr(dm, "value"):  # the benchmark paper's datasets: for its file names
        from hqexp.data.qml_benchmark import FAMILIES

        tags.update({"dataset.family": dm.family, "dataset.stem": FAMILIES[dm.family].file(dm.value)})
    return tags


def _fit_and_predict(model, X_tr, y_tr, X_te, meter) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Fit, then the test split's decisions and probabilities; seconds (and joules, where measured)."""
    meter.start()
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr)
    t1 = time.perf_counter()
    labels, proba = model.predict_with_proba(X_te)
    t2 = time.perf_counter()
    reading = meter.elapsed()
    timing = {"time/train_fit_s": t1 - t0, "time/test_s": t2 - t1, "time/fit_s": t2 - t0}
    if reading is not None:
        timing["energy/fit_test_j"] = reading.joules
    return labels, proba, timing


def _bill(circuits: dict[str, int], n_test: int) -> dict[str, float]:
    """What a device would run: circuits to fit and per classification (none for classical models)."""
    total = circuits["fit"] + circuits["predict"]
    if not total:
        return {}
    return {
        "qpu/circuits": float(total),
        "qpu/circuits_fit": float(circuits["fit"]),
        "qpu/circuits_per_inference": circuits["predict"] / max(n_test, 1),
    }


def _datamodule_without_cv(cfg: DictConfig):
    """The data module as for ``cv.folds=1``: a fitted model's folds are cut here, not by the data module."""
    plain = OmegaConf.merge(cfg, {"cv": {"folds": 1, "fold": None}})
    return build_datamodule(plain, None)


def _cross_validate(model, X, y, folds: int, rec) -> dict[str, float]:
    """Accuracy of a fresh copy of ``model`` on each of ``folds`` stratified folds of the training split."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    if counts.min() < folds:
        raise ConfigError(
            f"cv.folds={folds} needs at least {folds} training samples of each class, the rarest has {counts.min()}"
        )
    accs = []
    for i, (tr, va) in enumerate(StratifiedKFold(n_splits=folds).split(X, y)):
        m = clone(model).fit(X[tr], y[tr])
        accs.append(float(np.mean(m.predict(X[va]) == y[va])))
        rec.log_metrics({"cv/fold_acc": accs[-1]}, step=i)
    return {"cv/acc": float(np.mean(accs)), "cv/acc_std": float(np.std(accs)), "cv/folds": float(folds)}


def _backend_used(model) -> str:
    from hqexp.models.fitted import backend_name

    backend = getattr(model, "backend", None)
    return "none (classical)" if backend is None else backend_name(backend)


def _record(rec, model, dm, proba: np.ndarray, y_te: np.ndarray, metrics: dict, elapsed: float) -> None:
    """Test plots, the model's own figures (the Gram matrix) and the run summary."""
    import matplotlib.pyplot as plt
    import torch

    out = {"probs": torch.as_tensor(proba), "targets": torch.as_tensor(y_te)}
    record.log_test_plots(rec, out, dm.info.class_names)
    history = model.history() if hasattr(model, "history") else {}
    if history:  # a gradient-fitted model (the paper's loop): its loss curve, one point per logged step
        _log_history(rec, history)
        from hqexp.tracking import plots

        fig = plots.curves(history, sorted(history), "training loss (the paper's loop)", "loss")
        rec.log_figure(fig, "plots/loss.png")
        plt.close(fig)
    for path, fig in model.figures().items():
        rec.log_figure(fig, path)
        plt.close(fig)
    record.log_tables(rec, {}, {}, metrics, elapsed, rows=[], epochs=0)


def _log_history(rec, history: dict) -> None:
    """``{metric: [(step, value)]}`` into the run in batches (thousands of single calls are slow)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, int(step)) for k, pts in history.items() for step, v in pts]
    if hasattr(rec, "log_metric_values"):
        rec.log_metric_values(items)
    else:  # pragma: no cover - a recorder without batches
        for m in items:
            rec.log_metrics({m.key: m.value}, step=m.step)
