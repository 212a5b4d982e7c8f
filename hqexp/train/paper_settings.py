"""``best_hyperparams=<folder>``: a benchmark model set to the paper's published best
hyperparameters for the run's dataset (Bowles, Ahmed & Schuld 2024, ``paper/results/``)."""

from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

from hqexp.config import choice
from hqexp.errors import ConfigError

#: keys of the paper's JAX implementation that set how it vectorises or compiles, not the model
IMPLEMENTATION_ONLY = frozenset({"max_vmap", "jit", "dev_type", "qnode_kwargs"})


def apply_best_hyperparams(cfg: DictConfig) -> tuple[dict[str, str], dict[str, float]]:
    """Set ``cfg``'s model keys from the paper's file for this family and dimension (in place).

    Returns tags (the file read, the values set) and, when the paper's scores are beside it,
    metrics: ``paper/test_acc`` (the paper's run with this seed, for seeds 0…4) and
    ``paper/test_acc_mean``. Nothing happens when ``best_hyperparams`` is null.
    """
    from hydra.utils import get_class

    from hqexp.data.qml_benchmark import FAMILIES, family_value
    from hqexp.data.qml_results import best_hyperparams, paper_test_accuracy

    root = cfg.get("best_hyperparams")
    if root is None:
        return {}, {}
    if not str(cfg.dataset.get("_target_", "")).endswith("QMLBenchmarkDataModule"):
        raise ConfigError(
            f"best_hyperparams= reads the benchmark paper's results: use dataset=qml_benchmark, not {choice('dataset')}"
        )
    cls = get_class(cfg.model._target_)
    name, keys = getattr(cls, "paper_name", None), getattr(cls, "paper_keys", {})
    if not name:
        raise ConfigError(
            f"model={choice('model')} is not a model of the benchmark paper; best_hyperparams= cannot set it"
        )
    family = str(cfg.dataset.family)
    value = family_value(family, {k: cfg.dataset.get(k) for k in {f.key for f in FAMILIES.values()}})
    params, path = best_hyperparams(root, family, value, name)
    applied = {}
    for key, v in params.items():
        if key in IMPLEMENTATION_ONLY:
            continue
        if key not in keys:
            raise ConfigError(
                f"{path}: hyperparameter {key!r} has no counterpart in model={choice('model')} "
                f"(it maps: {', '.join(sorted(keys))})"
            )
        OmegaConf.update(cfg, keys[key], v, merge=False)
        applied[keys[key]] = v
    tags = {"best_hyperparams.file": str(path), "best_hyperparams.values": json.dumps(applied, sort_keys=True)}
    metrics = {}
    try:
        accs = paper_test_accuracy(root, family, value, name)
    except Exception:  # noqa: BLE001 - the scores are a comparison, not needed to run
        accs = []
    if accs:
        metrics["paper/test_acc_mean"] = sum(accs) / len(accs)
        if 0 <= int(cfg.seed) < len(accs):  # the paper scored seed i as random_state=i
            metrics["paper/test_acc"] = accs[int(cfg.seed)]
    return tags, metrics
