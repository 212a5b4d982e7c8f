"""Small tabular classification sets: iris, breast_cancer, wine (shipped with
scikit-learn) and ``genomics_synthetic`` (a generated SNP matrix).

Split: stratified, seeded train/val/test, or fold ``fold`` of a stratified k-fold
(``cv_folds``) as the test set. Every transform — standardisation, PCA, SMOTE — is
fitted on the training split only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from hqexp.data.base import DataInfo, SplitDataModule
from hqexp.errors import ConfigError

IMBALANCE = ("none", "smote", "class_weights")


def genomics_synthetic(
    n: int = 600, n_snps: int = 500, n_pops: int = 3, fst: float = 0.1, n_causal: int = 20, seed: int = 0
):
    """A SYNTHETIC genotype matrix (0/1/2 minor-allele counts) with population structure.

    Balding–Nichols model: ancestral allele frequencies p ~ U(0.05, 0.5); population k
    draws its frequencies from Beta(p(1−F)/F, (1−p)(1−F)/F); genotypes are Binomial(2, p_k).
    The binary phenotype is a liability threshold on ``n_causal`` SNPs plus a
    population effect, so a classifier must use both the causal SNPs and structure.
    """
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.5, n_snps)
    a, b = p * (1 - fst) / fst, (1 - p) * (1 - fst) / fst
    freqs = rng.beta(a, b, size=(n_pops, n_snps))
    pop = rng.integers(0, n_pops, n)
    X = rng.binomial(2, freqs[pop]).astype(np.float32)
    causal = rng.choice(n_snps, n_causal, replace=False)
    beta = rng.normal(0, 1, n_causal)
    g = (X[:, causal] - X[:, causal].mean(0)) @ beta
    liability = g / g.std() + 0.5 * (pop - (n_pops - 1) / 2) + rng.normal(0, 0.7, n)
    y = (liability > np.median(liability)).astype(np.int64)
    return X, y, ["control", "case"]


def load_tabular(name: str, seed: int = 0):
    """``(X, y, class names)`` of a named tabular set (scikit-learn's, or the synthetic genomics one)."""
    from sklearn import datasets

    loaders = {
        "iris": datasets.load_iris,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
    }
    if name == "genomics_synthetic":
        return genomics_synthetic(seed=seed)
    if name not in loaders:
        raise ConfigError(f"unknown tabular dataset {name!r}; choose one of: {', '.join(loaders)}, genomics_synthetic")
    bunch = loaders[name]()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64), list(map(str, bunch.target_names))


# Binary views of iris: which original classes are kept, in label order 0, 1.
IRIS_BINARY = {
    "versicolor_virginica": ("versicolor", "virginica"),  # the hard, overlapping pair
    "setosa_versicolor": ("setosa", "versicolor"),
}


