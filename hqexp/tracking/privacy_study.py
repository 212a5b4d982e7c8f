"""The privacy–utility table of a sweep (``study: privacy`` in a sweep preset).

One row per (defence, server head) over the seeds: test macro F1, dCor between the raw input
and what crosses the cut, the black-box inversion error (MSE on standardised inputs) and, for
U-shaped runs on binary tasks, the label-leak AUC of the norm attack — mean ± std each.
Written to the parent as ``study/privacy_study.{md,csv,png}``.
"""

from __future__ import annotations

import math

import numpy as np

from hqexp.tracking.record import study_table

METRICS = {
    "f1": "test/f1_macro",
    "dcor": "privacy/dcor",
    "inversion_mse": "privacy/inversion_mse",
    "whitebox_mse": "privacy/whitebox_mse",
    "leak_auc": "privacy/label_leak_auc",
}


def defence_of(params: dict) -> str:
    parts = []
    if float(params.get("privacy.nopeek_weight", 0) or 0) > 0:
        parts.append(f"NoPeek α={float(params['privacy.nopeek_weight']):g}")
    if float(params.get("privacy.noise_std", 0) or 0) > 0:
        parts.append(f"noise σ={float(params['privacy.noise_std']):g}")
    if str(params.get("privacy.dp.enabled", "False")) == "True":
        parts.append(f"DP σ={float(params.get('privacy.dp.noise_multiplier', 0)):g}")
    return " + ".join(parts) or "none"


def study_rows(children) -> list[dict]:
    cells: dict[tuple[str, str], list] = {}
    for run in children:
        if run.info.status != "FINISHED" or "test/f1_macro" not in run.data.metrics:
            continue
        key = (defence_of(run.data.params), run.data.tags.get("server_head", "?"))
        cells.setdefault(key, []).append(run.data.metrics)
    rows = []
    order = lambda kv: (kv[0][0] != "none", kv[0][0], kv[0][1] != "quantum")  # noqa: E731
    for (defence, head), ms in sorted(cells.items(), key=order):
        row = {"defence": defence, "server_head": head, "seeds": len(ms)}
        for name, key in METRICS.items():
            vals = [m[key] for m in ms if key in m and not math.isnan(m[key])]
            row[f"{name}_mean"] = float(np.mean(vals)) if vals else math.nan
            row[f"{name}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    def f(r, name, spec=".3f"):
        m, s = r[f"{name}_mean"], r[f"{name}_std"]
        if math.isnan(m):
            return "–"
        return f"{m:{spec}} ± {s:{spec}}" if not math.isnan(s) else f"{m:{spec}}"

    lines = [
        "| defence | server head | test F1 macro | dCor(input, cut) | inversion MSE | white-box MSE | "
        "label-leak AUC | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['defence']} | {r['server_head']} | {f(r, 'f1')} | {f(r, 'dcor')} | "
            f"{f(r, 'inversion_mse')} | {f(r, 'whitebox_mse')} | {f(r, 'leak_auc')} | {r['seeds']} |"
        )
    lines += [
        "",
        "Mean ± std over seeds. Lower dCor and higher inversion MSE = less revealed (inputs are "
        "standardised: MSE 1 is as good as guessing the mean). Label-leak AUC: 0.5 = the gradient norms "
        "say nothing about the label, 1 = they give it away (U-shaped runs on binary tasks only).",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict]):

    from hqexp.tracking.plots import plt  # the Agg backend, set before pyplot loads

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for head, marker in (("quantum", "o"), ("classical", "s")):
        sel = [r for r in rows if r["server_head"] == head]
        for r in sel:
            a1.errorbar(
                r["dcor_mean"],
                r["f1_mean"],
                xerr=np.nan_to_num(r["dcor_std"]),
                yerr=np.nan_to_num(r["f1_std"]),
                marker=marker,
                capsize=3,
                label=f"{r['defence']} ({head})",
            )
            a2.errorbar(
                r["inversion_mse_mean"],
                r["f1_mean"],
                xerr=np.nan_to_num(r["inversion_mse_std"]),
                yerr=np.nan_to_num(r["f1_std"]),
                marker=marker,
                capsize=3,
            )
    a1.set_xlabel("dCor(input, activations)  (lower = more private)")
    a1.set_ylabel("test macro F1")
    a1.set_title("privacy-utility: dependence")
    a1.legend(fontsize=6)
    a2.set_xlabel("inversion MSE  (higher = more private)")
    a2.set_ylabel("test macro F1")
    a2.set_title("privacy-utility: reconstruction")
    fig.tight_layout()
    return fig


def record_privacy_study(recorder) -> list[dict]:
    """The privacy-utility table of a sweep's parent (``study/privacy_study.*``)."""
    return study_table(recorder, "privacy_study", study_rows, markdown, plot)
