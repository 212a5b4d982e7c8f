"""``hqexp diagnose noise_bp``: noise-induced barren plateaus (Wang et al., Nat. Commun. 12, 6961, 2021).

With local Pauli noise of strength ``q < 1`` acting on every qubit in every layer, the gradient of
a cost is bounded by ``|∂C/∂θ| ≤ √(8 ln 2)·g·n^{1/2}·q^{bL+1}``, ``b = 1/(2 ln 2)``: it vanishes
exponentially in the depth ``L`` whatever the parameters. This scan measures the mean
``|∂C/∂θ_k|`` of a local cost over random parameter sets against depth, at each noise level and
without noise, fits the decay per layer (``ln mean|∂C| = a + s·L``, a bootstrap interval over the
parameter sets), and sets it beside the bound's slope ``b·ln q``. For depolarizing noise ``q`` is
the factor by which one layer shrinks a single-qubit Pauli component of a qubit: ``(1 − 4p₁/3)``
per single-qubit gate on it and ``(1 − 16p₂/15)`` per two-qubit gate it takes part in.

Each parameter set's gradient is one Heisenberg-picture evaluation of the noisy circuit (one
observable evolved backwards through the channel), so depth costs little.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from hqexp.errors import ConfigError

B_EXPONENT = 1 / (2 * math.log(2))


def _positive_ints(name: str, values, minimum: int = 2) -> list[int]:
    out = list(values) if OmegaConf.is_list(values) or isinstance(values, (list, tuple)) else [values]
    if len(set(out)) < minimum or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in out):
        what = "at least two different positive ints" if minimum > 1 else "positive ints"
        raise ConfigError(f"{name} must be a list of {what}, got {values!r}")
    return sorted(set(out))


def _levels(values) -> list[float]:
    out = list(values) if OmegaConf.is_list(values) or isinstance(values, (list, tuple)) else [values]
    if not out or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1 for v in out):
        raise ConfigError(f"noise_levels must be a list of probabilities in (0, 1], got {values!r}")
    return sorted(float(v) for v in out)


def layer_contraction(ansatz, p1: float, p2: float) -> float:
    """``q``: the smallest per-layer factor by which the noise shrinks a qubit's Pauli components
    (the qubit with the fewest noisy gates in a layer bounds the decay)."""
    from hqexp.quantum import Ansatz

    one = Ansatz.from_config(
        {
            **{k: getattr(ansatz, k) for k in ("embedding", "template", "measurement", "entangler", "pauli_seed")},
            "n_qubits": ansatz.n_qubits,
            "n_layers": 1,
        }
    )
    n = one.n_qubits
    k1, k2 = [0] * n, [0] * n
    for g in one.gates():
        if len(g.wires) == 1 and g.param is not None and g.param[0] in ("x", "c"):
            continue  # the embedding and a fixed pre-rotation come once, not in every layer
        for w in g.wires:
            (k1 if len(g.wires) == 1 else k2)[w] += 1
    qs = [(1 - 4 * p1 / 3) ** a * (1 - 16 * p2 / 15) ** b for a, b in zip(k1, k2)]
    return max(qs)


def mean_abs_gradient(ansatz, noise: dict | None, n_samples: int, seed: int) -> np.ndarray:
    """``|∂C/∂θ|`` averaged over the weights, per random parameter set: ``[n_samples]``."""
    import torch

    from hqexp.diagnostics.landscape import random_weights
    from hqexp.quantum import expval
    from hqexp.quantum.backends import get_backend

    g = torch.Generator().manual_seed(seed)
    weights = random_weights(ansatz, n_samples, g)
    if noise is None:  # noiseless: every parameter set in one batch on the state-vector path
        w = weights.clone().requires_grad_()
        x = torch.zeros(n_samples, ansatz.n_qubits, dtype=torch.float64)
        expval(ansatz, x, w, "torch", dtype="complex128").sum().backward()
        return w.grad.reshape(n_samples, -1).abs().mean(1).numpy()
    be = get_backend("torch", dtype="complex128", noise=noise)
    x = torch.zeros(1, ansatz.n_qubits, dtype=torch.float64)
    out = np.empty(n_samples)
    for s in range(n_samples):  # shared weights: the Heisenberg picture, one observable
        w = weights[s].clone().requires_grad_()
        (grad,) = torch.autograd.grad(expval(ansatz, x, w, be).sum(), w)
        out[s] = float(grad.abs().mean())
    return out


def fit_slope(depths: list[int], samples: list[np.ndarray], n_boot: int, seed: int) -> dict:
    """``ln mean|∂C| = a + s·L`` and a percentile-bootstrap interval of ``s`` over parameter sets."""
    L = np.asarray(depths, dtype=float)
    y = np.log([s.mean() for s in samples])
    slope, intercept = np.polyfit(L, y, 1)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        yb = np.log([s[rng.integers(0, len(s), len(s))].mean() for s in samples])
        boots.append(np.polyfit(L, yb, 1)[0])
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"slope": float(slope), "intercept": float(intercept), "ci_low": float(lo), "ci_high": float(hi)}


def scan(cfg: DictConfig) -> tuple[list[dict], list[dict]]:
    """Mean |∂C/∂θ| rows per (n, p, L) and slope fits per (n, p)."""
    from hqexp.quantum import Ansatz

    qubits = _positive_ints("qubits", cfg.qubits, minimum=1)
    depths = _positive_ints("depths", cfg.depths)
    levels = _levels(cfg.noise_levels)
    if cfg.samples < 2:
        raise ConfigError(f"samples must be >= 2, got {cfg.samples}")
    base = OmegaConf.to_container(cfg.ansatz, resolve=True)
    rows, fits = [], []
    total, done = len(qubits) * (len(levels) + 1) * len(depths), 0
    for n in qubits:
        for p in [0.0, *levels]:
            noise = None if p == 0 else {"kind": "depolarizing", "p1": p, "p2": p}
            per_depth = []
            for L in depths:
                done += 1
                a = Ansatz.from_config({**base, "n_qubits": n, "n_layers": L, "measurement": cfg.cost})
                t0 = time.perf_counter()
                g = mean_abs_gradient(a, noise, int(cfg.samples), int(cfg.seed) + 1000 * n + L)
                per_depth.append(g)
                rows.append(
                    {
                        "n_qubits": n,
                        "p": p,
                        "layers": L,
                        "mean_abs_grad": float(g.mean()),
                        "sem": float(g.std(ddof=1) / math.sqrt(len(g))),
                        "seconds": time.perf_counter() - t0,
                    }
                )
                print(f"[{done}/{total}] n={n} p={p:g} L={L}: mean |dC/dθ| = {g.mean():.3e}", flush=True)
            fit = fit_slope(depths, per_depth, int(cfg.bootstrap), int(cfg.seed))
            q = layer_contraction(
                Ansatz.from_config({**base, "n_qubits": n, "n_layers": 1, "measurement": cfg.cost}), p, p
            )
            fit.update({"n_qubits": n, "p": p, "q_layer": q, "bound_slope": B_EXPONENT * math.log(q) if p > 0 else 0.0})
            fits.append(fit)
    return rows, fits


def _plot(rows: list[dict], fits: list[dict], template: str):
    from hqexp.tracking.plots import plt

    qubits = sorted({r["n_qubits"] for r in rows})
    fig, axes = plt.subplots(1, len(qubits), figsize=(4.2 * len(qubits), 3.8), squeeze=False)
    for ax, n in zip(axes[0], qubits):
        for f in (f for f in fits if f["n_qubits"] == n):
            sel = [r for r in rows if r["n_qubits"] == n and r["p"] == f["p"]]
            L = np.array([r["layers"] for r in sel], dtype=float)
            y = np.array([r["mean_abs_grad"] for r in sel])
            label = "noiseless" if f["p"] == 0 else f"p={f['p']:g} (fit {f['slope']:.3f}/layer)"
            pts = ax.errorbar(L, y, yerr=[r["sem"] for r in sel], marker="o", capsize=2, label=label)[0]
            if f["p"] > 0:  # the bound's slope b·ln q, anchored at the first depth
                ax.plot(L, y[0] * np.exp(f["bound_slope"] * (L - L[0])), ":", color=pts.get_color(), lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("layers L")
        ax.set_ylabel("mean |∂C/∂θ|")
        ax.set_title(f"{template}, {n} qubits (dotted: the bound's slope)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run_noise_bp(cfg: DictConfig) -> dict:
    """The scan, its table and figure, one MLflow run."""
    import pandas as pd

    t0 = time.perf_counter()
    rows, fits = scan(cfg)
    elapsed = time.perf_counter() - t0
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "noise_bp.csv", index=False)
    pd.DataFrame(fits).to_csv(out / "noise_bp_fits.csv", index=False)
    fig = _plot(rows, fits, cfg.ansatz.template)
    fig.savefig(out / "noise_bp.png", dpi=120)
    print(
        f"\nhqexp diagnose noise_bp — {cfg.ansatz.template}, cost {cfg.cost}, {cfg.samples} parameter sets, "
        f"{elapsed:.1f} s; decay per layer of ln mean|∂C/∂θ| [95% bootstrap] against the bound's b·ln q:"
    )
    for f in fits:
        bound = "" if f["p"] == 0 else f"  bound {f['bound_slope']:.4f}  (q per layer {f['q_layer']:.4f})"
        ci = f"[{f['ci_low']:.4f}, {f['ci_high']:.4f}]"
        print(f"  n={f['n_qubits']} p={f['p']:<6g} slope {f['slope']:.4f} {ci}{bound}")
    print(f"files: {out}")
    run_id = None
    if cfg.log_to_mlflow:
        from hqexp.config import project_root
        from hqexp.tracking.store import Recorder, flatten, git_sha

        rec = Recorder.start(
            OmegaConf.to_container(cfg.mlflow, resolve=True),
            run_name=f"diagnose noise_bp {cfg.ansatz.template}",
            tags={
                "hqexp.command": "diagnose noise_bp",
                "template": cfg.ansatz.template,
                "git_sha": git_sha(project_root()),
            },
        )
        rec.log_params(flatten(OmegaConf.to_container(cfg, resolve=True)))
        for f in fits:
            key = f"noise_bp/n{f['n_qubits']}/p{f['p']:g}"
            rec.log_metrics(
                {
                    f"{key}/slope": f["slope"],
                    f"{key}/ci_low": f["ci_low"],
                    f"{key}/ci_high": f["ci_high"],
                    f"{key}/bound_slope": f["bound_slope"],
                }
            )
        for name in ("noise_bp.csv", "noise_bp_fits.csv", "noise_bp.png"):
            rec.log_artifact(out / name, "diagnose")
        rec.log_metrics({"time/diagnose_s": elapsed})
        rec.terminate("FINISHED")
        run_id = rec.run_id
    return {"rows": rows, "fits": fits, "elapsed_s": elapsed, "run_id": run_id}
