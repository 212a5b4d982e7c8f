"""The noise table of a sweep (``study: noise`` in a sweep preset, e.g. ``sweep=noise_study``).

One row per (model, training noise): the test metric under every ``noise_eval`` noise, mean and
95 % Student-t half-width over the seeds — "trained noiseless, tested on the device" against
"noise-aware training", with the classical twin (which noise cannot touch) as the reference row.
Written to the parent as ``study/noise_study.{md,csv,png}``; the plot is the metric against the
depolarizing level (exact at 0), the device as its own point on the right.
"""

from __future__ import annotations

import math
import re

import numpy as np

from hqexp.tracking.record import study_table
from hqexp.tracking.study import t_interval

_EVAL = re.compile(r"^noise_eval/([^/]+)/(test/.+)$")


def train_noise(params: dict) -> str:
    kind = params.get("noise.kind", "none")
    if kind in (None, "None", "none"):
        return "none"
    if kind == "device":
        return f"device {params.get('noise.device', '?')}"
    if kind == "depolarizing":
        return f"depolarizing p1={params.get('noise.p1')}, p2={params.get('noise.p2')}"
    return str(kind)


def study_rows(children, metric: str) -> list[dict]:
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    for run in children:
        if run.info.status != "FINISHED":
            continue
        key = (run.data.tags.get("model", "?"), train_noise(run.data.params))
        d = cells.setdefault(key, {})
        for k, v in run.data.metrics.items():
            m = _EVAL.match(k)
            if m and m.group(2) == metric:
                d.setdefault(m.group(1), []).append(float(v))
    rows = []
    for (model, noise), d in sorted(cells.items()):
        row: dict = {"model": model, "train_noise": noise, "seeds": max((len(v) for v in d.values()), default=0)}
        for name, vals in d.items():
            mean, half = t_interval(vals)
            row[f"{name}_mean"], row[f"{name}_ci95"] = mean, half
        rows.append(row)
    return rows


def _names(rows: list[dict]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        for k in r:
            if k.endswith("_mean") and k[:-5] not in seen:
                seen.append(k[:-5])
    return seen


def markdown(rows: list[dict], metric: str) -> str:
    names = _names(rows)

    def cell(r, n):
        m, h = r.get(f"{n}_mean"), r.get(f"{n}_ci95")
        if m is None:
            return ""
        return f"{m:.4f}" + ("" if h is None or math.isnan(h) else f" ± {h:.3f}")

    lines = [
        f"| model | trained under | seeds | {' | '.join(f'{metric} tested under {n}' for n in names)} |",
        "|" + "---|" * (3 + len(names)),
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['train_noise']} | {r['seeds']} | " + " | ".join(cell(r, n) for n in names) + " |"
        )
    lines += [
        "",
        "Mean ± 95 % Student-t half-width over the seeds. A model without a quantum layer is not touched "
        "by the noise: its row is the noise-free reference.",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], metric: str, levels: dict[str, float]):
    from hqexp.tracking.plots import plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    curve = sorted((p, n) for n, p in levels.items() if p is not None)
    others = [n for n in _names(rows) if n not in levels or levels[n] is None]
    for r in rows:
        xs = [p for p, n in curve if f"{n}_mean" in r]
        ys = [r[f"{n}_mean"] for p, n in curve if f"{n}_mean" in r]
        es = [0 if math.isnan(r.get(f"{n}_ci95", math.nan)) else r[f"{n}_ci95"] for p, n in curve if f"{n}_mean" in r]
        line = ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=f"{r['model']} (trained: {r['train_noise']})")
        for j, n in enumerate(others):
            if f"{n}_mean" in r:
                x = (max(xs) if xs else 0) * 1.6 + 0.01 * (j + 1)
                ax.errorbar(
                    [x],
                    [r[f"{n}_mean"]],
                    yerr=[np.nan_to_num(r.get(f"{n}_ci95", 0))],
                    marker="*",
                    ms=11,
                    color=line[0].get_color(),
                    capsize=3,
                )
                ax.annotate(n, (x, r[f"{n}_mean"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("test-time depolarizing p2 (0 = exact); stars: other test noises")
    ax.set_ylabel(metric)
    ax.set_title("does the model survive the device?")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def levels_of(children) -> dict[str, float | None]:
    """Each ``noise_eval`` entry's depolarizing p2 (0 for none, None for other kinds), read from the
    config the children logged."""
    import ast

    for run in children:
        raw = run.data.params.get("noise_eval")
        if raw:
            try:
                entries = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                continue
            out: dict[str, float | None] = {}
            for e in entries:
                kind = e.get("kind")
                out[e["name"]] = 0.0 if kind == "none" else (float(e.get("p2", 0)) if kind == "depolarizing" else None)
            return out
    return {}


def record_noise_study(recorder, metrics: tuple[str, ...] = ("test/acc", "test/loss")) -> list[dict]:
    """Compute the noise table of each metric from the parent's children and log it on the parent
    (``study/noise_study.*`` for the first, ``study/noise_study_<metric>.*`` for the others)."""
    out: list[dict] = []
    for i, metric in enumerate(metrics):
        levels: dict = {}

        def rows_of(children, metric=metric, levels=levels):
            levels.update(levels_of(children))
            return study_rows(children, metric)

        name = "noise_study" if i == 0 else f"noise_study_{metric.split('/')[-1]}"
        rows = study_table(
            recorder,
            name,
            rows_of,
            lambda rows, metric=metric: markdown(rows, metric),
            lambda rows, metric=metric, levels=levels: plot(rows, metric, levels),
        )
        out = out or rows
    return out
