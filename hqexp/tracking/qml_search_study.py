"""The grid search of a benchmark model (``study: qml_search``): the paper's model selection.

Every child is one hyperparameter setting and seed, scored by k-fold cross-validation on the
training split (``cv/acc``) and, separately, on the test split. The parent ranks the settings by
their mean ``cv/acc`` over seeds only — the test split never chooses — and reports the chosen
setting's test accuracy over its seeds, as the paper scores its best setting with five seeds. The
chosen setting is written in the paper's own layout, so ``best_hyperparams=<that folder>`` reads it:
``study/qml_search/<family>/<Model>/<Model>_<stem>_GridSearchCV-best-hyperparams.csv``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from hqexp.tracking.record import study_table


def _setting(overrides: str) -> tuple[str, ...]:
    """The ``model.*`` overrides of a child (its hyperparameter setting), seed left out."""
    return tuple(sorted(p for p in overrides.split() if re.match(r"^\+?model\.", p)))


def search_rows(children) -> list[dict]:
    """One row per setting, best (highest mean ``cv/acc``) first."""
    cells: dict[tuple, dict] = {}
    for run in children:
        m = run.data.metrics
        if run.info.status != "FINISHED" or "cv/acc" not in m:
            continue
        key = _setting(run.data.tags.get("hqexp.overrides", ""))
        c = cells.setdefault(key, {"cv": [], "test": [], "tags": run.data.tags})
        c["cv"].append(m["cv/acc"])
        c["test"].append(m.get("test/acc", math.nan))
    rows = []
    for key, c in cells.items():
        test = np.asarray(c["test"])
        rows.append(
            {
                "setting": " ".join(key) or "(defaults)",
                "seeds": len(c["cv"]),
                "cv_acc_mean": float(np.mean(c["cv"])),
                "test_acc_mean": float(test.mean()),
                "test_acc_std": float(test.std(ddof=1)) if len(test) > 1 else math.nan,
                "paper_name": c["tags"].get("model.paper_name", ""),
                "family": c["tags"].get("dataset.family", ""),
                "stem": c["tags"].get("dataset.stem", ""),
            }
        )
    rows.sort(key=lambda r: -r["cv_acc_mean"])
    if rows:
        rows[0]["chosen"] = "yes"
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| setting | seeds | CV accuracy (mean) | test accuracy (mean ± std) | chosen |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['seeds']} | {r['cv_acc_mean']:.4f} | "
            f"{r['test_acc_mean']:.4f} ± {r['test_acc_std']:.4f} | {r.get('chosen', '')} |"
        )
    lines += ["", "Chosen by mean cross-validation accuracy on the training split; the test split only scores it."]
    return "\n".join(lines) + "\n"


def best_csv(row: dict) -> str:
    """The chosen setting as the paper's ``hyperparameter,best_value`` CSV (our keys are its names)."""
    lines = ["hyperparameter,best_value"]
    for part in row["setting"].split():
        key, _, value = part.partition("=")
        value = value if "," not in value else f'"{value}"'
        lines.append(f"{key.lstrip('+').removeprefix('model.')},{value}")
    return "\n".join(lines) + "\n"


def record_qml_search_study(recorder) -> list[dict]:
    """The ranked settings on the parent, the chosen one's scores as metrics, and its CSV."""
    rows = study_table(recorder, "qml_search", search_rows, markdown)
    if not rows:
        return rows
    best = rows[0]
    recorder.log_metrics(
        {
            "study/qml_search/best_cv_acc": best["cv_acc_mean"],
            "study/qml_search/best_test_acc": best["test_acc_mean"],
            "study/qml_search/best_test_acc_std": best["test_acc_std"],
            "study/qml_search/settings": float(len(rows)),
        }
    )
    recorder.set_tags({"study.qml_search.best": best["setting"]})
    name, family, stem = best["paper_name"], best["family"], best["stem"]
    if name and family and stem:
        recorder.log_text(
            best_csv(best), f"study/qml_search/{family}/{name}/{name}_{stem}_GridSearchCV-best-hyperparams.csv"
        )
    return rows
