"""Five variational classifiers of Bowles, Ahmed & Schuld 2024, with the paper's definitions
(circuits, input transforms, losses, initial distributions; github XanaduAI/qml-benchmarks
``models/*.py``, read for the definitions, our own code), trained by the paper's loop
(:mod:`hqexp.models.paper_training`) on hqexp's gate-level simulator (:mod:`hqexp.quantum.gates`).

* ``DressedQuantumCircuitClassifier`` (Mari et al. 2020): standardised inputs → linear + tanh·π/2 →
  H, RY(x) → ``n_layers`` × (RY(θ), CNOT ring) → ⟨Z_i⟩ → linear → softmax cross-entropy.
* ``CircuitCentricClassifier`` (Schuld et al. 2020): padded, normalised inputs, ``n_input_copies``
  tensor copies amplitude-embedded → StronglyEntanglingLayers → ⟨Z_0⟩ + b, square loss.
* ``IQPVariationalClassifier`` (Havlíček et al. 2019): IQP embedding → StronglyEntanglingLayers (CZ)
  → ⟨Z_0 Z_1⟩, loss = mean probability of the wrong label (1 − y f)/2.
* ``SeparableVariationalClassifier``: per qubit ``encoding_layers`` × (Rot(θ), RY(x)), Rot(θ);
  f = mean ⟨Z_i⟩, logistic loss on 6 f — no entanglement anywhere.
* ``TreeTensorClassifier`` (Grant et al. 2018): amplitude embedding on 2^m qubits, a binary tree of
  RY + CNOT → ⟨Z_0⟩ + b, square loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from hqexp.errors import ConfigError
from hqexp.models.fitted import minmax, positive
from hqexp.models.paper_training import PaperVariational
from hqexp.quantum import gates
from hqexp.quantum.kernels import iqp_states
from hqexp.quantum.templates.base import rotation_matrix

TRAINING_KEYS = {k: f"model.{k}" for k in ("learning_rate", "batch_size")}
#: the states' precision while training: complex64 halves the time of the 10-qubit circuits, and a
#: stochastic optimiser's steps do not need more (the circuits agree with PennyLane to 1e-6 so)
CDTYPE = torch.complex64


def _uniform_angles(shape, g) -> torch.Tensor:
    return (2 * math.pi * torch.rand(shape, generator=g, dtype=torch.float64)).requires_grad_()


def _padded_normalised(X: np.ndarray, n_amplitudes: int, scaling: float) -> np.ndarray:
    """The paper's amplitude-embedding transform: pad with 1/2^k to 2^k entries, then normalise."""
    X = X * scaling
    pad = np.ones((len(X), n_amplitudes - X.shape[1])) / n_amplitudes
    Xp = np.c_[X, pad]
    return Xp / np.linalg.norm(Xp, axis=1, keepdims=True)


class _Common(PaperVariational):
    def _init_common(
        self, learning_rate, batch_size, max_steps, convergence_interval, scaling, n_features, n_classes, random_state
    ):
        self.learning_rate, self.batch_size, self.max_steps = learning_rate, batch_size, max_steps
        self.convergence_interval, self.scaling = convergence_interval, scaling
        self.n_features, self.n_classes, self.random_state = n_features, n_classes, random_state


