"""A paired verdict for a sweep: does one side beat its baseline, by a test a referee would accept?

A sweep preset (or the command line) names what is compared: ``compare={by: model, baseline:
mlp_classifier}``. The children are grouped into *cells* (their overrides without the seed and
the compared group) and, in each cell, every other side is paired with the baseline *by seed* — the
same seed is the same data split and initialisation, so the difference is paired. Per cell:

* each side's mean and 95 % Student-t interval;
* the paired differences: their mean, a 95 % percentile-bootstrap interval (scipy), and the
  two-sided Wilcoxon signed-rank p-value (scipy, exact for small n);
* Holm's correction across all cells of the sweep;
* a verdict — ``better``, ``worse`` or ``no difference shown`` at α = 0.05 after correction — and
  the smallest difference those seeds could have detected (paired t, 80 % power), with the
  Wilcoxon's floor: with n pairs its p-value cannot go below 2/2ⁿ, so 3 or 4 seeds can never show
  a difference at 0.05, whatever the data — the table says so instead of implying "no effect".

Written to the parent as ``study/verdict.{md,csv,png}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

ALPHA = 0.05
#: ``compare.baseline=twin``: each model against the twin its config declares (``compare_to``)
TWIN = "twin"
_LOWER_IS_BETTER = ("loss", "rmse", "mae", "mse", "error")


def higher_is_better(metric: str) -> bool:
    return not any(k in metric.split("/")[-1] for k in _LOWER_IS_BETTER)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN), in the input order."""
    p = np.asarray(pvalues, dtype=float)
    ok = np.where(~np.isnan(p))[0]
    out = np.full(len(p), np.nan)
    order = ok[np.argsort(p[ok])]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def paired_stats(diffs: Sequence[float], seed: int = 0) -> dict:
    """Mean, bootstrap interval, Wilcoxon p, and the detectable difference of paired ``diffs``."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    n = len(d)
    out = {"n_pairs": n, "diff_mean": float(d.mean()) if n else math.nan}
    if n < 2:
        return {**out, "diff_ci_low": math.nan, "diff_ci_high": math.nan, "p_wilcoxon": math.nan, "mde": math.nan}
    if np.allclose(d, d[0]):
        lo = hi = float(d[0])
    else:
        import inspect

        seeding = {"rng": seed} if "rng" in inspect.signature(stats.bootstrap).parameters else {"random_state": seed}
        boot = stats.bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=9999, method="percentile", **seeding)
        lo, hi = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    p = 1.0 if np.all(d == 0) else float(stats.wilcoxon(d, alternative="two-sided").pvalue)
    sd = float(d.std(ddof=1))
    mde = (stats.t.ppf(1 - ALPHA / 2, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / math.sqrt(n)
    return {**out, "diff_ci_low": lo, "diff_ci_high": hi, "p_wilcoxon": p, "mde": float(mde), "p_floor": 2.0 / 2**n}


def check_spec(spec, groups: dict[str, list[str]]) -> tuple[str, str] | None:
    """``(by, baseline)`` of a ``compare`` mapping, or None; one line for a twin that does not exist.
    ``groups``: each config group's choices (a baseline of a group must be one of them)."""
    from hqexp.errors import ConfigError

    if spec is None:
        return None
    if not hasattr(spec, "get") or set(spec) - {"by", "baseline"} or not spec.get("by") or not spec.get("baseline"):
        raise ConfigError(
            "compare must be {by: <group or tag>, baseline: <its value>}, e.g. {by: model, baseline: mlp_classifier}"
        )
    by, baseline = str(spec["by"]), str(spec["baseline"])
    if baseline == TWIN:
        if by != "model":
            raise ConfigError(
                f"compare.baseline=twin pairs each model with the twin it declares: set compare.by=model, not {by}"
            )
        return by, baseline
    if by in groups and baseline not in groups[by]:
        raise ConfigError(f"compare.baseline={baseline} is not a {by} (choose one of: {', '.join(groups[by])})")
    return by, baseline


def _cell(overrides: str, by: str) -> str:
    parts = [p for p in overrides.split() if not re.match(rf"^\+?(seed|{re.escape(by)}|cv\.fold)=", p)]
    return " ".join(parts) or "(all jobs)"


