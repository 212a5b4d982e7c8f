"""Stratified k-fold cross-validation: a parent run holding mean/std, one child run per fold."""

from __future__ import annotations

from omegaconf import DictConfig

from hqexp.config import output_dir
from hqexp.tracking import record


def train_cv(cfg: DictConfig, folds: int) -> dict:
    """Train every fold as a child run of one parent; log the summary on the parent."""
    import numpy as np
    import pandas as pd

    from hqexp.tracking.store import retry
    from hqexp.train.fit import train_one

    parent = record.start_run(cfg, "train", {"cv.folds": str(folds)})
    record.log_config(parent, cfg)
    rows, used = [], set()
    for i in range(folds):  # a failing fold marks itself; the CLI guard ends the parent
        metrics, rec = train_one(cfg, i, parent=parent.run_id, out_dir=output_dir() / f"fold_{i}")
        rec.terminate("FINISHED")
        used.add(retry(lambda rec=rec: rec.client.get_run(rec.run_id)).data.tags.get("backend_used", "none"))
        rows.append({"fold": i, "run_id": rec.run_id, **metrics})
    df = pd.DataFrame(rows)
    summary: dict[str, float] = {}
    for col in df.columns:
        if col in ("fold", "run_id") or not np.issubdtype(df[col].dtype, np.number):
            continue
        vals = df[col].dropna().to_numpy(float)
        summary[f"cv/{col}_mean"] = float(vals.mean())
        summary[f"cv/{col}_std"] = float(vals.std(ddof=1) if len(vals) > 1 else 0.0)
    # The fold means under the usual names, so sweeps and the UI compare CV runs like any other.
    means = {c: float(df[c].mean()) for c in df.columns if c.startswith(("test/", "int8/", "params/", "model/"))}
    means["time/fit_s"] = float(df["time/fit_s"].sum())
    if "time/epochs" in df:
        means["time/epochs"] = float(df["time/epochs"].mean())
    parent.set_tags({"backend_used": ",".join(sorted(used))})
    for key in ("mem/peak_rss_mb", "mem/peak_cuda_mb", "mem/fit_rss_delta_mb"):
        if key in df:
            means[key] = float(df[key].max())
    parent.log_metrics({**summary, **means})
    parent.log_text(df.to_csv(index=False), "cv/folds.csv")
    lines = ["| metric | mean | std |", "|---|---|---|"] + [
        f"| {k[3:-5]} | {v:.4f} | {summary[k[:-5] + '_std']:.4f} |"
        for k, v in summary.items()
        if k.endswith("_mean") and k.startswith("cv/test/")
    ]
    parent.log_text("\n".join(lines) + "\n", "cv/summary.md")
    parent.terminate("FINISHED")
    print(f"\n{folds}-fold CV (mean ± std over folds):")
    for k, v in summary.items():
        if k.startswith("cv/test/") and k.endswith("_mean"):
            print(f"  {k[3:-5]:<22} {v:.4f} ± {summary[k[:-5] + '_std']:.4f}")
    record.headline(means, parent, "train")
    return {**summary, **means}
