"""The Bowles–Ahmed–Schuld 2024 benchmark datasets: generated as the paper's scripts generate them
(compared bit for bit with files of the paper's repository, XanaduAI/qml-benchmarks, Apache 2.0,
kept gzipped in tests/fixtures/qml_benchmarks), read back from the CSVs those scripts write, and
trained on through ``dataset=qml_benchmark``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, error_line, hqexp_here, runs

from hqexp.data import qml_benchmark as qb
from hqexp.errors import ConfigError, DataError

FIX = Path(__file__).parent / "fixtures" / "qml_benchmarks"


def _pair(name: str):
    return (np.loadtxt(FIX / f"{name}_{s}.csv.gz", delimiter=",") for s in ("train", "test"))


@pytest.mark.parametrize(
    "family, value, name",
    [
        ("linearly_separable", 3, "linearly_separable_3d"),  # the script's second file: replays the first
        ("hidden_manifold", 2, "hidden_manifold-6manifold-2d"),
        ("two_curves_diff", 20, "two_curves-10d-20degree"),  # after all 19 two_curves files and 18 of its own
    ],
)
def test_generated_arrays_equal_the_papers_files(family, value, name):
    X_tr, X_te, y_tr, y_te = qb.generate(family, value)
    train, test = _pair(name)
    np.testing.assert_array_equal(np.c_[X_tr, y_tr], train)
    np.testing.assert_array_equal(np.c_[X_te, y_te], test)


def test_bars_and_stripes_pixels_equal_the_papers_plot_file():
    """The plot script draws the same images from the same seed, with the opposite label convention."""
    plot = np.loadtxt(FIX / "bars_and_stripes_16_x_16_0.5noise_plots.csv.gz", delimiter=",")
    X_tr, X_te, y_tr, _ = qb.generate("bars_and_stripes", 16)
    np.testing.assert_allclose(X_tr[: len(plot)], plot[:, :-1], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(-y_tr[: len(plot)], plot[:, -1])
    assert X_tr.shape == (1000, 256) and X_te.shape == (200, 256)


@pytest.mark.parametrize(
    "family, value, d",
    [
        ("linearly_separable", 5, 5),
        ("hidden_manifold", 4, 4),
        ("hidden_manifold_diff", 3, 10),
        ("two_curves", 3, 3),
        ("two_curves_diff", 4, 10),
        ("hyperplanes_diff", 5, 10),
        ("bars_and_stripes", 4, 16),
    ],
)
def test_every_family_has_the_papers_shapes_and_labels(family, value, d):
    X_tr, X_te, y_tr, y_te = qb.generate(family, value)
    n_tr, n_te = (1000, 200) if family == "bars_and_stripes" else (240, 60)
    assert X_tr.shape == (n_tr, d) and X_te.shape == (n_te, d)
    y = np.r_[y_tr, y_te]
    assert set(np.unique(y)) == {-1, 1}
    if family in ("hidden_manifold", "hidden_manifold_diff", "two_curves", "two_curves_diff", "hyperplanes_diff"):
        assert (y == 1).sum() == (y == -1).sum() == 150  # balanced by construction
    again = qb.generate(family, value)
    np.testing.assert_array_equal(again[0], X_tr)  # the same arrays every time


def test_the_scripts_csvs_are_read_back(tmp_path):
    for family, value in (("hyperplanes_diff", 3), ("two_curves", 2)):
        fam = qb.FAMILIES[family]
        X_tr, X_te, y_tr, y_te = qb.generate(family, value)
        (tmp_path / fam.folder).mkdir(exist_ok=True)
        np.savetxt(tmp_path / fam.folder / f"{fam.file(value)}_train.csv", np.c_[X_tr, y_tr], delimiter=",")
        np.savetxt(tmp_path / fam.folder / f"{fam.file(value)}_test.csv", np.c_[X_te, y_te], delimiter=",")
        got = qb.read(tmp_path, family, value)
        for a, b in zip(got, (X_tr, X_te, y_tr, y_te)):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="no mnist_pca/mnist_3-5_4d_train.csv"):
        qb.read(tmp_path, "mnist_pca", 4)
    with pytest.raises(ConfigError, match="read from its CSV files only: set dataset.root"):
        qb.generate("mnist_pca", 4)
    (tmp_path / "linearly_separable").mkdir()
    (tmp_path / "linearly_separable" / "linearly_separable_2d_train.csv").write_text("1,2,0.5\n")
    (tmp_path / "linearly_separable" / "linearly_separable_2d_test.csv").write_text("1,2,1\n")
    with pytest.raises(DataError, match="the last column must be the label, -1 or 1"):
        qb.read(tmp_path, "linearly_separable", 2)


def test_a_hybrid_trains_on_a_benchmark_family(tmp_path):
    args = ["dataset=qml_benchmark", "dataset.family=hyperplanes_diff", "dataset.n_hyperplanes=3", *TINY]
    hqexp_here(["train", *args], tmp_path)
    (run,) = runs(tmp_path)
    assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
    assert run.data.params["dataset.family"] == "hyperplanes_diff"


@pytest.mark.parametrize(
    "args, message",
    [
        (["dataset.family=nope"], "unknown dataset.family 'nope'; choose one of: linearly_separable"),
        (["dataset.n_features=21"], "dataset.n_features for family linearly_separable must be one of 2…20"),
        (["dataset.family=two_curves_diff", "dataset.n_features=3"], "varies dataset.degree; unset dataset.n_features"),
        (["dataset.family=bars_and_stripes", "dataset.size=5"], "must be one of 4, 8, 16, 32"),
        (["dataset.root=/no/such/dir"], "no linearly_separable/linearly_separable_4d_train.csv"),
    ],
)
def test_bad_benchmark_settings_are_one_line(tmp_path, args, message):
    out = hqexp_here(["train", "dataset=qml_benchmark", *TINY, *args], tmp_path, check=False)
    assert out.returncode == 2 and message in error_line(out)


def test_the_python_api_returns_the_papers_arrays():
    from hqexp.api import benchmark_data

    (X_tr, y_tr), (X_te, y_te) = benchmark_data("linearly_separable", 3)
    train, test = _pair("linearly_separable_3d")
    np.testing.assert_array_equal(np.c_[X_tr, y_tr], train)
    np.testing.assert_array_equal(np.c_[X_te, y_te], test)
