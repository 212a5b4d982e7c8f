"""``hqexp diagnose shots``: how many shots does a trained model need?

For a checkpoint, at each shot count of ``shots_grid``: the test metrics with every quantum
layer sampling ``N`` shots (mean and spread over ``repeats`` evaluations, each with fresh shots),
and the shot noise of the training gradient (``grad_repeats`` parameter-shift gradients of the
loss on one training batch at fixed parameters: their variance, and their error against the
exact gradient). The exact model is the reference row. The curve is what a researcher needs
before booking device time: the smallest ``N`` whose test metric is within ``tolerance`` of the
exact one is logged as ``shots/needed``.
"""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from hqexp.errors import ConfigError
from hqexp.models import quantum_layers
from hqexp.quantum import resolve_backend
from hqexp.train.evaluate import load_for_eval, start_eval_run
from hqexp.train.scores import test_scores


def _grid(cfg: DictConfig) -> list[int]:
    grid = list(OmegaConf.to_container(cfg.shots_grid, resolve=True) or [])
    if not grid or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in grid):
        raise ConfigError(f"shots_grid must be a non-empty list of positive ints, got {grid!r}")
    for key in ("repeats", "grad_repeats"):
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise ConfigError(f"{key} must be an int >= 2 (a spread needs two draws), got {v!r}")
    return sorted(set(grid))


def _set_shots(cfg: DictConfig, layers: dict, shots: int | None, grad: str, seed: int) -> None:
    opts = dict(OmegaConf.to_container(cfg.backend.options, resolve=True) or {})
    opts.update({"shots": shots, "grad": grad if shots is not None else "exact", "seed": seed})
    for i, q in enumerate(layers.values()):
        noise = OmegaConf.to_container(cfg.backend.noise, resolve=True) if cfg.backend.get("noise") else None
        q.use_backend(resolve_backend(cfg.backend.name, options={**opts, "seed": seed + 7919 * i}, noise=noise))


def _quantum_grad(task, batch, layers: dict) -> torch.Tensor:
    x, y = batch
    params = [q.weights for q in layers.values()]
    task.model.zero_grad(set_to_none=True)
    loss = task.loss(task.model(x).float(), y)
    grads = torch.autograd.grad(loss, params)
    return torch.cat([g.reshape(-1) for g in grads]).double()


def _plot(rows: list[dict], metric: str, exact: dict):
    from hqexp.tracking.plots import plt

    ns = [r["shots"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.errorbar(ns, [r[metric] for r in rows], yerr=[r[f"{metric}_std"] for r in rows], marker="o", capsize=3)
    a1.axhline(exact[metric], color="k", ls="--", lw=1, label="exact")
    a1.set_xscale("log")
    a1.set_xlabel("shots per circuit")
    a1.set_ylabel(metric)
    a1.set_title("test metric against shots")
    a1.legend()
    var = np.array([r["grad_var"] for r in rows])
    a2.loglog(ns, var, "o-", label="Var of the shot-noise gradient")
    a2.loglog(ns, var[0] * ns[0] / np.asarray(ns, dtype=float), "k:", label="1/N")
    a2.loglog(ns, [r["grad_rel_error"] ** 2 * exact["grad_norm2"] for r in rows], "s--", label="mean |g_N - g|²")
    a2.set_xlabel("shots per circuit")
    a2.set_ylabel("per-parameter variance")
    a2.set_title("parameter-shift gradient noise")
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def shots_curve(cfg: DictConfig) -> dict:
    """Test metrics and gradient noise of a checkpoint against shots; one MLflow run."""
    import lightning as L

    grid = _grid(cfg)
    task, dm, model, meta, path, given = load_for_eval(cfg)
    layers = quantum_layers(model)
    if not layers:
        raise ConfigError("this checkpoint's model has no quantum layer: there are no shots to count")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    metric = cfg.get("shots_metric") or ("test/rmse" if dm.info.task == "regression" else "test/acc")
    model.eval()  # dropout and batch norm fixed: the spread below is shot noise alone
    batch = next(iter(dm.train_dataloader()))
    rec = start_eval_run(cfg, "diagnose shots", model, meta, path, given)
    _set_shots(cfg, layers, None, "exact", int(cfg.seed))
    exact = test_scores(task, dm)
    if metric not in exact:
        raise ConfigError(f"shots_metric={metric} is not a test metric of this task; choose one of: {', '.join(exact)}")
    g_exact = _quantum_grad(task, batch, layers)
    exact_row = {metric: exact[metric], "grad_norm2": float(g_exact.square().mean())}
    rows = []
    for i, n in enumerate(grid):
        scores = []
        for r in range(cfg.repeats):
            _set_shots(cfg, layers, n, cfg.grad, int(cfg.seed) * 1000 + 100 * i + r)
            scores.append(test_scores(task, dm)[metric])
        _set_shots(cfg, layers, n, cfg.grad, int(cfg.seed) * 1000 + 100 * i + 99)
        gs = torch.stack([_quantum_grad(task, batch, layers) for _ in range(cfg.grad_repeats)])
        rows.append(
            {
                "shots": n,
                metric: float(np.mean(scores)),
                f"{metric}_std": float(np.std(scores, ddof=1)),
                "grad_var": float(gs.var(0).mean()),
                "grad_rel_error": float((gs - g_exact).norm(dim=1).mean() / g_exact.norm().clamp_min(1e-300)),
            }
        )
        print(
            f"shots {n}: {metric}={rows[-1][metric]:.4f} ± {rows[-1][f'{metric}_std']:.4f}  "
            f"grad var {rows[-1]['grad_var']:.3g}",
            flush=True,
        )
    _set_shots(cfg, layers, None, "exact", int(cfg.seed))
    tol = float(cfg.tolerance)
    worse_is_higher = metric.endswith(("rmse", "mae", "mse", "loss"))
    needed = next(
        (r["shots"] for r in rows if (r[metric] - exact[metric]) * (-1 if worse_is_higher else 1) >= -tol), None
    )
    key = metric.replace("test/", "")
    for r in rows:
        rec.log_metrics(
            {
                f"shots/{key}": r[metric],
                f"shots/{key}_std": r[f"{metric}_std"],
                "shots/grad_var": r["grad_var"],
                "shots/grad_rel_error": r["grad_rel_error"],
            },
            step=r["shots"],
        )
    summary = {f"shots/exact_{key}": exact[metric], "shots/exact_grad_norm2": exact_row["grad_norm2"]}
    if needed is not None:
        summary["shots/needed"] = float(needed)
    rec.log_metrics(summary)
    rec.set_tags({"shots.metric": metric, "shots.tolerance": str(tol), "shots.grad": str(cfg.grad)})
    import pandas as pd

    rec.log_text(pd.DataFrame(rows).to_csv(index=False), "shots/shots_curve.csv")
    rec.log_figure(_plot(rows, metric, {**exact_row}), "plots/shots_curve.png")
    rec.terminate("FINISHED")
    verdict = (
        f"{needed} shots reach {metric} within {tol:g} of the exact model"
        if needed is not None
        else f"no shot count of the grid reaches {metric} within {tol:g} of exact"
    )
    print(f"\nhqexp diagnose shots: exact {metric}={exact[metric]:.4f}; {verdict}")
    print(f"MLflow run {rec.run_id} (experiment id {rec.experiment_id}); `make ui` then open {rec.ui_path}")
    return {**summary, **{f"shots/{key}/{r['shots']}": r[metric] for r in rows}}
