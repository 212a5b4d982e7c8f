"""The quantum kernel methods of Bowles, Ahmed & Schuld 2024, as fitted models.

Definitions follow the paper's models (github XanaduAI/qml-benchmarks, ``models/iqp_kernel.py``,
``separable.py``, ``projected_quantum_kernel.py``, ``quantum_kitchen_sinks.py``; read for the
definitions, our own code): inputs min-max scaled onto [−π/2, π/2] on the training split (kitchen
sinks: [−1, 1]), times ``scaling``; the Gram matrix from hqexp's simulator
(:mod:`hqexp.quantum.kernels`), then scikit-learn's ``SVC(kernel="precomputed", probability=True)``
(kitchen sinks: a logistic regression on sampled bitstrings). The random draws of each model
(SVC seed, the projected kernel's rotations) come from ``numpy.random.default_rng(random_state)``
in the paper's order.

Deviations, on purpose: the projected kernel's bandwidth γ is taken from the training features
and kept for the test kernel (the paper recomputes it from whichever set is the first argument, so
its test kernel has another bandwidth); the kitchen sinks' random projections are drawn by NumPy,
not JAX, so they are other (equally distributed) draws than the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from hqexp.errors import ConfigError
from hqexp.models.fitted import FittedClassifier, backend_name, minmax, platt_svc, positive, refuse_shots
from hqexp.quantum import kernels as qk

HALF_PI = math.pi / 2


class KernelSVC(FittedClassifier):
    """A support-vector classifier on a precomputed quantum Gram matrix (subclasses give the map)."""

    name = "?"
    scale_to = HALF_PI

    # ------------------------------------------------------------ the map
    def _setup(self, n_features: int, rng: np.random.Generator) -> None:
        """Draw what the map needs at fit time (after the SVC seed, as the paper does)."""

    def _features(self, Xs: np.ndarray):
        raise NotImplementedError

    def _gram(self, A, B, symmetric: bool) -> torch.Tensor:
        raise NotImplementedError

    def _circuits(self, n_rows: int, n_cols: int, symmetric: bool) -> int:
        return qk.fidelity_circuits(n_rows, n_cols, symmetric)

    # ------------------------------------------------------------ sklearn API
    def _transform(self, X) -> np.ndarray:
        return self.scaler_.transform(np.asarray(X, dtype=np.float64)) * self.scaling

    def fit(self, X, y):
        positive(self.C, "C", self.name)
        X = np.asarray(X, dtype=np.float64)
        rng = np.random.default_rng(self.random_state)
        svm_seed = int(rng.integers(100000))
        self._setup(X.shape[1], rng)
        self.scaler_ = minmax(X, -self.scale_to, self.scale_to)
        self.train_features_ = self._features(self._transform(X))
        K = self._gram(self.train_features_, self.train_features_, True)
        self.gram_, self.train_labels_ = K.numpy(), np.asarray(y)
        self.svm_ = platt_svc(self.gram_, y, kernel="precomputed", C=float(self.C), random_state=svm_seed)
        self.classes_ = self.svm_.classes_
        self.circuits_ = {"fit": self._circuits(len(X), len(X), True), "predict": 0}
        return self

    def _test_gram(self, X) -> np.ndarray:
        F = self._features(self._transform(X))
        self.circuits_["predict"] += self._circuits(len(X), len(self.train_labels_), False)
        return self._gram(F, self.train_features_, False).numpy()

    def predict_with_proba(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The SVC's decision (the paper's score) and its Platt probabilities, from one test Gram block."""
        K = self._test_gram(X)
        return self.svm_.predict(K), self.svm_.predict_proba(K)

    def predict(self, X) -> np.ndarray:
        return self.svm_.predict(self._test_gram(X))

    def predict_proba(self, X) -> np.ndarray:
        return self.svm_.predict_proba(self._test_gram(X))

    def figures(self) -> dict:
        from hqexp.tracking.plots import gram_heatmap

        return {"plots/gram_train.png": gram_heatmap(self.gram_, self.train_labels_, self.name)}

    def facts(self) -> dict[str, float]:
        K = self.gram_
        off = K[~np.eye(len(K), dtype=bool)]
        return {
            "kernel/n_train": float(len(K)),
            "kernel/offdiag_mean": float(off.mean()) if off.size else float("nan"),
            "kernel/offdiag_var": float(off.var()) if off.size else float("nan"),
            "kernel/min_eigenvalue": float(np.linalg.eigvalsh((K + K.T) / 2).min()),
            "kernel/n_support": float(self.svm_.support_.size),
        }


