"""The classical baselines of Bowles, Ahmed & Schuld 2024, out of the box as the paper runs them:
scikit-learn's ``SVC`` (RBF kernel), ``MLPClassifier`` (Adam, ``max_iter=3000``) and
``Perceptron``, on the raw features (the paper scales nothing for them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hqexp.errors import ConfigError
from hqexp.models.fitted import FittedClassifier, platt_svc


class SklearnClassifier(FittedClassifier):
    """A scikit-learn classifier built by :meth:`_make` at fit time (so ``get_params`` stays ours)."""

    def _make(self, seed: int):
        raise NotImplementedError

    def fit(self, X, y):
        self.model_ = self._make(self.random_state)
        self.model_.fit(np.asarray(X, dtype=np.float64), y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X) -> np.ndarray:
        return self.model_.predict(np.asarray(X, dtype=np.float64))

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if hasattr(self.model_, "predict_proba"):
            return self.model_.predict_proba(X)
        # Perceptron: no probabilities; a logistic of the margin keeps the ranking (AUROC) and the decision
        z = self.model_.decision_function(X)
        p1 = 1 / (1 + np.exp(-np.clip(z, -50, 50)))
        return np.c_[1 - p1, p1]

    def predict_with_proba(self, X) -> tuple[np.ndarray, np.ndarray]:
        return self.predict(X), self.predict_proba(X)


class SVCClassifier(SklearnClassifier):
    """``sklearn.svm.SVC(kernel="rbf", C, gamma)`` (probabilities by Platt scaling)."""

    paper_name = "SVC"
    paper_keys = {"C": "model.C", "gamma": "model.gamma"}

    def __init__(
        self,
        C: float = 1.0,
        gamma: float | str = "scale",
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
    ) -> None:
        self.C, self.gamma = C, gamma
        self.n_features, self.n_classes, self.random_state = n_features, n_classes, random_state

    def fit(self, X, y):
        self.model_ = platt_svc(
            np.asarray(X, dtype=np.float64),
            y,
            kernel="rbf",
            C=float(self.C),
            gamma=self.gamma,
            random_state=self.random_state,
        )
        self.classes_ = self.model_.classes_
        return self

    def facts(self) -> dict[str, float]:
        return {"kernel/n_support": float(self.model_.support_.size)}


class MLPSklearn(SklearnClassifier):
    """``sklearn.neural_network.MLPClassifier`` with the paper's defaults (Adam, ``max_iter=3000``)."""

    paper_name = "MLPClassifier"
    paper_keys = {k: f"model.{k}" for k in ("alpha", "batch_size", "hidden_layer_sizes", "learning_rate_init")}

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] | str = (100, 100),
        alpha: float = 1e-4,
        learning_rate_init: float = 1e-3,
        batch_size: int | str = "auto",
        max_iter: int = 3000,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
    ) -> None:
        self.hidden_layer_sizes, self.alpha, self.learning_rate_init = hidden_layer_sizes, alpha, learning_rate_init
        self.batch_size, self.max_iter = batch_size, max_iter
        self.n_features, self.n_classes, self.random_state = n_features, n_classes, random_state

    def _sizes(self) -> tuple[int, ...]:
        h = self.hidden_layer_sizes
        if isinstance(h, str):  # the paper's CSVs write them as "(100,)"
            h = tuple(int(v) for v in h.strip("()[] ").split(",") if v.strip())
        h = (h,) if isinstance(h, int) else tuple(h)
        if not h or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in h):
            raise ConfigError(
                f"model=mlp_sklearn: hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes!r}"
            )
        return h

    def _make(self, seed):
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=self._sizes(),
            alpha=float(self.alpha),
            learning_rate_init=float(self.learning_rate_init),
            batch_size=self.batch_size,
            max_iter=int(self.max_iter),
            random_state=seed,
        )

    def facts(self) -> dict[str, float]:
        m = self.model_
        return {
            "params/total": float(sum(w.size for w in m.coefs_) + sum(b.size for b in m.intercepts_)),
            "time/epochs": float(m.n_iter_),
        }


class PerceptronClassifier(SklearnClassifier):
    """``sklearn.linear_model.Perceptron(eta0)``: the linear baseline (no probabilities: scores
    are a logistic of its margin)."""

    paper_name = "Perceptron"
    paper_keys = {"eta0": "model.eta0"}

    def __init__(
        self, eta0: float = 1.0, n_features: int | None = None, n_classes: int = 2, random_state: int = 42
    ) -> None:
        self.eta0 = eta0
        self.n_features, self.n_classes, self.random_state = n_features, n_classes, random_state

    def _make(self, seed):
        from sklearn.linear_model import Perceptron

        return Perceptron(eta0=float(self.eta0), random_state=seed)

    def facts(self) -> dict[str, float]:
        return {"params/total": float(self.model_.coef_.size + self.model_.intercept_.size)}
