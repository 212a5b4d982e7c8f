"""Every choice of every ``conf/`` group composes, and models, datasets, backends and
callbacks instantiate from it — in-process, in seconds, without training anything."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf, open_dict

from hqexp.config import config_dir, group_choices, register_resolvers
from hqexp.energy.ops import OpCounter, uncountable
from hqexp.errors import BackendUnavailable

register_resolvers()
# Input sizes of each task kind, as a data module's DataInfo would give them.
SIZES = {
    "classification": {"n_features": 30, "n_classes": 2},
    "regression": {"n_features": 6, "n_outputs": 1},
    "multilabel": {"n_features": 12, "n_classes": 5},
}
DATASET_FOR = {"classification": "breast_cancer", "regression": "options", "multilabel": "synthetic_ecg"}


@pytest.fixture(scope="module", autouse=True)
def hydra_conf():
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def _compose(name: str, *overrides: str):
    from hydra.core.hydra_config import HydraConfig

    cfg = compose(name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:...} interpolations resolve as in a job
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.mark.parametrize("name", ["train", "eval", "bench", "diagnose"])
def test_top_level_configs_compose(name):
    cfg = _compose(name)
    assert "mlflow" in cfg and "backend" in cfg
    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("model", group_choices("model"))
def test_every_model_builds_and_runs_a_forward(model):
    from hqexp.train.build import model_arguments

    cfg = _compose("train", f"model={model}")
    cls = get_class(cfg.model._target_)
    if getattr(cls, "fitted", False):  # a kernel method or scikit-learn baseline: fit, then predict
        short = {"max_steps": 20} if "max_steps" in cfg.model else {}  # the paper's loop: a few steps do
        est = instantiate(model_arguments(cfg), n_features=4, n_classes=2, random_state=0, **short, _convert_="all")
        X = np.random.default_rng(0).uniform(-1, 1, size=(40, 4))
        y = (X.sum(1) > 0).astype(int)
        assert est.fit(X, y).predict_proba(X).shape == (40, 2)
        return
    kinds = getattr(cls, "task", "classification")
    for kind in (kinds,) if isinstance(kinds, str) else kinds:
        extra = {"input_length": 1000 if kind == "multilabel" else None} if "input_length" in cfg.model else {}
        net = instantiate(model_arguments(cfg), **SIZES[kind], **extra, _convert_="all")
        x = torch.randn(2, 12, 1000) if kind == "multilabel" else torch.randn(2, SIZES[kind]["n_features"])
        counter = OpCounter(net)  # and every model's operations can be counted (callbacks.ops)
        assert net(x).shape == (2, SIZES[kind].get("n_classes", 1))
        counter.close()
        assert uncountable(net) is None and counter.per_sample(2).metrics()["ops/macs"] > 0


@pytest.mark.parametrize("dataset", group_choices("dataset"))
def test_every_dataset_config_constructs(dataset, tmp_path):
    cfg = _compose("train", f"dataset={dataset}")
    with open_dict(cfg):
        for key in ("root", "path"):  # construction does not read them; setup would
            if key in cfg.dataset.keys() and OmegaConf.is_missing(cfg.dataset, key):
                cfg.dataset[key] = str(tmp_path)
    dm = instantiate(cfg.dataset, seed=0)
    assert hasattr(dm, "setup") and hasattr(dm, "train_dataloader")


@pytest.mark.parametrize("backend", group_choices("backend"))
def test_every_backend_config_builds_or_says_why_not(backend):
    from hqexp.quantum import from_config

    cfg = OmegaConf.to_container(_compose("train", f"backend={backend}").backend, resolve=True)
    assert {"name", "fallback", "options", "retries", "step_timeout_s"} <= set(cfg)
    try:
        # torch_compiled is the torch backend with options.compile=true
        assert from_config(cfg).name == {"torch_compiled": "torch"}.get(backend, backend)
    except BackendUnavailable as exc:
        assert backend in str(exc)


@pytest.mark.parametrize(
    "group", ["hardware", "scheduler", "trainer", "callbacks", "mlflow", "paths", "experiment", "sweep"]
)
def test_every_choice_of_the_other_groups_composes(group):
    for choice in group_choices(group):
        cfg = _compose("train", f"{group}={choice}")
        OmegaConf.to_container(cfg, resolve=True)


def test_callbacks_build_by_name(tmp_path):
    from hqexp.energy import Unavailable
    from hqexp.train.build import build_callbacks

    cfg = _compose("train")
    cbs = build_callbacks(cfg, tmp_path, Unavailable("test"))
    assert {"checkpoint", "early_stopping", "grad_norm", "barren_plateau", "latency", "interrupt"} <= set(cbs)
    assert "energy" not in cbs  # no meter available: nothing to measure
    assert cbs["checkpoint"].dirpath == str(tmp_path)
    cfg = _compose("train", "callbacks.grad_norm.enabled=false", "trainer.enable_progress_bar=false")
    assert "grad_norm" not in build_callbacks(cfg, tmp_path) and "progress_bar" not in build_callbacks(cfg, tmp_path)


def test_diagnose_and_bench_take_the_backend_group():
    assert _compose("diagnose").backend.options.dtype == "complex128"  # scans keep double precision
    assert _compose("train").backend.options.dtype == "complex64"
    assert _compose("diagnose", "backend=default_qubit").backend.name == "default_qubit"
    assert _compose("bench", "backend=torch", "backend.options.dtype=complex128").backend.options.dtype == "complex128"
