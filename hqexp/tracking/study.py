"""The hybrid-vs-classical study table of a sweep (``study: hqnn`` in a sweep preset).

For every cell (training-set size × qubit count) of a sweep over
{hqnn_autoencoder, hqnn_classical} × ``dataset.n_samples`` × ``model.quantum.n_qubits``
× seeds, the parent run gets:

* test RMSE of each twin: mean and 95 % Student-t interval over seeds;
* the quantum contribution qc = 1 − mean(hybrid test MSE) / mean(classical test MSE)
  (> 0: the quantum layer helped), with a 95 % bootstrap interval that resamples the
  seeds of each twin independently — with 3 seeds it is wide, and it says so;
* the hybrid's barren-plateau indicators (last ``bp/grad_var``, ``bp/grad_abs``,
  ``bp/frac_small`` of its QuantumLayer, mean over seeds).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from hqexp.tracking.record import study_table

HYBRID, CLASSICAL = "hqnn_autoencoder", "hqnn_classical"
BP_KEYS = ("bp/grad_var/quantum", "bp/grad_abs/quantum", "bp/frac_small/quantum")


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t interval (half-width NaN for one value)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(stats.t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def qc_interval(
    hybrid: list[float], classical: list[float], n_boot: int = 5000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """qc = 1 − mean(hybrid)/mean(classical) and a percentile-bootstrap interval."""
    h, c = np.asarray(hybrid, dtype=float), np.asarray(classical, dtype=float)
    qc = 1.0 - h.mean() / c.mean()
    rng = np.random.default_rng(seed)
    hb = h[rng.integers(0, len(h), (n_boot, len(h)))].mean(1)
    cb = c[rng.integers(0, len(c), (n_boot, len(c)))].mean(1)
    boots = 1.0 - hb / cb
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(qc), float(lo), float(hi)


def _cell_of(run) -> tuple[str, int | None, int | None] | None:
    model = run.data.tags.get("model")
    if model not in (HYBRID, CLASSICAL):
        return None
    p = run.data.params
    ns = p.get("dataset.n_samples")
    nq = p.get("model.quantum.n_qubits")
    return model, (None if ns in (None, "None") else int(ns)), (None if nq is None else int(nq))


def study_rows(children) -> list[dict]:
    """One row per (n_samples, n_qubits) cell from the finished child runs."""
    cells: dict[tuple, dict[str, list]] = {}
    for run in children:
        if run.info.status != "FINISHED":
            continue
        key = _cell_of(run)
        m = run.data.metrics
        if key is None or "test/rmse" not in m:
            continue
        model, ns, nq = key
        d = cells.setdefault((ns, nq), {HYBRID: [], CLASSICAL: [], "bp": []})
        d[model].append((m["test/rmse"], m.get("test/mse", m["test/rmse"] ** 2)))
        if model == HYBRID:
            d["bp"].append([m.get(k, float("nan")) for k in BP_KEYS])
    rows = []
    for (ns, nq), d in sorted(cells.items(), key=lambda kv: (kv[0][0] or 10**12, kv[0][1] or 0)):
        row: dict = {
            "n_samples": "all" if ns is None else ns,
            "n_qubits": nq,
            "n_hybrid": len(d[HYBRID]),
            "n_classical": len(d[CLASSICAL]),
        }
        for name, tag in ((HYBRID, "hybrid"), (CLASSICAL, "classical")):
            if d[name]:
                mean, half = t_interval([r for r, _ in d[name]])
                row[f"{tag}_rmse_mean"], row[f"{tag}_rmse_ci95"] = mean, half
        if d[HYBRID] and d[CLASSICAL]:
            qc, lo, hi = qc_interval([m for _, m in d[HYBRID]], [m for _, m in d[CLASSICAL]])
            row.update({"qc": qc, "qc_low": lo, "qc_high": hi})
        if d["bp"]:
            with warnings.catch_warnings():  # an indicator missing in every seed stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                bp = np.nanmean(np.asarray(d["bp"], dtype=float), axis=0)
            row.update({"hybrid_bp_grad_var": bp[0], "hybrid_bp_grad_abs": bp[1], "hybrid_bp_frac_small": bp[2]})
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    def f(v, spec=".4g"):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    lines = [
        "| n_samples | n_qubits | hybrid RMSE (mean ± 95% CI) | classical RMSE (mean ± 95% CI) | "
        "qc [95% bootstrap] | hybrid Var[∂θ] | hybrid mean abs ∂θ | seeds h/c |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        h = f"{f(r.get('hybrid_rmse_mean'))} ± {f(r.get('hybrid_rmse_ci95'), '.2g')}"
        c = f"{f(r.get('classical_rmse_mean'))} ± {f(r.get('classical_rmse_ci95'), '.2g')}"
        qc = (
            f"{f(r.get('qc'), '+.3f')} [{f(r.get('qc_low'), '+.3f')}, {f(r.get('qc_high'), '+.3f')}]"
            if "qc" in r
            else ""
        )
        lines.append(
            f"| {r['n_samples']} | {r['n_qubits']} | {h} | {c} | {qc} | "
            f"{f(r.get('hybrid_bp_grad_var'), '.2e')} | {f(r.get('hybrid_bp_grad_abs'), '.2e')} | "
            f"{r['n_hybrid']}/{r['n_classical']} |"
        )
    lines += [
        "",
        "qc = 1 − mean(hybrid test MSE)/mean(classical test MSE): > 0 means the quantum layer "
        "helped. Intervals over seeds; with few seeds they are wide — read overlapping intervals as "
        "'no evidence either way'.",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict]):

    from hqexp.tracking.plots import plt  # the Agg backend, set before pyplot loads

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for nq in sorted({r["n_qubits"] for r in rows}):
        sel = [r for r in rows if r["n_qubits"] == nq and "qc" in r and r["n_samples"] != "all"]
        if not sel:
            continue
        x = [r["n_samples"] for r in sel]
        qc = np.array([r["qc"] for r in sel])
        err = np.array([[r["qc"] - r["qc_low"] for r in sel], [r["qc_high"] - r["qc"] for r in sel]])
        a1.errorbar(x, qc, yerr=err, marker="o", capsize=3, label=f"{nq} qubits")
        a2.plot(x, [r.get("hybrid_rmse_mean") for r in sel], "o-", label=f"hybrid, {nq} q")
        a2.plot(x, [r.get("classical_rmse_mean") for r in sel], "s--", label=f"classical, {nq} q")
    a1.axhline(0.0, color="k", lw=0.8)
    a1.set_xscale("log")
    a1.set_xlabel("training samples")
    a1.set_ylabel("quantum contribution qc")
    a1.set_title("does the quantum layer help?")
    a1.legend(fontsize=8)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("training samples")
    a2.set_ylabel("test RMSE")
    a2.set_title("hybrid vs classical twin")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def record_hqnn_study(recorder) -> list[dict]:
    """Compute the study table from the parent's children and log it on the parent."""
    rows = study_table(recorder, "hqnn_study", study_rows, markdown, plot)
    for r in rows:
        if "qc" in r:
            recorder.log_metrics({f"study/qc/n{r['n_samples']}_q{r['n_qubits']}": r["qc"]})
    return rows
