"""The wearable table of an ECG sweep (``study: wearable``, set by ``sweep=ecg_ablation``).

One row per model, mean over the seeds: test macro AUROC (± 95 % Student-t half-width),
parameters, weight memory at each layer's bit width, MACs and accumulates per classification,
the quantum circuits per classification, the *estimated* mJ per classification (``ops_energy``
profile, tag ``energy_est_source``), the *measured* mJ where a meter read the test (NVML / RAPL;
empty otherwise) and latency per sample — beside the wearable's 0.5 mJ budget. Written to the
parent as ``study/wearable.{md,csv,png}``; the plot is AUROC against estimated energy.
"""

from __future__ import annotations

import math

from hqexp.tracking.record import study_table
from hqexp.tracking.study import t_interval

BUDGET_MJ = 0.5  # the ECG monitor's target per classified sample

COLUMNS = {
    "auroc": "test/auroc_macro",
    "params": "params/total",
    "weight_bytes": "ops/weight_bytes",
    "macs": "ops/macs",
    "acs": "ops/acs",
    "circuits": "ops/quantum/circuits",
    "est_mj": "energy_est/j_per_inference",
    "measured_mj": "energy/j_per_inference",
    "latency_ms": "latency/ms_per_sample",
}


def study_rows(children) -> list[dict]:
    cells: dict[str, dict[str, list[float]]] = {}
    sources: dict[str, str] = {}
    for run in children:
        if run.info.status != "FINISHED":
            continue
        model = run.data.tags.get("model", "?")
        d = cells.setdefault(model, {})
        for col, key in COLUMNS.items():
            if key in run.data.metrics:
                v = float(run.data.metrics[key])
                d.setdefault(col, []).append(v * 1e3 if col.endswith("_mj") else v)
        sources.setdefault(model, run.data.tags.get("energy_est_source", ""))
    rows = []
    for model, d in cells.items():
        row: dict = {"model": model, "seeds": len(d.get("auroc", [])), "energy_est_source": sources[model]}
        for col, vals in d.items():
            row[col] = sum(vals) / len(vals)
        if d.get("auroc"):
            row["auroc_ci95"] = t_interval(d["auroc"])[1]
        row["within_budget"] = row.get("est_mj") is not None and row["est_mj"] <= BUDGET_MJ
        rows.append(row)
    return sorted(rows, key=lambda r: r.get("est_mj", math.inf))


def _fmt(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float) and (abs(v) >= 1e5 or (v and abs(v) < 1e-3)):
        return f"{v:.3g}"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| model | seeds | test/auroc_macro | params | weights (bytes) | MACs | ACs | circuits | "
        "est. mJ / classification | measured mJ | latency ms / sample |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        auroc = _fmt(r.get("auroc"))
        if r.get("auroc_ci95") is not None and not math.isnan(r["auroc_ci95"]):
            auroc += f" ± {r['auroc_ci95']:.3f}"
        lines.append(
            f"| {r['model']} | {r['seeds']} | {auroc} | {_fmt(r.get('params'), 6)} | {_fmt(r.get('weight_bytes'), 6)} "
            f"| {_fmt(r.get('macs'))} | {_fmt(r.get('acs'))} | {_fmt(r.get('circuits'))} | {_fmt(r.get('est_mj'))} "
            f"| {_fmt(r.get('measured_mj'))} | {_fmt(r.get('latency_ms'))} |"
        )
    source = next((r["energy_est_source"] for r in rows if r.get("energy_est_source")), "?")
    lines += [
        "",
        f"Estimated energy ({source}): MACs × E_MAC + accumulates × E_AC of the Linear and Conv layers, "
        "counted on the test set (spike rates as measured); memory traffic and element-wise work are not "
        f"counted, so it is a lower bound of the compute, not a measurement. Budget: {BUDGET_MJ} mJ per "
        "classification. The quantum layers' share is in circuits and gates only (ops/quantum/*): no joules. "
        "Measured mJ: NVML or RAPL over the test, where a meter exists (— here means none did).",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict]):
    from hqexp.tracking.plots import plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for r in rows:
        if r.get("est_mj") is None or r.get("auroc") is None:
            continue
        err = r.get("auroc_ci95")
        ax.errorbar(
            [r["est_mj"]], [r["auroc"]], yerr=[0 if err is None or math.isnan(err) else err], marker="o", capsize=3
        )
        ax.annotate(r["model"], (r["est_mj"], r["auroc"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.axvline(BUDGET_MJ, color="grey", ls="--", lw=1)
    ax.annotate(f"{BUDGET_MJ} mJ budget", (BUDGET_MJ, ax.get_ylim()[0]), fontsize=7, rotation=90, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("estimated mJ per classification (ops × per-op energy; a lower bound)")
    ax.set_ylabel("test/auroc_macro")
    ax.set_title("the wearable's trade-off")
    fig.tight_layout()
    return fig


def record_wearable_study(recorder) -> list[dict]:
    """The wearable table and plot on the sweep's parent run."""
    return study_table(recorder, "wearable", study_rows, markdown, plot)
