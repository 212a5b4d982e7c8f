"""The benchmark paper's training loop for its variational classifiers, as a fitted model.

Bowles, Ahmed & Schuld 2024 train every variational model the same way (``model_utils.train`` of
XanaduAI/qml-benchmarks, read for the definition): Adam at ``learning_rate``, each step on a batch
of ``batch_size`` training samples drawn with replacement, until the loss curve is flat — after more
than 2 × ``convergence_interval`` steps, when the means of the last two intervals differ by at most
half the last interval's standard error — or ``max_steps``. Each model's own loss, on labels ±1.

Run inside a scikit-learn estimator (as the paper's models are), these models go through the same
fitted path as the kernel methods: the paper's cross-validation, grid search and best
hyperparameters apply unchanged. Parameters are drawn by torch from ``random_state`` with the
paper's distributions (not its JAX draws).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hqexp.errors import ConfigError
from hqexp.models.fitted import FittedClassifier, positive

#: the loss curve logged as train/loss is thinned to at most this many points
HISTORY_POINTS = 500


def converged(history: list[float], interval: int) -> bool:
    """The paper's stopping rule on the per-step losses ``history``."""
    if len(history) <= 2 * interval + 1:
        return False
    last, before = np.asarray(history[-interval:]), np.asarray(history[-2 * interval : -interval])
    return abs(before.mean() - last.mean()) <= last.std() / math.sqrt(interval) / 2


class PaperVariational(FittedClassifier):
    """Base of the paper's variational classifiers: subclasses define the parameters, the forward
    pass on prepared inputs, the loss and the class probabilities."""

    name = "?"

    def _check_training(self) -> None:
        for key in ("learning_rate", "batch_size", "max_steps", "convergence_interval"):
            positive(getattr(self, key), key, self.name, integer=key != "learning_rate")

    # ------------------------------------------------------------ per model
    def _prepare(self, X: np.ndarray, fit: bool) -> torch.Tensor:
        raise NotImplementedError

    def _init_params(self, n_features: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _forward(self, params: dict, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _loss(self, out: torch.Tensor, y: torch.Tensor, params: dict) -> torch.Tensor:
        """The model's loss on labels ±1 (``params``: for losses with their own weights)."""
        raise NotImplementedError

    def _proba(self, out: torch.Tensor) -> torch.Tensor:
        """``[N, 2]`` probabilities of the classes (−1, +1); default ``((1 − f)/2, (1 + f)/2)``."""
        f = out.clamp(-1, 1)
        return torch.stack(((1 - f) / 2, (1 + f) / 2), dim=-1)

    def _circuit_params(self) -> int:
        """Trainable angles inside the circuit (a device's parameter shift needs 2 circuits each)."""
        return 0

    # ------------------------------------------------------------ sklearn API
    def fit(self, X, y):
        self._check_training()
        X = np.asarray(X, dtype=np.float64)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ConfigError(
                f"model={self.name} is a binary classifier (the paper's), got {len(self.classes_)} classes"
            )
        ypm = torch.as_tensor(np.where(np.asarray(y) == self.classes_[1], 1.0, -1.0))
        g = torch.Generator().manual_seed(int(self.random_state))
        inputs = self._prepare(X, fit=True)
        params = self._init_params(X.shape[1], g)
        opt = torch.optim.Adam(params.values(), lr=float(self.learning_rate))
        history: list[float] = []
        self.converged_ = False
        for _ in range(int(self.max_steps)):
            idx = torch.randint(len(X), (int(self.batch_size),), generator=g)
            loss = self._loss(self._forward(params, inputs[idx]), ypm[idx], params)
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(float(loss))
            if not math.isfinite(history[-1]):
                break
            if converged(history, int(self.convergence_interval)):
                self.converged_ = True
                break
        self.params_ = {k: v.detach() for k, v in params.items()}
        self.loss_history_ = history
        n_shift = 2 * self._circuit_params()
        self.circuits_ = {"fit": len(history) * int(self.batch_size) * (1 + n_shift), "predict": 0}
        return self

    def predict_proba(self, X) -> np.ndarray:
        with torch.no_grad():
            out = self._forward(self.params_, self._prepare(np.asarray(X, dtype=np.float64), fit=False))
        self.circuits_["predict"] += len(X)
        return self._proba(out).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def predict_with_proba(self, X) -> tuple[np.ndarray, np.ndarray]:
        p = self.predict_proba(X)
        return self.classes_[p.argmax(1)], p

    def facts(self) -> dict[str, float]:
        return {
            "params/total": float(sum(v.numel() for v in self.params_.values())),
            "params/quantum": float(self._circuit_params()),
            "train/steps": float(len(self.loss_history_)),
            "train/converged": float(self.converged_),
            "train/final_loss": self.loss_history_[-1] if self.loss_history_ else math.nan,
        }

    def history(self) -> dict[str, list[tuple[int, float]]]:
        """The per-step training loss, thinned to :data:`HISTORY_POINTS` points (``train/loss``)."""
        h = self.loss_history_
        every = max(1, math.ceil(len(h) / HISTORY_POINTS))
        return {"train/loss": [(i, h[i]) for i in range(0, len(h), every)]}
