"""The benchmark table of a sweep over the paper's models (``study: qml_benchmark``).

One row per (family, dimension, model) from the sweep's finished children: hqexp's test accuracy
(mean and standard deviation over seeds) beside the paper's for the same seeds (``paper/test_acc``,
logged by each run that read ``best_hyperparams=``), their difference, and a flag on every cell
that differs by more than :data:`FLAG` — those are the cells the README explains. The figure is
the paper's: test accuracy against dimension, one line per model, the paper's dashed beside.
"""

from __future__ import annotations

import math

import numpy as np

from hqexp.tracking.record import study_table

FLAG = 0.05
COLUMNS = (
    "family",
    "n_features",
    "model",
    "seeds",
    "acc_mean",
    "acc_std",
    "paper_mean",
    "paper_std",
    "diff",
    "flag",
    "fit_s_mean",
)


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def benchmark_rows(children) -> list[dict]:
    """Rows ordered by family, model, dimension."""
    cells: dict[tuple, dict[str, list]] = {}
    for run in children:
        m, p = run.data.metrics, run.data.params
        if run.info.status != "FINISHED" or "test/acc" not in m or "dataset.family" not in p:
            continue
        key = (p["dataset.family"], _int(p.get("dataset.n_features")), run.data.tags.get("model", "?"))
        c = cells.setdefault(key, {"acc": [], "paper": [], "fit": []})
        c["acc"].append(m["test/acc"])
        c["fit"].append(m.get("time/train_fit_s", m.get("time/fit_s", math.nan)))
        if "paper/test_acc" in m:
            c["paper"].append(m["paper/test_acc"])
    rows = []
    for (family, d, model), c in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1] or 0)):
        acc = np.asarray(c["acc"])
        row = {
            "family": family,
            "n_features": d,
            "model": model,
            "seeds": len(acc),
            "acc_mean": float(acc.mean()),
            "acc_std": float(acc.std(ddof=1)) if len(acc) > 1 else math.nan,
            "fit_s_mean": float(np.nanmean(c["fit"])),
        }
        if c["paper"]:
            paper = np.asarray(c["paper"])
            row.update(
                paper_mean=float(paper.mean()),
                paper_std=float(paper.std(ddof=1)) if len(paper) > 1 else math.nan,
                diff=float(acc.mean() - paper.mean()),
            )
            row["flag"] = "yes" if abs(row["diff"]) > FLAG else ""
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    """Per family: one line per model, one column per dimension, ``ours ± std (paper)``."""

    def f(v, spec=".3f"):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    out = []
    for family in sorted({r["family"] for r in rows}):
        sel = [r for r in rows if r["family"] == family]
        dims = sorted({r["n_features"] for r in sel if r["n_features"] is not None})
        out += [
            f"**{family}** — test accuracy, hqexp mean ± std over seeds (paper's mean); * = differs by > {FLAG}",
            "",
        ]
        out += ["| model | " + " | ".join(f"d={d}" for d in dims) + " |", "|---|" + "---|" * len(dims)]
        for model in sorted({r["model"] for r in sel}):
            by_d = {r["n_features"]: r for r in sel if r["model"] == model}
            cells = []
            for d in dims:
                r = by_d.get(d)
                if r is None:
                    cells.append("")
                    continue
                paper = f" ({f(r.get('paper_mean'), '.3f')})" if "paper_mean" in r else ""
                cells.append(f"{f(r['acc_mean'])} ± {f(r['acc_std'], '.3f')}{paper}{'*' if r.get('flag') else ''}")
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(rows: list[dict]):
    """Test accuracy against dimension per family, one colour per model; the paper's dashed."""
    from hqexp.tracking.plots import plt

    families = sorted({r["family"] for r in rows})
    models = sorted({r["model"] for r in rows})
    colours = {m: plt.cm.tab20(i % 20) for i, m in enumerate(models)}  # 12 models: tab10 would repeat
    markers = dict(zip(models, "osD^v<>phX*P" * 3))
    fig, axes = plt.subplots(1, len(families), figsize=(5.5 * len(families) + 2.2, 4.4), squeeze=False)
    for ax, family in zip(axes[0], families):
        for model in models:
            sel = sorted(
                (r for r in rows if r["family"] == family and r["model"] == model), key=lambda r: r["n_features"] or 0
            )
            if not sel:
                continue
            x = [r["n_features"] for r in sel]
            ax.errorbar(
                x,
                [r["acc_mean"] for r in sel],
                yerr=[np.nan_to_num(r["acc_std"]) for r in sel],
                marker=markers[model],
                ms=4,
                capsize=2,
                color=colours[model],
                label=model,
            )
            px = [r["n_features"] for r in sel if "paper_mean" in r]
            if px:
                ax.plot(
                    px, [r["paper_mean"] for r in sel if "paper_mean" in r], ls="--", color=colours[model], alpha=0.6
                )
        ax.set_title(f"{family} (dashed: the paper)")
        ax.set_xlabel("input dimension d")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0.4, 1.02)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig


def record_qml_benchmark_study(recorder) -> list[dict]:
    """The benchmark table and figure on the parent; ``study/qml_benchmark/flagged`` counts the
    cells more than :data:`FLAG` from the paper."""
    rows = study_table(recorder, "qml_benchmark", benchmark_rows, markdown, plot, columns=COLUMNS)
    if rows:
        recorder.log_metrics({"study/qml_benchmark/flagged": float(sum(1 for r in rows if r.get("flag")))})
    return rows