class IQPKernelClassifier(KernelSVC):
    """Havlíček et al. 2019 as the paper runs it: ``k(x, x') = |⟨0|U†(x')U(x)|0⟩|²`` with
    PennyLane's ``IQPEmbedding`` (``repeats`` times); states on ``backend`` (torch: hqexp's
    simulator; default_qubit: PennyLane, to compare), Gram = |Ψ Ψ'†|²."""

    name = "iqp_kernel"
    paper_name = "IQPKernelClassifier"
    paper_keys = {"C": "model.C", "repeats": "model.repeats"}

    def __init__(
        self,
        C: float = 1.0,
        repeats: int = 2,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
        backend: Mapping | str | None = None,
    ) -> None:
        self.C, self.repeats, self.scaling = C, repeats, scaling
        self.n_features, self.n_classes, self.random_state, self.backend = n_features, n_classes, random_state, backend
        positive(repeats, "repeats", self.name, integer=True)
        refuse_shots(backend, self.name)
        if backend_name(backend) not in ("torch", "default_qubit"):
            raise ConfigError(
                f"model=iqp_kernel prepares its states on backend=torch or backend=default_qubit, "
                f"not {backend_name(backend)}"
            )

    def _features(self, Xs):
        if backend_name(self.backend) == "default_qubit":
            return pennylane_iqp_states(Xs, self.repeats)
        return qk.iqp_states(Xs, self.repeats)

    def _gram(self, A, B, symmetric):
        return qk.fidelity_gram(A, B)


def pennylane_iqp_states(Xs: np.ndarray, repeats: int) -> torch.Tensor:
    """The same states from PennyLane's ``default.qubit`` (``IQPEmbedding``, broadcast over rows)."""
    import pennylane as qml

    n = Xs.shape[1]
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="numpy")
    def state(x):
        qml.IQPEmbedding(x, wires=range(n), n_repeats=repeats)
        return qml.state()

    return torch.as_tensor(np.asarray(state(Xs)), dtype=qk.CDTYPE).reshape(len(Xs), 2**n)


class SeparableKernelClassifier(KernelSVC):
    """The paper's separable (product-state) fidelity kernel: per wire ``encoding_layers`` ×
    (RY(x_i), RX(π/4)); ``k = Π_i |⟨a_i(x)|a_i(x')⟩|²``. The entanglement-free ablation of the IQP kernel."""

    name = "separable_kernel"
    paper_name = "SeparableKernelClassifier"
    paper_keys = {"C": "model.C", "encoding_layers": "model.encoding_layers"}

    def __init__(
        self,
        C: float = 1.0,
        encoding_layers: int = 1,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
        backend: Mapping | str | None = None,
    ) -> None:
        self.C, self.encoding_layers, self.scaling = C, encoding_layers, scaling
        self.n_features, self.n_classes, self.random_state, self.backend = n_features, n_classes, random_state, backend
        positive(encoding_layers, "encoding_layers", self.name, integer=True)
        _torch_only(backend, self.name)

    def _features(self, Xs):
        return qk.separable_qubit_states(Xs, self.encoding_layers)

    def _gram(self, A, B, symmetric):
        return qk.product_fidelity_gram(A, B)


class ProjectedQuantumKernel(KernelSVC):
    """Huang et al. 2021 as the paper runs it: a Heisenberg-evolution embedding on ``d + 1`` qubits
    (random single-qubit ``Rot`` first, ``trotter_steps`` steps of time ``t``), the kernel an RBF on
    the one-qubit ⟨X⟩, ⟨Y⟩, ⟨Z⟩ of every wire: ``exp(−γ Σ (⟨P_q⟩ − ⟨P_q⟩')²)``,
    ``γ = gamma_factor / (d · Var(training features))``."""

    name = "projected_quantum_kernel"
    paper_name = "ProjectedQuantumKernel"
    paper_keys = {k: f"model.{k}" for k in ("C", "gamma_factor", "t", "trotter_steps")}

    def __init__(
        self,
        C: float = 1.0,
        gamma_factor: float = 1.0,
        t: float = 1.0 / 3,
        trotter_steps: int = 5,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
        backend: Mapping | str | None = None,
    ) -> None:
        self.C, self.gamma_factor, self.t, self.trotter_steps, self.scaling = C, gamma_factor, t, trotter_steps, scaling
        self.n_features, self.n_classes, self.random_state, self.backend = n_features, n_classes, random_state, backend
        positive(gamma_factor, "gamma_factor", self.name)
        positive(t, "t", self.name)
        positive(trotter_steps, "trotter_steps", self.name, integer=True)
        _torch_only(backend, self.name)

    def _setup(self, n_features, rng):
        self.rotation_angles_ = torch.as_tensor(rng.uniform(size=(n_features + 1, 3)) * 2 * np.pi)
        self.gamma_ = None

    def _features(self, Xs):
        psi = qk.heisenberg_states(Xs, self.rotation_angles_, self.t, self.trotter_steps)
        return qk.pauli_expectations(psi, Xs.shape[1] + 1)

    def _gram(self, A, B, symmetric):
        if self.gamma_ is None:  # first call is the training block: the bandwidth is fixed there
            self.gamma_ = self.gamma_factor / (float(A.var()) * (A.shape[2] - 1))
        return qk.projected_gram(A, B, self.gamma_)

    def _circuits(self, n_rows, n_cols, symmetric):
        # per input one circuit per measured basis (X, Y, Z on every wire at once); the training
        # inputs' features are kept, so a test block needs only its own rows
        return 3 * n_rows


