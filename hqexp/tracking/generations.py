"""The G-0 … G-10 summary table of a sweep (``study: generations``).

One row per (generation, dataset, variant) from the sweep's finished children —
variant ``hybrid`` (the circuit), ``twin`` (its parameter-matched classical block) or
``classical`` (G-0, which has no circuit). Seeds and separately swept folds are pooled
(mean); k-fold runs already carry their fold means. Columns: epochs (mean per run),
wall time (s, whole run incl. all folds), F1, AUC, peak memory (MB: the process's
peak, and on CPU the rise during the run — a reused sweep worker carries earlier jobs'
memory in the first), trainable
parameters, model bytes, the INT8 copy's bytes and AUC change where measured, and
the backend that ran.
"""

from __future__ import annotations

import re

import numpy as np

from hqexp.tracking.record import study_table

COLUMNS = (
    "generation",
    "dataset",
    "variant",
    "runs",
    "epochs",
    "wall_s",
    "f1",
    "auroc",
    "peak_mem_mb",
    "fit_mem_delta_mb",
    "trainable_params",
    "model_bytes",
    "int8_model_bytes",
    "int8_delta_auroc",
    "backend_used",
)
_METRICS = {
    "fit_mem_delta_mb": "mem/fit_rss_delta_mb",
    "epochs": "time/epochs",
    "wall_s": "time/fit_s",
    "f1": "test/f1",
    "auroc": "test/auroc",
    "trainable_params": "params/trainable",
    "model_bytes": "model/bytes",
    "int8_model_bytes": "int8/model_bytes",
    "int8_delta_auroc": "int8/delta_auroc",
}


def _generation(model: str) -> int | None:
    m = re.fullmatch(r"g(\d+)", model or "")
    return int(m.group(1)) if m else None


def generation_rows(children) -> list[dict]:
    """Pooled rows, ordered by generation, dataset, variant."""
    cells: dict[tuple, list] = {}
    for run in children:
        g = _generation(run.data.tags.get("model", ""))
        if g is None or run.info.status != "FINISHED":
            continue
        twin = run.data.params.get("twin", "False") == "True"
        if g == 0 and twin:
            continue  # G-0 has no circuit: its "twin" run is the same model again
        variant = "classical" if g == 0 else ("twin" if twin else "hybrid")
        cells.setdefault((g, run.data.tags.get("dataset", "?"), variant), []).append(run)
    rows = []
    for (g, dataset, variant), runs in sorted(cells.items()):
        row = {"generation": f"g{g}", "dataset": dataset, "variant": variant, "runs": len(runs)}
        for col, key in _METRICS.items():
            vals = [r.data.metrics[key] for r in runs if key in r.data.metrics]
            row[col] = float(np.mean(vals)) if vals else None
        mem = [r.data.metrics.get("mem/peak_cuda_mb", r.data.metrics.get("mem/peak_rss_mb")) for r in runs]
        mem = [m for m in mem if m is not None]
        row["peak_mem_mb"] = float(np.max(mem)) if mem else None
        row["backend_used"] = ",".join(sorted({r.data.tags.get("backend_used", "") for r in runs}))
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    def fmt(v, col):
        if v is None:
            return ""
        if col in ("trainable_params", "model_bytes", "int8_model_bytes", "runs"):
            return f"{v:,.0f}"
        if col in ("wall_s", "peak_mem_mb", "fit_mem_delta_mb", "epochs"):
            return f"{v:.1f}"
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r.get(c), c) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def record_generations(recorder) -> list[dict]:
    """Compute the table from the parent's children; log Markdown + CSV on the parent."""
    return study_table(recorder, "generations", generation_rows, markdown, columns=COLUMNS)
