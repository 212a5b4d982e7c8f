"""The dataset families of Bowles, Ahmed & Schuld, "Better than classical? The subtle art of
benchmarking quantum machine learning models" (arXiv:2403.07059, 2024), generated as the paper's
generation scripts do (github XanaduAI/qml-benchmarks, ``paper/benchmarks/generate_*.py``, Apache
2.0: read for the definitions, this is our own code).

Each script seeds NumPy's global generator once and then writes one train/test pair per value of
the family's difficulty parameter, in order; so the arrays of one file depend on every draw
before it. :func:`generate` replays a script from its seed up to the requested file with its own
``RandomState`` (the same stream as the global generator after ``np.random.seed``), including
scikit-learn's ``train_test_split(test_size=0.2)``, which draws from that generator too — the
arrays equal the files the scripts write (tested against files of the paper's repository).
With ``root``, the CSV files the scripts wrote are read instead (``mnist_pca`` only so).

Labels are -1 / +1 as in the paper; the data module maps them to classes 0 / 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqexp.data.base import DataInfo, SplitDataModule
from hqexp.errors import ConfigError, DataError


# ------------------------------------------------------------------ the generators
def linearly_separable(rng, n_samples: int, n_features: int, margin: float):
    """Uniform in [-1, 1]^d outside a margin around the hyperplane ⟨1, x⟩ = 0; label by its side."""
    w = np.ones(n_features)
    X = 2 * rng.rand(2 * n_samples, n_features) - 1
    X = np.array([x for x in X if abs(x @ w) > margin][:n_samples])
    y = np.where(X @ w > 0, -1, 1)
    return X, y


def hidden_manifold(rng, n_samples: int, n_features: int, manifold_dimension: int):
    """Gaussian points on a ``manifold_dimension``-dim manifold, embedded by a random feature map
    with a tanh; labels from a random one-layer network on the manifold, split at the median."""
    F = rng.normal(size=(manifold_dimension, n_features))
    C = rng.normal(size=(n_samples, manifold_dimension), loc=0, scale=1)
    biases = 2 * rng.uniform(size=(n_features,)) - 1
    X = np.tanh(C @ F / np.sqrt(manifold_dimension) - biases)
    W = rng.normal(size=(manifold_dimension, manifold_dimension))
    v = rng.normal(size=(manifold_dimension,))
    scores = np.array([v @ (np.tanh(W @ c) / np.sqrt(manifold_dimension)) for c in C])
    scores = scores - np.median(scores)
    return X, np.where(scores < 0, -1, 1)


def _fourier(rng, t: float, coeffs: np.ndarray, degree: int, noise: float) -> float:
    w = np.pi  # 0.5 · 2π
    out = coeffs[0, 0] + coeffs[0, 1]
    for k in range(1, degree + 1):
        out += coeffs[k, 0] * np.cos(k * w * t) + coeffs[k, 1] * np.sin(k * w * t)
    return out + rng.normal(loc=0, scale=noise)


def two_curves(rng, n_samples: int, n_features: int, degree: int, offset: float, noise: float):
    """Two noisy copies of one random Fourier curve in d dimensions, ``offset`` apart; standardised."""
    from sklearn.preprocessing import StandardScaler

    coeffs = rng.uniform(size=(n_features, degree + 1, 2))
    coeffs = coeffs / np.linalg.norm(coeffs)
    half = n_samples // 2
    curves = []
    for _ in range(2):
        P = np.zeros((half, n_features))
        for s in range(half):
            t = rng.rand()
            for i in range(n_features):
                P[s, i] = _fourier(rng, t, coeffs[i], degree, noise)
        curves.append(P)
    X = np.r_[curves[0], curves[1] + offset]
    return StandardScaler().fit_transform(X), np.array([-1] * half + [1] * half)


def hyperplanes_parity(rng, n_samples: int, n_features: int, n_hyperplanes: int, dim_hyperplanes: int):
    """Label = parity of the sides of ``n_hyperplanes`` random hyperplanes a Gaussian point in
    ``dim_hyperplanes`` dimensions lies on; balanced, embedded linearly in d dimensions, standardised."""
    from sklearn.preprocessing import StandardScaler

    weights = rng.uniform(size=(n_hyperplanes, dim_hyperplanes))
    biases = rng.uniform(size=(n_hyperplanes,))
    X = rng.normal(size=(4 * n_samples, dim_hyperplanes))
    # one dot product per point and plane, as the script computes them (a batched matmul may round
    # differently and flip a point lying on a plane)
    ones = np.array([sum(1 for w, b in zip(weights, biases) if np.dot(w, x) + b > 0) for x in X])
    y = np.where(ones % 2 == 0, 1, -1)
    half = n_samples // 2
    A, B = X[y == 1], X[y == -1]
    if len(A) < half or len(B) < half:
        raise DataError("hyperplanes_parity: too few samples of one parity drawn (the paper's assertion)")
    X = np.r_[A[:half], B[:half]] @ rng.uniform(size=(dim_hyperplanes, n_features))
    return StandardScaler().fit_transform(X), np.array([-1] * half + [1] * half)


def bars_and_stripes(rng, n_samples: int, height: int, width: int, noise_std: float):
    """±1 images of random bars (label -1) or stripes (+1) with Gaussian pixel noise, flattened."""
    X = -np.ones((n_samples, height, width))
    y = np.zeros(n_samples)
    for i in range(n_samples):
        if rng.rand() > 0.5:
            X[i, np.where(rng.rand(height) > 0.5)[0], :] = 1.0
            y[i] = 1
        else:
            X[i, :, np.where(rng.rand(width) > 0.5)[0]] = 1.0
            y[i] = -1
        X[i] = X[i] + rng.normal(0, noise_std, size=X[i].shape)
    return X.reshape(n_samples, -1), y


# ------------------------------------------------------------------ the scripts
@dataclass(frozen=True)
class Family:
    """One benchmark family: the script's seed, the parameter it varies and its values in script
    order, the file name of each value, and how one value's data is drawn."""

    folder: str
    seed: int
    key: str  # the difficulty parameter (a dataset.* key)
    values: tuple[int, ...]
    file: Callable[[int], str]
    draw: Callable | None  # (rng, value) -> (X, y); None: read from CSV only
    after: str | None = None  # a family whose loop runs first in the same script (same generator)
    split: bool = True  # train_test_split(test_size=0.2) after each draw (bars & stripes draws both)