def _torch_only(backend, model: str) -> None:
    refuse_shots(backend, model)
    if backend_name(backend) != "torch":
        raise ConfigError(
            f"model={model} computes its kernel with hqexp's simulator (backend=torch), "
            f"not backend={backend_name(backend)}"
        )


class QuantumKitchenSinks(FittedClassifier):
    """Wilson et al. 2018 as the paper runs it: ``n_episodes`` random affine maps ``ω x + β`` of the
    [−1, 1]-scaled input onto ``n_qfeatures`` angles (``full``: d, ``half``: ⌈d/2⌉), each through
    one shot of an RX + CNOT circuit; the concatenated bits feed a logistic regression (no penalty)."""

    name = "quantum_kitchen_sinks"
    paper_name = "QuantumKitchenSinks"
    paper_keys = {"n_episodes": "model.n_episodes", "n_qfeatures": "model.n_qfeatures"}

    def __init__(
        self,
        n_episodes: int = 100,
        n_qfeatures: str | int = "full",
        var: float = 1.0,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
        backend: Mapping | str | None = None,
    ) -> None:
        self.n_episodes, self.n_qfeatures, self.var, self.scaling = n_episodes, n_qfeatures, var, scaling
        self.n_features, self.n_classes, self.random_state, self.backend = n_features, n_classes, random_state, backend
        positive(n_episodes, "n_episodes", self.name, integer=True)
        positive(var, "var", self.name)
        if not (n_qfeatures in ("full", "half") or (isinstance(n_qfeatures, int) and n_qfeatures > 0)):
            raise ConfigError(
                f"model={self.name}: n_qfeatures must be full, half or a positive int, got {n_qfeatures!r}"
            )
        _torch_only(backend, self.name)

    def _qubits(self, d: int) -> int:
        return {"full": d, "half": math.ceil(d / 2)}.get(self.n_qfeatures, self.n_qfeatures)

    def _bits(self, X) -> np.ndarray:
        Xs = self.scaler_.transform(np.asarray(X, dtype=np.float64)) * self.scaling
        angles = np.einsum("eqd,nd->neq", self.omegas_, Xs) + self.betas_[None]  # [N, E, q]
        bits = qk.kitchen_sink_bits(angles.reshape(-1, angles.shape[-1]), self.generator_)
        self.circuits_["predict" if hasattr(self, "linear_") else "fit"] += angles.shape[0] * angles.shape[1]
        return bits.numpy().reshape(len(Xs), -1).astype(np.float64)

    def fit(self, X, y):
        from sklearn.linear_model import LogisticRegression

        X = np.asarray(X, dtype=np.float64)
        rng = np.random.default_rng(self.random_state)
        lin_seed = int(rng.integers(100000))
        d = X.shape[1]
        q = self._qubits(d)
        self.omegas_ = rng.normal(size=(self.n_episodes, q, d)) * math.sqrt(self.var)
        self.betas_ = 2 * np.pi * rng.uniform(size=(self.n_episodes, q))
        self.generator_ = torch.Generator().manual_seed(int(rng.integers(2**31)))
        self.scaler_ = minmax(X, -1.0, 1.0)
        self.circuits_ = {"fit": 0, "predict": 0}
        if hasattr(self, "linear_"):
            del self.linear_
        features = self._bits(X)
        # no penalty, as the paper's (C = inf: scikit-learn's spelling of penalty=None since 1.8)
        self.linear_ = LogisticRegression(C=np.inf, solver="lbfgs", tol=1e-3, random_state=lin_seed)
        self.linear_.fit(features, y)
        self.classes_ = self.linear_.classes_
        return self

    def predict_with_proba(self, X) -> tuple[np.ndarray, np.ndarray]:
        F = self._bits(X)
        return self.linear_.predict(F), self.linear_.predict_proba(F)

    def predict(self, X) -> np.ndarray:
        return self.linear_.predict(self._bits(X))

    def predict_proba(self, X) -> np.ndarray:
        return self.linear_.predict_proba(self._bits(X))

    def facts(self) -> dict[str, float]:
        return {"params/total": float(self.linear_.coef_.size + self.linear_.intercept_.size)}
