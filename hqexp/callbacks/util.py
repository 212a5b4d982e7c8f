"""Small helpers shared by the callbacks."""

from __future__ import annotations

import torch


def task_model(pl_module) -> torch.nn.Module:
    return getattr(pl_module, "model", pl_module)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