def _two_curves_diff(rng, degree):
    return two_curves(rng, 300, 10, degree, 1 / (2 * degree), 0.01)


FAMILIES: dict[str, Family] = {
    "linearly_separable": Family(
        "linearly_separable",
        42,
        "n_features",
        tuple(range(2, 21)),
        lambda d: f"linearly_separable_{d}d",
        lambda rng, d: linearly_separable(rng, 300, d, 0.02 * d),
    ),
    "hidden_manifold": Family(
        "hidden_manifold",
        3,
        "n_features",
        tuple(range(2, 21)),
        lambda d: f"hidden_manifold-6manifold-{d}d",
        lambda rng, d: hidden_manifold(rng, 300, d, 6),
    ),
    "hidden_manifold_diff": Family(
        "hidden_manifold_diff",
        3,
        "manifold_dimension",
        tuple(range(2, 21)),
        lambda m: f"hidden_manifold-10d-{m}manifold",
        lambda rng, m: hidden_manifold(rng, 300, 10, m),
        after="hidden_manifold",
    ),
    "two_curves": Family(
        "two_curves_diff",  # the script writes this family into two_curves_diff/ too
        3,
        "n_features",
        tuple(range(2, 21)),
        lambda d: f"two_curves-5degree-0.1offset-{d}d",
        lambda rng, d: two_curves(rng, 300, d, 5, 0.1, 0.01),
    ),
    "two_curves_diff": Family(
        "two_curves_diff",
        3,
        "degree",
        tuple(range(2, 21)),
        lambda k: f"two_curves-10d-{k}degree",
        _two_curves_diff,
        after="two_curves",
    ),
    "hyperplanes_diff": Family(
        "hyperplanes_diff",
        1,
        "n_hyperplanes",
        tuple(range(2, 21)),
        lambda k: f"hyperplanes-10d-from3d-{k}n",
        lambda rng, k: hyperplanes_parity(rng, 300, 10, k, 3),
    ),
    "bars_and_stripes": Family(
        "bars_and_stripes",
        42,
        "size",
        (4, 8, 16, 32),
        lambda s: f"bars_and_stripes_{s}_x_{s}_0.5noise",
        None,
        split=False,
    ),
    "mnist_pca": Family("mnist_pca", 0, "n_features", tuple(range(2, 21)), lambda d: f"mnist_3-5_{d}d", None),
}


def _split(rng, X, y):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=0.2, random_state=rng)


def generate(family: str, value: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, X_test, y_train, y_test)`` of ``family`` at ``value``, as its script writes them."""
    fam = check(family, value)
    if family == "bars_and_stripes":  # reseeded for every size; train drawn, then test
        rng = np.random.RandomState(fam.seed)
        X_tr, y_tr = bars_and_stripes(rng, 1000, value, value, 0.5)
        X_te, y_te = bars_and_stripes(rng, 200, value, value, 0.5)
        return X_tr, X_te, y_tr, y_te
    if fam.draw is None:
        raise ConfigError(f"dataset.family={family} is read from its CSV files only: set dataset.root")
    rng = np.random.RandomState(fam.seed)
    if fam.after is not None:  # the first loop of the same script consumed the generator before
        first = FAMILIES[fam.after]
        for v in first.values:
            _split(rng, *first.draw(rng, v))
    for v in fam.values:
        out = _split(rng, *fam.draw(rng, v))
        if v == value:
            X_tr, X_te, y_tr, y_te = out
            return np.asarray(X_tr), np.asarray(X_te), np.asarray(y_tr), np.asarray(y_te)
    raise AssertionError("unreachable: value checked")


def check(family: str, value) -> Family:
    """The family, after one-line checks of its name and difficulty value."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown dataset.family {family!r}; choose one of: {', '.join(FAMILIES)}")
    fam = FAMILIES[family]
    if isinstance(value, bool) or not isinstance(value, int) or value not in fam.values:
        span = (
            f"{fam.values[0]}…{fam.values[-1]}"
            if fam.values == tuple(range(2, 21))
            else ", ".join(map(str, fam.values))
        )
        raise ConfigError(f"dataset.{fam.key} for family {family} must be one of {span}, got {value!r}")
    return fam


