"""Cutting a model into client and server parts, and averaging model states (FedAvg).

A splittable model defines ``stages()``: an ordered list of ``(name, module)`` whose
composition is its ``forward``. ``cut = k`` (or the name of stage k) gives the client
stages ``1 … k`` and the server the rest; the U-shaped cut also returns the last stage
(the classifier) to the client.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from hqexp.errors import ConfigError


@dataclass
class Parts:
    """The client side, the server side and (U-shaped only) the client's head."""

    client: nn.Sequential
    server: nn.Sequential
    head: nn.Sequential | None = None


def stages(model: nn.Module, model_name: str = "?") -> list[tuple[str, nn.Module]]:
    """The model's ordered stages, or one line saying it cannot be split."""
    fn = getattr(model, "stages", None)
    if fn is None:
        raise ConfigError(
            f"model={model_name} cannot be split (it defines no stages()); use model=split_conv1d, "
            "vqc_classifier or mlp_classifier with federation=sl|sflv1|sflv2|sl_ushaped"
        )
    return list(fn())


def cut_index(cut: int | str, names: Sequence[str], ushaped: bool, model_name: str = "?") -> int:
    """``cut`` (a 1-based stage number or a stage name) checked against the model's stages."""
    last = len(names) - (2 if ushaped else 1)  # the server keeps at least one stage
    if isinstance(cut, str) and cut in names:
        k = names.index(cut) + 1
    elif isinstance(cut, int) and not isinstance(cut, bool):
        k = cut
    else:
        k = None
    if k is None or not 1 <= k <= last:
        allowed = ", ".join(f"{i + 1} ({n})" for i, n in enumerate(names[:last])) or "none"
        what = "the client keeps the last stage too, so " if ushaped else ""
        raise ConfigError(
            f"federation.cut={cut!r} is outside model={model_name} (stages: {', '.join(names)}); "
            f"{what}choose one of: {allowed}"
        )
    return k


def cut_model(model: nn.Module, cut: int | str, ushaped: bool = False, model_name: str = "?") -> Parts:
    """The client and server parts of ``model`` (sharing its modules, not copies)."""
    st = stages(model, model_name)
    k = cut_index(cut, [n for n, _ in st], ushaped, model_name)
    seq = lambda items: nn.Sequential(OrderedDict(items))  # noqa: E731 - keeps the stage names
    if ushaped:
        return Parts(seq(st[:k]), seq(st[k:-1]), seq(st[-1:]))
    return Parts(seq(st[:k]), seq(st[k:]))


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def fedavg(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """The weighted mean of model states (McMahan et al. 2017: weights = sample counts).

    Floating-point tensors are averaged; integer ones (e.g. BatchNorm's batch counter)
    are taken from the first state.
    """
    if not states:
        raise ValueError("fedavg needs at least one state")
    w = torch.tensor([float(x) for x in weights], dtype=torch.float64)
    w = w / w.sum()
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            acc = sum(s[key].double() * w[i] for i, s in enumerate(states))
            out[key] = acc.to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def detached_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``module``'s state (what goes over the wire)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
