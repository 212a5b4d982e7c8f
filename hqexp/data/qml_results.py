"""The published results of Bowles, Ahmed & Schuld 2024, read from a folder laid out like the
paper's ``paper/results/`` (github XanaduAI/qml-benchmarks):

``<family>/<ModelName>/<ModelName>_<dataset stem>_GridSearchCV-best-hyperparams.csv``
(``hyperparameter,best_value`` rows) and ``…-best-hyperparams-results.csv`` (the test accuracy
of the five seeds). The dataset stem is the data file's name (:mod:`hqexp.data.qml_benchmark`);
the quirks of the paper's names are handled here: ``two_curves`` results live in
``two_curves/`` while its data files are written to ``two_curves_diff/``, and some two-curves
searches were saved under the stem ``two_manifold-…`` (read when ``two_curves-…`` is absent).
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from hqexp.data.qml_benchmark import FAMILIES
from hqexp.errors import DataError

BEST = "GridSearchCV-best-hyperparams.csv"
RESULTS = "GridSearchCV-best-hyperparams-results.csv"


def _candidates(root: Path, family: str, value: int, model: str, suffix: str) -> list[Path]:
    stem = FAMILIES[family].file(value)
    folder = root / family / model
    out = [folder / f"{model}_{stem}_{suffix}"]
    if stem.startswith("two_curves-"):
        out.append(folder / f"{model}_two_manifold-{stem.removeprefix('two_curves-')}_{suffix}")
    return out


def result_file(root: str | Path, family: str, value: int, model: str, suffix: str = BEST) -> Path:
    """The paper's file for ``model`` on one dataset of ``family``; one line naming the path looked for."""
    tried = _candidates(Path(root), family, value, model, suffix)
    for path in tried:
        if path.is_file():
            return path
    raise DataError(
        f"best_hyperparams: no file {tried[0]} (the paper's results layout: <family>/<Model>/<Model>_<stem>_{suffix})"
    )


def _value(text: str):
    """A CSV cell as the paper's search wrote it: int, float, tuple ``(100,)``, or a word (``full``)."""
    try:
        v = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(v, float) and v.is_integer() and "." not in text and "e" not in text.lower():
        return int(v)
    return list(v) if isinstance(v, tuple) else v


def best_hyperparams(root: str | Path, family: str, value: int, model: str) -> tuple[dict, Path]:
    """``({hyperparameter: value}, file)`` from the paper's best-hyperparameters CSV."""
    path = result_file(root, family, value, model)
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or [c.strip() for c in rows[0][:2]] != ["hyperparameter", "best_value"]:
        raise DataError(f"{path}: expected a header 'hyperparameter,best_value'")
    out = {}
    for row in rows[1:]:
        if len(row) < 2:
            raise DataError(f"{path}: a row without a value: {row!r}")
        out[row[0].strip()] = _value(row[1].strip())
    return out, path


def paper_test_accuracy(root: str | Path, family: str, value: int, model: str) -> list[float]:
    """The paper's test accuracies of the five seeds scored with the best hyperparameters."""
    path = result_file(root, family, value, model, RESULTS)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    try:
        return [float(r["test_acc"]) for r in rows]
    except (KeyError, ValueError) as exc:
        raise DataError(f"{path}: no numeric test_acc column ({exc})") from None