def read(root: str | Path, family: str, value: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The train/test CSV pair the script wrote under ``root`` (features…, label per row)."""
    fam = check(family, value)
    base = Path(root)
    out = []
    for split in ("train", "test"):
        candidates = [base / fam.folder / f"{fam.file(value)}_{split}.csv", base / f"{fam.file(value)}_{split}.csv"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DataError(f"dataset.root={root}: no {candidates[0].relative_to(base)} (nor {candidates[1].name})")
        try:
            data = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as exc:
            raise DataError(f"{path}: not a CSV of numbers ({str(exc).splitlines()[0]})") from None
        if data.shape[1] < 2 or not np.isin(data[:, -1], (-1, 1)).all():
            raise DataError(f"{path}: the last column must be the label, -1 or 1")
        out.append((data[:, :-1], data[:, -1]))
    (X_tr, y_tr), (X_te, y_te) = out
    if X_tr.shape[1] != X_te.shape[1]:
        raise DataError(f"{fam.file(value)}: train has {X_tr.shape[1]} features, test {X_te.shape[1]}")
    return X_tr, X_te, y_tr, y_te


def family_value(family: str, given: dict) -> int:
    """The difficulty value a data module of ``family`` uses: the one its key names in ``given``
    (``dataset.*`` values), else the family's default (4 features; bars and stripes 4 x 4); checked."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown dataset.family {family!r}; choose one of: {', '.join(FAMILIES)}")
    fam = FAMILIES[family]
    value = given.get(fam.key)
    value = value if value is not None else fam.values[0 if fam.key == "size" else 2]
    check(family, value)
    return value


# ------------------------------------------------------------------ the data module
class QMLBenchmarkDataModule(SplitDataModule):
    """``dataset=qml_benchmark``: one file pair of a family (generated, or read from ``root``).

    The paper's 80/20 train/test split is kept as it is; validation is a stratified
    ``val_fraction`` of the training part (seeded by the run's seed). Features are used as the
    scripts wrote them (the paper's models scale their own inputs); labels -1 / +1 → 0 / 1.
    """

    def __init__(
        self,
        family: str = "linearly_separable",
        n_features: int | None = None,
        manifold_dimension: int | None = None,
        degree: int | None = None,
        n_hyperplanes: int | None = None,
        size: int | None = None,
        root: str | None = None,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        given = {"n_features": n_features, "manifold_dimension": manifold_dimension, "degree": degree}
        given.update({"n_hyperplanes": n_hyperplanes, "size": size})
        if family not in FAMILIES:
            raise ConfigError(f"unknown dataset.family {family!r}; choose one of: {', '.join(FAMILIES)}")
        fam = FAMILIES[family]
        value = family_value(family, given)
        stray = sorted(k for k, v in given.items() if v is not None and k != fam.key)
        if stray:
            raise ConfigError(
                f"dataset.family={family} varies dataset.{fam.key}; unset dataset.{', dataset.'.join(stray)}"
            )
        if not 0 < val_fraction < 0.5:
            raise ConfigError(f"dataset.val_fraction must be in (0, 0.5), got {val_fraction}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"dataset.batch_size must be a positive int, got {batch_size!r}")
        self.family, self.value, self.root = family, value, root
        self.batch_size, self.val_fraction, self.num_workers, self.seed = batch_size, val_fraction, num_workers, seed
        self._splits: dict = {}
        self.info = None

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        import torch
        from sklearn.model_selection import train_test_split
        from torch.utils.data import TensorDataset

        if self.root:
            X_tr, X_te, y_tr, y_te = read(self.root, self.family, self.value)
        else:
            X_tr, X_te, y_tr, y_te = generate(self.family, self.value)
        y_tr, y_te = (np.asarray(y_tr) > 0).astype(np.int64), (np.asarray(y_te) > 0).astype(np.int64)
        X_tr, X_va, y_tr, y_va = train_test_split(
            np.asarray(X_tr), y_tr, test_size=self.val_fraction, stratify=y_tr, random_state=self.seed
        )
        for split, (Xs, ys) in {"train": (X_tr, y_tr), "val": (X_va, y_va), "test": (np.asarray(X_te), y_te)}.items():
            self._splits[split] = TensorDataset(
                torch.from_numpy(np.asarray(Xs, dtype=np.float32)), torch.from_numpy(np.asarray(ys, dtype=np.int64))
            )
        self.info = DataInfo(X_tr.shape[1], 2, ("-1", "+1"))