def verdict_rows(children, metric: str, by: str, baseline: str) -> list[dict]:
    """One row per (cell, side ≠ baseline); see the module docstring."""
    from hqexp.tracking.study import t_interval

    cells: dict[str, dict[str, dict[str, float]]] = {}
    twin_of: dict[str, str] = {}  # side -> its declared twin (baseline=twin)
    done = [r for r in children if r.info.status == "FINISHED" and metric in r.data.metrics]
    common = set.intersection(*(set(r.data.tags.get("hqexp.overrides", "").split()) for r in done)) if done else set()
    for run in done:
        side = run.data.tags.get(by) or run.data.params.get(by)
        seed = run.data.params.get("seed")
        if side is None or seed is None:
            continue
        twin = run.data.params.get("model.compare_to")
        if twin not in (None, "None"):
            twin_of[side] = twin
        mine = " ".join(o for o in run.data.tags.get("hqexp.overrides", "").split() if o not in common)
        cell = _cell(mine, by)
        cells.setdefault(cell, {}).setdefault(side, {})[str(seed)] = float(run.data.metrics[metric])
    rows = []
    sign = 1.0 if higher_is_better(metric) else -1.0
    for cell, sides in sorted(cells.items()):
        for side, by_seed in sorted(sides.items()):
            against = twin_of.get(side) if baseline == TWIN else baseline
            if against is None or side == against or (baseline == TWIN and against not in sides):
                continue  # twin mode: a model without a declared twin in this sweep is not compared
            base = sides.get(against, {})
            seeds = sorted(set(by_seed) & set(base))
            diffs = [by_seed[s] - base[s] for s in seeds]
            (m1, h1), (m0, h0) = t_interval(list(by_seed.values())), t_interval(list(base.values()) or [math.nan])
            rows.append(
                {
                    "cell": cell,
                    "side": side,
                    "baseline": against,
                    "metric": metric,
                    "side_mean": m1,
                    "side_ci95": h1,
                    "baseline_mean": m0,
                    "baseline_ci95": h0,
                    **paired_stats(diffs),
                }
            )
    for r, p in zip(rows, holm([r["p_wilcoxon"] for r in rows])):
        r["p_holm"] = p
        if r["n_pairs"] < 2:
            r["verdict"] = f"not tested: {r['n_pairs']} paired seed(s), 2 needed"
        elif p < ALPHA:
            r["verdict"] = "better" if sign * r["diff_mean"] > 0 else "worse"
        elif r["p_floor"] > ALPHA:
            r["verdict"] = f"no difference shown ({r['n_pairs']} seeds cannot: Wilcoxon p ≥ {r['p_floor']:.3g})"
        else:
            r["verdict"] = "no difference shown"
    return rows


def _f(v, spec: str = ".4f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(rows: list[dict]) -> str:
    metric = rows[0]["metric"]
    lines = [
        f"| cell | baseline | baseline's {metric} | side | side's {metric} | paired difference [95 % bootstrap] | "
        "Wilcoxon p | Holm p | detectable difference | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['baseline']} | {_f(r['baseline_mean'])} ± {_f(r['baseline_ci95'], '.3f')} | "
            f"{r['side']} | "
            f"{_f(r['side_mean'])} ± {_f(r['side_ci95'], '.3f')} | {_f(r['diff_mean'], '+.4f')} "
            f"[{_f(r['diff_ci_low'], '+.4f')}, {_f(r['diff_ci_high'], '+.4f')}] (n={r['n_pairs']}) | "
            f"{_f(r['p_wilcoxon'], '.3g')} | {_f(r['p_holm'], '.3g')} | {_f(r['mde'], '.4f')} | {r['verdict']} |"
        )
    better = "higher" if higher_is_better(metric) else "lower"
    lines += [
        "",
        f"Pairs share a seed (same split and initialisation); difference = side − baseline ({better} is better). "
        f"Holm-corrected across the {len(rows)} comparison(s) at α = {ALPHA}. Detectable difference: the paired "
        "t-test's minimum effect at 80 % power with these seeds' spread.",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict]):
    from hqexp.tracking.plots import plt

    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows) + 2), 4))
    xs = np.arange(len(rows))
    for offset, (key, label) in enumerate((("baseline", rows[0]["baseline"]), ("side", "side"))):
        means = [r[f"{key}_mean"] for r in rows]
        errs = [0 if math.isnan(r[f"{key}_ci95"]) else r[f"{key}_ci95"] for r in rows]
        ax.errorbar(xs + (offset - 0.5) * 0.2, means, yerr=errs, fmt="o", capsize=3, label=label)
    ax.set_xticks(xs, [f"{r['side']}\n{r['cell'][:30]}\n{r['verdict'].split(' (')[0]}" for r in rows], fontsize=7)
    ax.set_ylabel(rows[0]["metric"])
    ax.set_title("paired verdict per cell (95 % t-intervals)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def record_verdicts(recorder, metric: str, by: str, baseline: str) -> list[dict]:
    """The verdict table and plot on the sweep's parent run (nothing when no cell has the baseline)."""
    from hqexp.tracking.record import study_table

    return study_table(
        recorder, "verdict", lambda children: verdict_rows(children, metric, by, baseline), markdown, plot
    )
