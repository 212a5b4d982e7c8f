"""``hqexp diagnose``: barren-plateau scan, expressibility and entanglement of an ansatz.

Everything it prints also lands in files (CSV, PNG) in the Hydra run directory and,
by default, in one MLflow run.
"""

from __future__ import annotations

import csv
import math
import re
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from hqexp.errors import ConfigError

_DEPTH = re.compile(r"^\s*(\d+)\s*\*?\s*n\s*$")


def parse_depth(spec: object) -> tuple[str, callable]:
    """A depth entry: an int (fixed layers) or ``"Kn"`` / ``"K*n"`` (K layers per qubit)."""
    if isinstance(spec, bool):
        raise ConfigError(f"bad depth {spec!r}: use an int or 'Kn' (e.g. '5n')")
    if isinstance(spec, int):
        if spec < 1:
            raise ConfigError(f"depth must be >= 1, got {spec}")
        return str(spec), lambda n, d=spec: d
    m = _DEPTH.match(str(spec))
    if m and int(m.group(1)) >= 1:
        k = int(m.group(1))
        return f"{k}n", lambda n, k=k: k * n
    raise ConfigError(f"bad depth {spec!r}: use an int (layers) or 'Kn' such as '5n' (K layers per qubit)")


def _ints(name: str, values) -> list[int]:
    out = list(values) if isinstance(values, (list, tuple)) or OmegaConf.is_list(values) else [values]
    if not out or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in out):
        raise ConfigError(f"{name} must be a list of positive ints, got {values!r}")
    return out


def _ansatz(cfg: DictConfig, n: int, layers: int, measurement: str):
    from hqexp.quantum import Ansatz

    base = OmegaConf.to_container(cfg.ansatz, resolve=True)
    for k in ("n_qubits", "n_layers", "measurement"):
        if k in base:
            raise ConfigError(f"ansatz.{k} is set by the scan (qubits / depths / costs); remove it")
    return Ansatz.from_config({**base, "n_qubits": n, "n_layers": layers, "measurement": measurement})


def _features(cfg: DictConfig, n: int) -> np.ndarray:
    """The dataset's features reduced by PCA to ``n`` and scaled into [0, π]."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    from hqexp.data.tabular import load_tabular

    X, _, _ = load_tabular(cfg.entanglement.dataset)
    X = StandardScaler().fit_transform(X)
    k = min(n, X.shape[1])
    Z = PCA(n_components=k, random_state=0).fit_transform(X)
    if k < n:  # fewer features than qubits: the rest stay in |0>
        Z = np.concatenate([Z, np.zeros((Z.shape[0], n - k))], axis=1)
    return MinMaxScaler((0.0, math.pi)).fit_transform(Z)


def _table(rows: list[dict], cols: list[str]) -> str:
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    body = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)] if body else [len(c) for c in cols]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(b) for b in body)])


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _plot(results: dict, fits: dict, depth: str, template: str):

    from hqexp.tracking.plots import plt  # the Agg backend, set before pyplot loads

    fig, ax = plt.subplots(figsize=(6, 4))
    for cost, res in results.items():
        ns = np.array([r.n_qubits for r in res])
        var = np.array([r.var_mean for r in res])
        (pts,) = ax.plot(ns, var, "o", label=cost)
        f = fits.get(cost)
        if f is not None:
            ax.plot(
                ns,
                np.exp(f.intercept + f.slope * ns),
                "-",
                color=pts.get_color(),
                label=f"fit: Var ∝ 2^({f.slope_log2:.2f}·n), R²={f.r2:.3f}",
            )
    ax.set_yscale("log")
    ax.set_xlabel("qubits n")
    ax.set_ylabel("mean_k Var[∂C/∂θ_k]")
    ax.set_title(f"gradient variance — {template}, depth {depth}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _structure(cfg: DictConfig, ex, label: str, a, backend) -> dict:
    """Expressibility, Meyer–Wallach and the data's entanglement entropy of one grid point."""
    n = a.n_qubits
    row = {"depth": label, "n_qubits": n, "n_layers": a.n_layers}
    if cfg.expressibility.enabled and n <= cfg.expressibility.max_qubits:
        row["expressibility_kl"] = ex.expressibility(
            a, cfg.expressibility.pairs, cfg.expressibility.bins, seed=cfg.seed, backend=backend
        )
    if cfg.entanglement.enabled and n <= cfg.entanglement.max_qubits:
        row["meyer_wallach_q"] = ex.entangling_capability(a, cfg.entanglement.samples, seed=cfg.seed, backend=backend)
        row["haar_meyer_wallach_q"] = (2**n - 2) / (2**n + 1)
        if cfg.entanglement.dataset:
            d = ex.data_entropy(
                a, _features(cfg, n), seed=cfg.seed, max_samples=cfg.entanglement.samples, backend=backend
            )
            row.update({f"data_{k}": v for k, v in d.items() if k != "n_states"})
    return row


