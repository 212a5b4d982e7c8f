"""What every dataset shares: :class:`DataInfo`, the split data module, and the capability
declaration that tells the training code which run-level options a dataset supports.

A data module declares ``SUPPORTS`` (a set of :data:`CAPABILITIES`) and, for the ones it
refuses for a reason worth telling, ``REFUSALS``; :func:`require` turns a request the
dataset does not support into one clear :class:`~hqexp.errors.ConfigError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from hqexp.errors import ConfigError

#: run-level options a dataset may support: k-fold CV (``cv.folds``), oversampling or
#: class weights on the training split (``imbalance.method``), and a natural client of
#: every sample (``federation.partition=natural``).
CAPABILITIES = {
    "cv": "cv.folds > 1 (k-fold cross-validation)",
    "imbalance": "imbalance.method (SMOTE / class weights)",
    "groups": "federation.partition=natural (a subject / device / patient id per sample)",
}


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the data to build itself, and what the
    federated code needs to know about its samples.

    ``n_features`` is the number of input features (tabular) or channels (signals);
    ``length`` the time steps per sample for signals (``None`` for tabular rows).
    ``groups`` maps each split to the natural group id (subject, device, patient) of
    every sample in it, with ``group_kind`` naming what a group is.
    """

    n_features: int
    n_classes: int
    class_names: tuple[str, ...]
    task: str = "classification"
    length: int | None = None
    group_kind: str | None = None
    groups: Mapping[str, np.ndarray] | None = field(default=None, compare=False, hash=False, repr=False)


class EpochShuffle(torch.utils.data.Sampler):
    """The order of epoch ``e`` as a function of (seed, e) alone, so a run resumed at epoch e
    sees the same batches as one never interrupted. Lightning calls :meth:`set_epoch` before
    each epoch; the permutations are exactly those of a ``DataLoader(shuffle=True)`` with one
    generator seeded once (each epoch that loader draws its workers' base seed, the order, and
    an empty remainder permutation)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epoch):  # replay the draws of the epochs before
            torch.empty((), dtype=torch.int64).random_(generator=g)
            torch.randperm(self.n, generator=g)
            torch.randperm(self.n, generator=g)  # RandomSampler's (empty) remainder draw
        torch.empty((), dtype=torch.int64).random_(generator=g)
        yield from torch.randperm(self.n, generator=g).tolist()


def require(datamodule_cls: type, capability: str, dataset: str = "?") -> None:
    """Raise :class:`ConfigError` unless ``datamodule_cls`` declares ``capability``."""
    if capability not in CAPABILITIES:  # pragma: no cover - a programming error
        raise ValueError(f"unknown capability {capability!r}")
    if capability in getattr(datamodule_cls, "SUPPORTS", frozenset()):
        return
    reason = getattr(datamodule_cls, "REFUSALS", {}).get(capability)
    raise ConfigError(reason or f"{CAPABILITIES[capability]} is not supported by dataset={dataset}")


class SplitDataModule(L.LightningDataModule):
    """Loaders over ``self._splits`` ("train" / "val" / "test" datasets), built in ``setup``.

    Subclasses set ``batch_size``, ``num_workers``, ``seed`` and fill ``_splits`` (and
    ``info``); the training loader shuffles with a generator seeded from ``seed``, so the
    order is reproducible.
    """

    SUPPORTS: frozenset[str] = frozenset()
    REFUSALS: dict[str, str] = {}

    batch_size: int
    num_workers: int
    seed: int
    _splits: dict
    info: DataInfo | None

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self._splits[split]
        g = torch.Generator().manual_seed(self.seed)
        sampler = EpochShuffle(len(ds), self.seed) if shuffle else None
        world = self.trainer.world_size if self.trainer is not None else 1
        if sampler is not None and world > 1:
            # Lightning would wrap this sampler in a DistributedSampler that shuffles again; dealt
            # round-robin instead, global batch k of a DDP job holds the same rows as batch k of one
            # process with devices x batch_size
            from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

            sampler = DistributedSamplerWrapper(
                sampler, num_replicas=world, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers, generator=g)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def dataset(self, split: str) -> Dataset:
        """The ``train`` / ``val`` / ``test`` dataset (after ``setup``)."""
        return self._splits[split]

    def targets(self, split: str) -> np.ndarray:
        """The label of every sample of ``split``, in dataset order (after ``setup``)."""
        ds = self._splits[split]
        tensors = getattr(ds, "tensors", None)
        if tensors is not None:
            return tensors[1].numpy()
        labels = getattr(ds, "labels", None)
        idx = getattr(ds, "idx", None)
        if labels is not None and idx is not None:
            return np.asarray(labels)[idx]
        return np.stack([np.asarray(ds[i][1]) for i in range(len(ds))])

    def subset(self, split: str, indices: np.ndarray) -> Dataset:
        """The samples ``indices`` of ``split`` as a dataset (a client's share)."""
        return Subset(self._splits[split], np.asarray(indices, dtype=np.int64).tolist())


def read_table(path: str | Path, what: str = "CSV file", **read_csv_kw):
    """``pandas.read_csv(path)`` with one clear :class:`DataError` for a missing path, a folder,
    an empty or binary file, or text pandas cannot parse (e.g. an unterminated quote)."""
    import pandas as pd

    from hqexp.errors import DataError

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise DataError(f"{what} {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{what} {path} is empty")
    with path.open("rb") as fh:
        if b"\x00" in fh.read(8192):
            raise DataError(f"{what} {path} is binary, not text")
    try:
        return pd.read_csv(path, **read_csv_kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{what} {path} cannot be parsed: {first}") from None


def fingerprint(parts: Sequence[object], files: Sequence[Path]) -> str:
    """A key that changes when a setting or any file (size, mtime) changes."""
    h = hashlib.sha1(json.dumps([str(p) for p in parts]).encode())
    for f in files:
        try:
            st = f.stat()
            h.update(f"{f}:{st.st_size}:{st.st_mtime_ns};".encode())
        except OSError:
            h.update(f"{f}:missing;".encode())
    return h.hexdigest()[:20]