class DressedQuantumCircuitClassifier(_Common):
    """Mari et al. 2020, as the paper runs it (``n_qubits = d``)."""

    name = "dressed_quantum_circuit"
    paper_name = "DressedQuantumCircuitClassifier"
    paper_keys = {**TRAINING_KEYS, "n_layers": "model.n_layers"}

    def __init__(
        self,
        n_layers: int = 3,
        learning_rate: float = 0.001,
        batch_size: int = 32,
        max_steps: int = 10000,
        convergence_interval: int = 200,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
    ) -> None:
        self.n_layers = n_layers
        self._init_common(
            learning_rate, batch_size, max_steps, convergence_interval, scaling, n_features, n_classes, random_state
        )
        positive(n_layers, "n_layers", self.name, integer=True)

    def _prepare(self, X, fit):
        from sklearn.preprocessing import StandardScaler

        if fit:
            self.scaler_ = StandardScaler().fit(X)
        return torch.as_tensor(self.scaler_.transform(X) * self.scaling)

    def _init_params(self, d, g):
        self.n_qubits_ = d
        normal = lambda *s: (torch.randn(*s, generator=g, dtype=torch.float64) / d).requires_grad_()  # noqa: E731
        return {"circuit": _uniform_angles((self.n_layers, d), g), "input": normal(d, d), "output": normal(2, d)}

    def _ring(self, n: int) -> list[tuple[int, int]]:
        return [] if n == 1 else [(0, 1)] if n == 2 else [(i, (i + 1) % n) for i in range(n)]

    def _forward(self, p, x):
        n = self.n_qubits_
        angles = torch.tanh(x @ p["input"].T) * (math.pi / 2)
        half = (angles / 2)[..., None]  # RY(a)·H|0> = (cos a/2 − sin a/2, sin a/2 + cos a/2)/√2
        q = torch.cat((torch.cos(half) - torch.sin(half), torch.sin(half) + torch.cos(half)), -1) / math.sqrt(2)
        psi = q[:, 0]
        for i in range(1, n):
            psi = (psi[:, :, None] * q[:, i, None, :]).reshape(len(x), -1)
        psi = psi.to(CDTYPE)
        ry = rotation_matrix("RY", p["circuit"]).to(psi.dtype)
        for layer in range(self.n_layers):
            for w in range(n):
                psi = gates.apply_1q(psi, n, w, ry[layer, w])
            for c, t in self._ring(n):
                psi = gates.cnot(psi, n, c, t)
        return gates.z_expvals(psi, n).to(p["output"].dtype) @ p["output"].T  # [B, 2] logits

    def _loss(self, out, y, params):
        return F.cross_entropy(out, (y > 0).long())

    def _proba(self, out):
        return out.softmax(-1)

    def _circuit_params(self):
        return self.n_layers * self.n_qubits_


class CircuitCentricClassifier(_Common):
    """Schuld et al. 2020, as the paper runs it: ``n_input_copies × ⌈log2 d⌉`` qubits."""

    name = "circuit_centric"
    paper_name = "CircuitCentricClassifier"
    paper_keys = {**TRAINING_KEYS, "n_layers": "model.n_layers", "n_input_copies": "model.n_input_copies"}

    def __init__(
        self,
        n_input_copies: int = 2,
        n_layers: int = 4,
        learning_rate: float = 0.001,
        batch_size: int = 32,
        max_steps: int = 10000,
        convergence_interval: int = 200,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
    ) -> None:
        self.n_input_copies, self.n_layers = n_input_copies, n_layers
        self._init_common(
            learning_rate, batch_size, max_steps, convergence_interval, scaling, n_features, n_classes, random_state
        )
        positive(n_input_copies, "n_input_copies", self.name, integer=True)
        positive(n_layers, "n_layers", self.name, integer=True)

    def _prepare(self, X, fit):
        k = max(1, math.ceil(math.log2(X.shape[1])))
        self.n_qubits_ = self.n_input_copies * k
        x = torch.as_tensor(_padded_normalised(X, 2**k, self.scaling))
        out = x
        for _ in range(self.n_input_copies - 1):  # the tensor copies, as the paper's kron
            out = (out[:, :, None] * x[:, None, :]).reshape(len(x), -1)
        return gates.amplitude_states(out, self.n_qubits_).to(CDTYPE)

    def _init_params(self, d, g):
        return {
            "weights": _uniform_angles((self.n_layers, self.n_qubits_, 3), g),
            "b": torch.tensor(0.01, dtype=torch.float64, requires_grad=True),
        }

    def _forward(self, p, psi):
        psi = gates.strongly_entangling(psi, self.n_qubits_, p["weights"])
        return gates.z_expvals(psi, self.n_qubits_)[:, 0].double() + p["b"]

    def _loss(self, out, y, params):
        return (0.5 * (out - y).square()).mean()  # optax.l2_loss

    def _circuit_params(self):
        return 3 * self.n_layers * self.n_qubits_


class IQPVariationalClassifier(_Common):
    """Havlíček et al. 2019, as the paper runs it (``n_qubits = d``, at least 2)."""

    name = "iqp_variational"
    paper_name = "IQPVariationalClassifier"
    paper_keys = {**TRAINING_KEYS, "n_layers": "model.n_layers", "repeats": "model.repeats"}

    def __init__(
        self,
        repeats: int = 1,
        n_layers: int = 10,
        learning_rate: float = 0.001,
        batch_size: int = 32,
        max_steps: int = 10000,
        convergence_interval: int = 200,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
    ) -> None:
        self.repeats, self.n_layers = repeats, n_layers
        self._init_common(
            learning_rate, batch_size, max_steps, convergence_interval, scaling, n_features, n_classes, random_state
        )
        positive(repeats, "repeats", self.name, integer=True)
        positive(n_layers, "n_layers", self.name, integer=True)
        if n_features is not None and n_features < 2:
            raise ConfigError("model=iqp_variational measures Z_0 Z_1: it needs at least 2 features")

    def _prepare(self, X, fit):
        if fit:
            self.scaler_ = minmax(X, -math.pi / 2, math.pi / 2)
        self.n_qubits_ = X.shape[1]
        return iqp_states(self.scaler_.transform(X) * self.scaling, self.repeats).to(CDTYPE)  # fixed: computed once

    def _init_params(self, d, g):
        return {"weights": _uniform_angles((self.n_layers, d, 3), g)}

    def _forward(self, p, psi):
        psi = gates.strongly_entangling(psi, self.n_qubits_, p["weights"], imprimitive="cz")
        return gates.zz_expval(psi, self.n_qubits_).double()

    def _loss(self, out, y, params):
        return ((1 - out * y) / 2).mean()

    def _circuit_params(self):
        return 3 * self.n_layers * self.n_qubits_