def run_diagnose(cfg: DictConfig) -> dict:
    """Scan qubits × depths × costs; print, write CSV/PNG and record one MLflow run."""
    import torch

    from hqexp.diagnostics.landscape import fit_decay
    from hqexp.quantum import from_config

    qubits, depths, costs = _grid(cfg)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    backend = from_config(OmegaConf.to_container(cfg.backend, resolve=True))
    t0 = time.perf_counter()

    var_rows, fit_rows, struct_rows, figures = [], [], [], {}
    for i, (label, depth_of) in enumerate(depths):
        results, v_rows, s_rows = _scan_depth(
            cfg, label, depth_of, qubits, costs, backend, first=i * len(qubits), total=len(depths) * len(qubits)
        )
        var_rows += v_rows
        struct_rows += s_rows
        fits = {}
        for c, res in results.items():
            if len({r.n_qubits for r in res}) >= 2:
                fits[c] = fit_decay(res, n_boot=cfg.bootstrap, seed=cfg.seed)
                fit_rows.append({"depth": label, "cost": c, **fits[c].row()})
        figures[label] = _plot(results, fits, label, cfg.ansatz.template)
    elapsed = time.perf_counter() - t0

    files = _write_files(out_dir, var_rows, fit_rows, struct_rows, figures)
    _print_report(cfg, backend, elapsed, var_rows, fit_rows, struct_rows, out_dir)
    summary = {"var_rows": var_rows, "fit_rows": fit_rows, "struct_rows": struct_rows, "elapsed_s": elapsed}
    if cfg.log_to_mlflow:
        summary["run_id"] = _record(cfg, var_rows, fit_rows, struct_rows, files, elapsed, backend)
    return summary


def _grid(cfg: DictConfig) -> tuple[list[int], list[tuple[str, callable]], list[str]]:
    """The scan's qubit counts, depths and costs, checked."""
    from hqexp.diagnostics.landscape import SCALAR_MEASUREMENTS

    qubits = _ints("qubits", cfg.qubits)
    depths = [parse_depth(d) for d in (cfg.depths if OmegaConf.is_list(cfg.depths) else [cfg.depths])]
    costs = list(cfg.costs)
    for c in costs:
        if c not in SCALAR_MEASUREMENTS:
            raise ConfigError(f"unknown cost {c!r}; choose from: {', '.join(SCALAR_MEASUREMENTS)}")
    if cfg.samples < 2:
        raise ConfigError(f"samples must be >= 2, got {cfg.samples}")
    return qubits, depths, costs


