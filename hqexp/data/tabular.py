"""Small tabular classification sets shipped with scikit-learn: iris, breast_cancer, wine.

Split: stratified, seeded train/val/test; standardisation fitted on train only.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from hqexp.errors import ConfigError


def _load(name: str):
    from sklearn import datasets

    loaders = {
        "iris": datasets.load_iris,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
    }
    if name not in loaders:
        raise ConfigError(f"unknown tabular dataset {name!r}; choose one of: {', '.join(loaders)}")
    bunch = loaders[name]()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64), list(map(str, bunch.target_names))


# Binary views of iris: which original classes are kept, in label order 0, 1.
IRIS_BINARY = {
    "versicolor_virginica": ("versicolor", "virginica"),  # the hard, overlapping pair
    "setosa_versicolor": ("setosa", "versicolor"),
}


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the data to build itself."""

    n_features: int
    n_classes: int
    class_names: tuple[str, ...]
    task: str = "classification"


class SplitDataModule(L.LightningDataModule):
    """Loaders over ``self._splits`` ("train" / "val" / "test" datasets), built in ``setup``.

    Subclasses set ``batch_size``, ``num_workers``, ``seed`` and fill ``_splits``; the
    training loader shuffles with a generator seeded from ``seed``, so order is reproducible.
    """

    batch_size: int
    num_workers: int
    seed: int
    _splits: dict

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(self._splits[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, generator=g)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


class TabularDataModule(SplitDataModule):
    """A scikit-learn dataset as a LightningDataModule."""

    def __init__(
        self,
        name: str,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        binary: str | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
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

        X, y, names = _load(self.name)
        if self.binary:
            keep = [names.index(c) for c in IRIS_BINARY[self.binary]]
            mask = np.isin(y, keep)
            X, y = X[mask], np.searchsorted(keep, y[mask])
            names = list(IRIS_BINARY[self.binary])
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=self.test_fraction, stratify=y, random_state=self.seed
        )
        X_tr, X_va, y_tr, y_va = train_test_split(
            X_tr, y_tr, test_size=self.val_fraction / (1 - self.test_fraction), stratify=y_tr,
            random_state=self.seed,
        )
        scaler = StandardScaler().fit(X_tr)  # fitted on training data only
        for split, (Xs, ys) in {"train": (X_tr, y_tr), "val": (X_va, y_va), "test": (X_te, y_te)}.items():
            self._splits[split] = TensorDataset(
                torch.from_numpy(scaler.transform(Xs).astype(np.float32)), torch.from_numpy(ys)
            )
        self.info = DataInfo(X.shape[1], len(names), tuple(names))