class SeparableVariationalClassifier(_Common):
    """The paper's entanglement-free variational model: one qubit per feature, each on its own."""

    name = "separable_variational"
    paper_name = "SeparableVariationalClassifier"
    paper_keys = {**TRAINING_KEYS, "encoding_layers": "model.encoding_layers"}

    def __init__(
        self,
        encoding_layers: int = 1,
        learning_rate: float = 0.001,
        batch_size: int = 32,
        max_steps: int = 10000,
        convergence_interval: int = 200,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
    ) -> None:
        self.encoding_layers = encoding_layers
        self._init_common(
            learning_rate, batch_size, max_steps, convergence_interval, scaling, n_features, n_classes, random_state
        )
        positive(encoding_layers, "encoding_layers", self.name, integer=True)

    def _prepare(self, X, fit):
        if fit:
            self.scaler_ = minmax(X, -math.pi / 2, math.pi / 2)
        self.n_qubits_ = X.shape[1]
        return torch.as_tensor(self.scaler_.transform(X) * self.scaling)

    def _init_params(self, d, g):
        return {"weights": _uniform_angles((d, self.encoding_layers + 1, 3), g)}

    def _forward(self, p, x):
        w = p["weights"]
        R = gates.rot(w[..., 0], w[..., 1], w[..., 2]).to(torch.complex128)  # [n, L+1, 2, 2]
        Y = rotation_matrix("RY", x).to(torch.complex128)  # [B, n, 2, 2]
        v = torch.zeros(x.shape[0], x.shape[1], 2, 1, dtype=torch.complex128)
        v[..., 0, 0] = 1
        for layer in range(self.encoding_layers):
            v = Y @ (R[:, layer] @ v)
        v = R[:, self.encoding_layers] @ v
        z = v[..., 0, 0].abs().square() - v[..., 1, 0].abs().square()
        return z.mean(-1)

    def _loss(self, out, y, params):
        return F.binary_cross_entropy_with_logits(6 * out, (y > 0).to(out.dtype))

    def _circuit_params(self):
        return 3 * (self.encoding_layers + 1) * self.n_qubits_


class TreeTensorClassifier(_Common):
    """Grant et al. 2018, as the paper runs it: 2^m qubits, m = ⌈log2 ⌈log2 d⌉⌉."""

    name = "tree_tensor"
    paper_name = "TreeTensorClassifier"
    paper_keys = dict(TRAINING_KEYS)

    def __init__(
        self,
        learning_rate: float = 0.01,
        batch_size: int = 32,
        max_steps: int = 10000,
        convergence_interval: int = 200,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
    ) -> None:
        self._init_common(
            learning_rate, batch_size, max_steps, convergence_interval, scaling, n_features, n_classes, random_state
        )

    def _prepare(self, X, fit):
        d = X.shape[1]
        self.n_qubits_ = 1 if d == 1 else 2 ** math.ceil(math.log2(math.ceil(math.log2(d))))
        x = torch.as_tensor(_padded_normalised(X, 2**self.n_qubits_, self.scaling))
        return gates.amplitude_states(x, self.n_qubits_).to(CDTYPE)

    def _init_params(self, d, g):
        bias = (0.1 * torch.randn(1, generator=g, dtype=torch.float64)).requires_grad_()
        return {"weights": _uniform_angles((2 * self.n_qubits_ - 1,), g), "bias": bias}

    def _forward(self, p, psi):
        n = self.n_qubits_
        ry = rotation_matrix("RY", p["weights"]).to(psi.dtype)
        count = 0
        for layer in range(int(math.log2(n))):
            for q in range(0, n, 2**layer):
                psi = gates.apply_1q(psi, n, q, ry[count])
                count += 1
            for i in range(0, n, 2 ** (layer + 1)):
                psi = gates.cnot(psi, n, i + 2**layer, i)
        psi = gates.apply_1q(psi, n, 0, ry[count])
        return gates.z_expvals(psi, n)[:, 0].double() + p["bias"]

    def _loss(self, out, y, params):
        return (out - y).square().mean()

    def _circuit_params(self):
        return 2 * self.n_qubits_ - 1


