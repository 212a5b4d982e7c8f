"""Shared test set-up: markers, the real-sample data folder, small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _quiet_env(tmp_path_factory):
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    # Every run folder, store, artifact and cache of the tests goes to a temp dir, never outputs/.
    os.environ["HQEXP_OUTPUT_DIR"] = str(tmp_path_factory.mktemp("outputs"))
    yield
