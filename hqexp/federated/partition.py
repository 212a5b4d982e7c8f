"""Which samples each client holds: ``iid``, ``dirichlet`` (label skew) or ``natural``
(the dataset's own subject / device / patient id).

A :class:`Partition` assigns every sample of the training, validation and test splits to
a client, so each client is evaluated on its own share: ``natural`` by the same group id,
``iid`` at random, ``dirichlet`` with the client's training label proportions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hqexp.errors import ConfigError

SCHEMES = ("iid", "dirichlet", "natural")
SPLITS = ("train", "val", "test")
DIRICHLET_DRAWS = 100


@dataclass
class Partition:
    """``clients[split][k]`` = indices of split ``split`` held by client ``k``;
    ``names[k]`` says who client ``k`` is (a group id, or ``client<k>``)."""

    scheme: str
    clients: dict[str, list[np.ndarray]]
    names: list[str]

    @property
    def n_clients(self) -> int:
        return len(self.names)

    def sizes(self, split: str = "train") -> list[int]:
        return [len(i) for i in self.clients[split]]


def label_key(y: np.ndarray) -> np.ndarray:
    """One integer label per sample: the class, or for multi-hot rows the first positive
    label (``n_labels`` for an all-zero row) — what label skew is drawn over."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y.astype(np.int64)
    pos = y > 0.5
    return np.where(pos.any(1), pos.argmax(1), y.shape[1]).astype(np.int64)


def partition(
    scheme: str,
    n_clients: int | None,
    labels: Mapping[str, np.ndarray],
    groups: Mapping[str, np.ndarray] | None = None,
    alpha: float = 0.5,
    seed: int = 0,
    group_kind: str = "group",
) -> Partition:
    """Assign the samples of every split to clients (see the module docstring).

    Raises :class:`ConfigError` with one line for an impossible request: an unknown
    scheme, fewer than one client, ``natural`` without groups or with more clients than
    groups, or a client left without training samples.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown federation.partition {scheme!r}; choose one of: {', '.join(SCHEMES)}")
    rng = np.random.default_rng(seed)
    if scheme == "natural":
        return _natural(n_clients, labels, groups, group_kind)
    if not isinstance(n_clients, int) or isinstance(n_clients, bool) or n_clients < 1:
        raise ConfigError(f"federation.n_clients must be an int >= 1 for partition={scheme}, got {n_clients!r}")
    n_train = len(labels["train"])
    if n_clients > n_train:
        raise ConfigError(f"federation.n_clients={n_clients} is more than the {n_train} training samples")
    if scheme == "iid":
        clients = {s: [np.sort(p) for p in np.array_split(rng.permutation(len(labels[s])), n_clients)] for s in SPLITS}
    else:
        if not alpha > 0:
            raise ConfigError(f"federation.alpha must be > 0, got {alpha!r}")
        keys = {s: label_key(labels[s]) for s in SPLITS}
        n_keys = int(max(k.max() for k in keys.values())) + 1
        for _ in range(DIRICHLET_DRAWS):  # redraw until no client is empty (as FedML / Hsu et al. do)
            props = rng.dirichlet([alpha] * n_clients, size=n_keys)  # [label, client]
            clients = {s: _by_proportions(keys[s], props, rng) for s in SPLITS}
            if all(len(idx) for idx in clients["train"]):
                break
    names = [f"client{k}" for k in range(n_clients)]
    empty = [k for k, idx in enumerate(clients["train"]) if len(idx) == 0]
    if empty:
        raise ConfigError(
            f"partition={scheme} leaves client {empty[0]} without training samples "
            f"({n_clients} clients, alpha={alpha}, {DIRICHLET_DRAWS} draws); use fewer clients or a "
            "larger federation.alpha"
        )
    return Partition(scheme, clients, names)


def _by_proportions(keys: np.ndarray, props: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Deal each label's samples to clients in the proportions ``props[label]``."""
    K = props.shape[1]
    out: list[list[int]] = [[] for _ in range(K)]
    for label in np.unique(keys):
        idx = rng.permutation(np.flatnonzero(keys == label))
        cuts = (np.cumsum(props[label]) * len(idx)).round().astype(int)[:-1]
        for k, part in enumerate(np.split(idx, cuts)):
            out[k].extend(part.tolist())
    return [np.sort(np.array(o, dtype=np.int64)) for o in out]


def _natural(
    n_clients: int | None, labels: Mapping[str, np.ndarray], groups: Mapping[str, np.ndarray] | None, group_kind: str
) -> Partition:
    """One client per group (``n_clients`` null or equal to the group count); fewer clients
    take several whole groups each, dealt largest first to the client with the fewest samples."""
    if groups is None:
        raise ConfigError(
            "federation.partition=natural needs a dataset with a natural client per sample "
            "(subject, device or patient: wesad, pamap2, mimic3wdb, ton_iot); use iid or dirichlet"
        )
    ids = sorted(set(np.asarray(groups["train"]).tolist()), key=str)
    if n_clients is None:
        n_clients = len(ids)
    if not isinstance(n_clients, int) or isinstance(n_clients, bool) or n_clients < 1:
        raise ConfigError(f"federation.n_clients must be an int >= 1 or null, got {n_clients!r}")
    if n_clients > len(ids):
        raise ConfigError(
            f"federation.n_clients={n_clients} but the training split has only {len(ids)} "
            f"{group_kind}s ({', '.join(map(str, ids[:8]))}{', …' if len(ids) > 8 else ''}); "
            f"use at most {len(ids)} clients with partition=natural"
        )
    counts = {g: int((np.asarray(groups["train"]) == g).sum()) for g in ids}
    owner: dict = {}
    load = [0] * n_clients
    members: list[list] = [[] for _ in range(n_clients)]
    for g in sorted(ids, key=lambda g: (-counts[g], str(g))):
        k = int(np.argmin(load))
        owner[g], load[k] = k, load[k] + counts[g]
        members[k].append(g)
    clients = {}
    for s in SPLITS:
        gs = np.asarray(groups[s])
        clients[s] = [np.flatnonzero(np.isin(gs, members[k])) for k in range(n_clients)]
    names = ["+".join(map(str, sorted(m, key=str))) for m in members]
    return Partition("natural", clients, names)
