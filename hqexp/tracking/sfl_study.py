"""The split-learning study table of a sweep (``study: sfl`` in a sweep preset).

One row per (federation mode, server head) over the seeds of a sweep such as
``sweep=sfl_study``: test macro F1 (mean ± std and 95 % t-interval), total MB sent,
MB until ``val/f1_macro`` first reached the target (and in how many seeds it did), and
wall time per round (per epoch for ``none``). Written to the parent run as
``study/sfl_study.{md,csv,png}``.
"""

from __future__ import annotations

import math

import numpy as np

from hqexp.tracking.record import study_table

MODES = ("none", "fl", "sl", "sflv1", "sflv2", "sl_ushaped")


def _key(run) -> tuple[str, str] | None:
    mode = run.data.tags.get("federation") or run.data.params.get("federation.mode")
    head = run.data.tags.get("server_head") or run.data.params.get("model.server_head")
    return (mode, head) if mode and head else None


def study_rows(children) -> list[dict]:
    """Rows from the FINISHED children, in mode order then quantum before classical."""
    from hqexp.tracking.study import t_interval

    cells: dict[tuple[str, str], list] = {}
    for run in children:
        key = _key(run)
        if run.info.status != "FINISHED" or key is None or "test/f1_macro" not in run.data.metrics:
            continue
        cells.setdefault(key, []).append(run.data.metrics)
    rows = []
    order = lambda kv: (MODES.index(kv[0][0]) if kv[0][0] in MODES else 99, kv[0][1] != "quantum")  # noqa: E731
    for (mode, head), ms in sorted(cells.items(), key=order):
        f1 = [m["test/f1_macro"] for m in ms]
        mean, half = t_interval(f1)
        per_round = [
            m["time/per_round_s"]
            if "time/per_round_s" in m
            else m.get("time/fit_s", math.nan) / max(m.get("time/epochs", 1.0), 1.0)
            for m in ms
        ]
        reached = [m["comm/mb_to_target"] for m in ms if "comm/mb_to_target" in m]
        rows.append(
            {
                "federation": mode,
                "server_head": head,
                "seeds": len(ms),
                "f1_macro_mean": mean,
                "f1_macro_std": float(np.std(f1, ddof=1)) if len(f1) > 1 else math.nan,
                "f1_macro_ci95": half,
                "total_mb": float(np.mean([m.get("comm/total_bytes", 0.0) for m in ms])) / 1e6,
                "mb_to_target": float(np.mean(reached)) if reached else math.nan,
                "reached_target": "n/a" if mode == "none" else f"{len(reached)}/{len(ms)}",
                "s_per_round": float(np.mean(per_round)),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    def f(v, spec=".3f"):
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    lines = [
        "| federation | server head | test F1 macro (mean ± std) | 95% CI half-width | total MB | "
        "MB to target (reached) | s / round | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = "n/a" if r["federation"] == "none" else f"{f(r['mb_to_target'], '.1f')} ({r['reached_target']})"
        lines.append(
            f"| {r['federation']} | {r['server_head']} | {f(r['f1_macro_mean'])} ± {f(r['f1_macro_std'])} | "
            f"{f(r['f1_macro_ci95'])} | {f(r['total_mb'], '.1f')} | {target} | "
            f"{f(r['s_per_round'], '.2f')} | {r['seeds']} |"
        )
    lines += [
        "",
        "`none` is centralised training (no communication). A quantum-vs-classical difference "
        "is evidence only where the intervals do not overlap.",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict]):

    from hqexp.tracking.plots import plt  # the Agg backend, set before pyplot loads

    fig, ax = plt.subplots(figsize=(7, 4))
    modes = [m for m in MODES if any(r["federation"] == m for r in rows)]
    for j, head in enumerate(("quantum", "classical")):
        sel = {r["federation"]: r for r in rows if r["server_head"] == head}
        xs = [i + (j - 0.5) * 0.3 for i, m in enumerate(modes) if m in sel]
        ys = [sel[m]["f1_macro_mean"] for m in modes if m in sel]
        err = [0.0 if math.isnan(sel[m]["f1_macro_ci95"]) else sel[m]["f1_macro_ci95"] for m in modes if m in sel]
        ax.bar(xs, ys, width=0.3, yerr=err, capsize=3, label=f"{head} server head")
    ax.set_xticks(range(len(modes)), modes)
    ax.set_ylabel("test macro F1 (95% CI)")
    ax.set_title("split / split-federated learning: quantum vs classical server head")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def record_sfl_study(recorder) -> list[dict]:
    """Compute the study table from the parent's children and log it on the parent."""
    return study_table(recorder, "sfl_study", study_rows, markdown, plot)