class DataReuploadingClassifier(_Common):
    """Pérez-Salinas et al. 2020, as the paper runs it: ⌈d/3⌉ qubits, the inputs (zero-padded to a
    multiple of 3) re-uploaded in every layer as ``Rot(x ⊙ ω_l)`` then a trainable ``Rot(θ_l)``, CZs
    on (0,1), (2,3), … in even layers and (1,2), (3,4), … in odd ones, a last ``Rot(x ⊙ ω_L + θ_L)``;
    the paper's weighted fidelity loss (its eq. 23) on the first ``observable_weight`` qubits
    (``single``: 1, ``half``: n // 2, ``full``: n), whose mean ⟨Z⟩ gives the class probabilities."""

    name = "data_reuploading"
    paper_name = "DataReuploadingClassifier"
    paper_keys = {**TRAINING_KEYS, "n_layers": "model.n_layers", "observable_type": "model.observable_type"}

    def __init__(
        self,
        n_layers: int = 4,
        observable_type: str = "single",
        learning_rate: float = 0.05,
        batch_size: int = 32,
        max_steps: int = 10000,
        convergence_interval: int = 200,
        scaling: float = 1.0,
        n_features: int | None = None,
        n_classes: int = 2,
        random_state: int = 42,
    ) -> None:
        self.n_layers, self.observable_type = n_layers, observable_type
        self._init_common(
            learning_rate, batch_size, max_steps, convergence_interval, scaling, n_features, n_classes, random_state
        )
        positive(n_layers, "n_layers", self.name, integer=True)
        if observable_type not in ("single", "half", "full"):
            raise ConfigError(
                f"model={self.name}: observable_type must be single, half or full, got {observable_type!r}"
            )

    def _prepare(self, X, fit):
        if fit:
            self.scaler_ = minmax(X, -math.pi / 2, math.pi / 2)
        Xs = self.scaler_.transform(X) * self.scaling
        Xs = np.pad(Xs, ((0, 0), (0, (3 - Xs.shape[1]) % 3)))
        self.n_qubits_ = Xs.shape[1] // 3
        n = self.n_qubits_
        self.observable_weight_ = {"single": 1, "half": max(1, n // 2), "full": n}[self.observable_type]
        return torch.as_tensor(Xs)

    def _init_params(self, d, g):
        n, L = self.n_qubits_, self.n_layers
        uniform = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64).requires_grad_()  # noqa: E731
        alphas = torch.ones(2, self.observable_weight_, dtype=torch.float64, requires_grad=True)
        return {"thetas": uniform(n, L + 1, 3), "omegas": uniform(L + 1, 3 * n), "alphas": alphas}

    def _forward(self, p, x):
        n, B = self.n_qubits_, x.shape[0]
        psi = gates.zero_state(B, n, CDTYPE)
        for layer in range(self.n_layers + 1):
            a = (x * p["omegas"][layer]).reshape(B, n, 3)
            if layer == self.n_layers:
                a = a + p["thetas"][:, layer]  # the last layer merges data and trainable angles
            U = gates.rot(a[..., 0], a[..., 1], a[..., 2]).to(CDTYPE)  # [B, n, 2, 2]
            for q in range(n):
                psi = gates.apply_1q(psi, n, q, U[:, q])
                if layer < self.n_layers:
                    t = p["thetas"][q, layer]
                    psi = gates.apply_1q(psi, n, q, gates.rot(t[0], t[1], t[2]).to(CDTYPE))
            if layer < self.n_layers:
                for c in range(layer % 2, n - 1, 2):
                    psi = gates.cz(psi, n, c, c + 1)
        return gates.z_expvals(psi, n)[:, : self.observable_weight_].double()  # [B, w]

    def _loss(self, out, y, params):
        p0, p1 = (1 - out) / 2, (1 + out) / 2  # the paper's names: "fidelity with |0>" and "with |1>"
        y0, y1 = ((1 - y) / 2)[:, None], ((1 + y) / 2)[:, None]
        a = params["alphas"]
        return 0.5 * ((a[0] * p0 - y0).square() + (a[1] * p1 - y1).square()).sum() / len(y)

    def _proba(self, out):
        return super()._proba(out.mean(-1))

    def _circuit_params(self):
        return 3 * (2 * self.n_layers + 1) * self.n_qubits_
