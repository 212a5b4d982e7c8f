"""Models that are fitted, not trained by gradient steps: scikit-learn estimators.

A fitted model is a scikit-learn classifier (``fit`` / ``predict_proba``) that declares
``fitted = True``; ``hqexp train`` then fits it on the training split and records it like any
other run (metrics, plots, the bill of the circuits a device would run). Quantum kernel methods
(:mod:`hqexp.models.kernel_methods`) and the paper's classical baselines
(:mod:`hqexp.models.sklearn_baselines`) are fitted models.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from hqexp.errors import ConfigError


class FittedClassifier(ClassifierMixin, BaseEstimator):
    """Base of hqexp's fitted classifiers: what the fitted training path asks of a model."""

    fitted = True
    task = "classification"
    #: the paper's class name, for ``best_hyperparams=`` (None: not a model of the paper)
    paper_name: str | None = None
    #: the paper's hyperparameter names → the config keys they set (``model.C``)
    paper_keys: dict[str, str] = {}

    def circuits(self) -> dict[str, int]:
        """Circuits a device would have run so far, ``{"fit": …, "predict": …}`` (classical: none)."""
        return dict(getattr(self, "circuits_", {"fit": 0, "predict": 0}))

    def figures(self) -> dict:
        """Figures worth a look (``{artifact path: matplotlib figure}``) after fitting."""
        return {}

    def facts(self) -> dict[str, float]:
        """Sizes worth logging (``params/*``, ``kernel/*``) after fitting."""
        return {}


def positive(value, key: str, model: str, integer: bool = False) -> None:
    """One line unless ``value`` is a positive int (``integer``) or number: ``model.<key>`` checks."""
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value <= 0:
        raise ConfigError(f"model={model}: {key} must be a positive {'int' if integer else 'number'}, got {value!r}")


def backend_name(backend: Mapping | str | None) -> str:
    """The backend choice of a model config (``${backend}`` mapping or a name)."""
    if backend is None:
        return "torch"
    if isinstance(backend, str):
        return backend
    return str(backend.get("name", "torch"))


def refuse_shots(backend: Mapping | str | None, model: str) -> None:
    """One line for finite shots on a model whose sampled form is not implemented."""
    shots = None if backend is None or isinstance(backend, str) else (backend.get("options") or {}).get("shots")
    if shots is not None:
        raise ConfigError(
            f"model={model} computes its kernel exactly; backend.options.shots={shots} (kernel entries "
            "estimated from shots) is not implemented for fitted models: set backend.options.shots=null"
        )


def minmax(X: np.ndarray, lo: float, hi: float):
    """A scikit-learn ``MinMaxScaler`` onto ``[lo, hi]`` fitted on ``X`` (the paper's input scaling)."""
    from sklearn.preprocessing import MinMaxScaler

    return MinMaxScaler(feature_range=(lo, hi)).fit(X)


def platt_svc(X, y, **svc_kw):
    """``sklearn.svm.SVC(probability=True, **svc_kw)`` fitted on ``X, y``, as the paper fits it.

    scikit-learn 1.9 deprecates ``probability=True`` (removal in 1.11: pinned below that); its
    Platt scaling is what the paper's scores were computed with, so it is kept, and the
    deprecation warning with it is silenced here only.
    """
    import warnings

    from sklearn.svm import SVC

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*`probability` parameter", category=FutureWarning)
        return SVC(probability=True, **svc_kw).fit(X, y)
