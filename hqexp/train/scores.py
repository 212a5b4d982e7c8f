"""Test metrics of a model outside the Lightning loop: for re-scoring one model several times
(under other shots or other noise) without a new run each time."""

from __future__ import annotations

import torch

from hqexp.tracking.metrics import regression_metrics, task_scores


def test_scores(task, dm) -> dict[str, float]:
    """The test metrics of ``task``'s model as it is now (no Lightning loop, no logging)."""
    kind = dm.info.task
    probs, targets = [], []
    loss_sum, count = 0.0, 0
    with torch.no_grad():
        for x, y in dm.test_dataloader():
            out = task.model(x).float()
            loss_sum += float(task.loss(out, y)) * len(y)
            count += len(y)
            if kind == "classification":
                probs.append(out.softmax(-1))
            elif kind == "multilabel":
                probs.append(out.sigmoid())
            else:
                probs.append(task.units(out).flatten() if hasattr(task, "units") else out.flatten())
                y = task.units(y).flatten() if hasattr(task, "units") else y.flatten()
            targets.append(y)
    p, t = torch.cat(probs), torch.cat(targets)
    if kind == "regression":
        m = regression_metrics()
        m.update(p, t)
        out = {f"test/{k}": float(v) for k, v in m.compute().items()}
    else:
        out = {f"test/{k}": v for k, v in task_scores(kind, dm.info.n_classes, p, t).items()}
    return {**out, "test/loss": loss_sum / max(count, 1)}