class TabularDataModule(SplitDataModule):
    """A scikit-learn dataset as a LightningDataModule."""

    SUPPORTS = frozenset({"cv", "imbalance"})

    def __init__(
        self,
        name: str,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        binary: str | None = None,
        num_workers: int = 0,
        seed: int = 0,
        pca_components: int | None = None,
        data_seed: int = 0,
        cv_folds: int | None = None,
        fold: int | None = None,
        imbalance: str = "none",
        smote_k: int = 5,
    ) -> None:
        super().__init__()
        if imbalance not in IMBALANCE:
            raise ConfigError(f"imbalance.method must be one of {', '.join(IMBALANCE)}, got {imbalance!r}")
        if imbalance == "smote" and (not isinstance(smote_k, int) or smote_k < 1):
            raise ConfigError(f"imbalance.smote_k must be an int >= 1, got {smote_k!r}")
        if fold is not None:
            if not isinstance(cv_folds, int) or cv_folds < 2:
                raise ConfigError(f"cv.folds must be an int >= 2 for k-fold CV, got {cv_folds!r}")
            if not 0 <= fold < cv_folds:
                raise ConfigError(f"cv.fold must be in 0..{cv_folds - 1}, got {fold}")
        if pca_components is not None and (not isinstance(pca_components, int) or pca_components < 1):
            raise ConfigError(f"dataset.pca_components must be a positive int or null, got {pca_components!r}")
        self.pca_components, self.data_seed = pca_components, data_seed
        self.cv_folds, self.fold, self.imbalance, self.smote_k = cv_folds, fold, imbalance, smote_k
        self.class_weights: torch.Tensor | None = None
        for key, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 < frac < 1:
                raise ConfigError(f"dataset.{key} must be in (0, 1), got {frac}")
        if val_fraction + test_fraction >= 0.9:
            raise ConfigError("dataset.val_fraction + dataset.test_fraction must leave >= 10% for training")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"dataset.batch_size must be a positive int, got {batch_size!r}")
        if binary is not None and (name != "iris" or binary not in IRIS_BINARY):
            raise ConfigError(
                f"dataset.binary={binary!r} is not available for {name}; "
                f"iris takes one of: {', '.join(IRIS_BINARY)} (or null)"
            )
        self.name, self.batch_size, self.binary = name, batch_size, binary
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.num_workers, self.seed = num_workers, seed
        self._splits: dict[str, TensorDataset] = {}
        self.info: DataInfo | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        X, y, names = load_tabular(self.name, self.data_seed)
        if self.binary:
            keep = [names.index(c) for c in IRIS_BINARY[self.binary]]
            mask = np.isin(y, keep)
            X, y = X[mask], np.searchsorted(keep, y[mask])
            names = list(IRIS_BINARY[self.binary])
        if self.fold is not None:
            X_tr, X_te, y_tr, y_te = self._fold_split(X, y, names)
            val = self.val_fraction
        else:
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=self.test_fraction, stratify=y, random_state=self.seed
            )
            val = self.val_fraction / (1 - self.test_fraction)
        X_tr, X_va, y_tr, y_va = train_test_split(X_tr, y_tr, test_size=val, stratify=y_tr, random_state=self.seed)
        scaler = StandardScaler().fit(X_tr)  # fitted on training data only
        transform = scaler.transform
        if self.pca_components:
            from sklearn.decomposition import PCA

            k = min(self.pca_components, X_tr.shape[1], len(X_tr))
            z_tr = scaler.transform(X_tr)
            pca = PCA(k, random_state=self.seed).fit(z_tr)
            rescale = StandardScaler().fit(pca.transform(z_tr))
            transform = lambda A: rescale.transform(pca.transform(scaler.transform(A)))  # noqa: E731
        X_tr, X_va, X_te = transform(X_tr), transform(X_va), transform(X_te)
        X_tr, y_tr = self._rebalance(X_tr, y_tr, names)
        for split, (Xs, ys) in {"train": (X_tr, y_tr), "val": (X_va, y_va), "test": (X_te, y_te)}.items():
            self._splits[split] = TensorDataset(
                torch.from_numpy(np.asarray(Xs, dtype=np.float32)), torch.from_numpy(np.asarray(ys, dtype=np.int64))
            )
        self.info = DataInfo(X_tr.shape[1], len(names), tuple(names))

    def _fold_split(self, X, y, names):
        """Fold ``fold`` of a stratified, seeded ``cv_folds``-fold split as the test set."""
        from sklearn.model_selection import StratifiedKFold

        counts = np.bincount(y, minlength=len(names))
        smallest = int(counts.argmin())
        if self.cv_folds > counts[smallest]:
            raise ConfigError(
                f"cv.folds={self.cv_folds} is larger than the smallest class ({names[smallest]!r}: "
                f"{counts[smallest]} samples); use at most {counts[smallest]} folds"
            )
        skf = StratifiedKFold(self.cv_folds, shuffle=True, random_state=self.seed)
        tr, te = list(skf.split(X, y))[self.fold]
        return X[tr], X[te], y[tr], y[te]

    def _rebalance(self, X, y, names):
        """SMOTE on the training split only, or balanced class weights for the loss."""
        counts = np.bincount(y, minlength=len(names))
        if self.imbalance == "class_weights":
            self.class_weights = torch.tensor(len(y) / (len(names) * np.maximum(counts, 1)), dtype=torch.float32)
        elif self.imbalance == "smote":
            from imblearn.over_sampling import SMOTE

            small = int(counts.argmin())
            if counts[small] <= self.smote_k:
                raise ConfigError(
                    f"SMOTE with k_neighbors={self.smote_k} needs more than {self.smote_k} training samples in "
                    f"every class; {names[small]!r} has {counts[small]} (lower imbalance.smote_k or use "
                    "imbalance.method=class_weights)"
                )
            X, y = SMOTE(k_neighbors=self.smote_k, random_state=self.seed).fit_resample(X, y)
        return X, y