def _scan_depth(
    cfg: DictConfig, label: str, depth_of, qubits: list[int], costs: list[str], backend, first: int, total: int
) -> tuple[dict[str, list], list[dict], list[dict]]:
    """Gradient variances (per cost) and structure of every qubit count at one depth:
    the per-cost results, their variance rows and the structure rows."""
    from hqexp.diagnostics import expressibility as ex
    from hqexp.diagnostics.landscape import gradient_variance

    results: dict[str, list] = {c: [] for c in costs}
    var_rows, struct_rows = [], []
    for i, n in enumerate(qubits):
        t_point = time.perf_counter()
        print(f"[{first + i + 1}/{total}] depth {label}, {n} qubits ({depth_of(n)} layers) ...", end=" ", flush=True)
        for c in costs:
            if c == "z0z1" and n < 2:
                continue
            r = gradient_variance(
                _ansatz(cfg, n, depth_of(n), c), cfg.samples, seed=cfg.seed + 1000 * n, backend=backend
            )
            results[c].append(r)
            var_rows.append({"depth": label, "cost": c, **r.row()})
        struct_rows.append(_structure(cfg, ex, label, _ansatz(cfg, n, depth_of(n), "z0"), backend))
        print(f"{time.perf_counter() - t_point:.1f} s", flush=True)
    return results, var_rows, struct_rows


def _write_files(out_dir: Path, var_rows: list, fit_rows: list, struct_rows: list, figures: dict) -> list[Path]:
    """CSV tables and one PNG per depth into ``out_dir``; the paths written."""
    paths = [out_dir / "bp_variance.csv", out_dir / "bp_fits.csv", out_dir / "expressibility_entanglement.csv"]
    _write_csv(paths[0], var_rows)
    if fit_rows:
        _write_csv(paths[1], fit_rows)
    _write_csv(paths[2], struct_rows)
    for label, fig in figures.items():
        paths.append(out_dir / f"bp_variance_depth_{label}.png")
        fig.savefig(paths[-1], dpi=120)
    return paths


def _print_report(
    cfg: DictConfig, backend, elapsed: float, var_rows: list, fit_rows: list, struct_rows: list, out_dir: Path
) -> None:
    print(
        f"hqexp diagnose — template {cfg.ansatz.template}, {cfg.samples} parameter sets per point, "
        f"backend {backend.name}, {elapsed:.1f} s"
    )
    print("\ngradient variance (mean over parameters k of Var[dC/dθ_k]):")
    print(_table(var_rows, ["depth", "cost", "n_qubits", "n_layers", "var_mean", "var_first", "abs_mean"]))
    if fit_rows:
        print("\nfit ln Var = a + s·n  (s/ln2 = exponent of 2; CI = bootstrap over parameter sets):")
        print(_table(fit_rows, ["depth", "cost", "slope", "slope_log2", "ci_low", "ci_high", "r2"]))
    print("\nexpressibility (KL to Haar, 0 = Haar) and entanglement:")
    print(_table(struct_rows, [k for k in struct_rows[0]] if struct_rows else []))
    print(f"\nfiles: {out_dir}")


def _record(cfg, var_rows, fit_rows, struct_rows, files, elapsed, backend) -> str:
    from hqexp.config import project_root
    from hqexp.tracking.store import Recorder, flatten, git_sha

    mcfg = OmegaConf.to_container(cfg.mlflow, resolve=True)
    rec = Recorder.start(
        mcfg,
        run_name=f"diagnose {cfg.ansatz.template}",
        tags={
            "hqexp.command": "diagnose",
            "template": cfg.ansatz.template,
            "backend": backend.name,
            "git_sha": git_sha(project_root()),
        },
    )
    rec.log_params(flatten(OmegaConf.to_container(cfg, resolve=True)))
    metrics = {"time/diagnose_s": elapsed}
    for r in fit_rows:
        for k in ("slope", "slope_log2", "ci_low", "ci_high", "r2"):
            metrics[f"bp/fit/{r['cost']}/depth_{r['depth']}/{k}"] = r[k]
    for r in var_rows:
        rec.log_metrics({f"bp/var/{r['cost']}/depth_{r['depth']}": r["var_mean"]}, step=r["n_qubits"])
    for r in struct_rows:
        rec.log_metrics(
            {f"{k}/depth_{r['depth']}": v for k, v in r.items() if isinstance(v, float) and k not in ("depth",)},
            step=r["n_qubits"],
        )
    rec.log_metrics(metrics)
    for f in files:
        if Path(f).exists():
            rec.log_artifact(f, "diagnose")
    rec.terminate("FINISHED")
    print(f"MLflow run {rec.run_id}")
    return rec.run_id
