"""Adversarial examples against the whole model (client + server), white box: FGSM
(Goodfellow et al. 2015) and PGD (Madry et al. 2018) with an L∞ budget ``eps`` on the client's
raw input (standardised features for rows, standardised signals for windows)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

ATTACKS = ("none", "fgsm", "pgd")


def _grad(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(loss_fn(model(x).float(), y), x)  # no parameter gradients left behind
    return g.detach()


def fgsm(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One step of size ``eps`` along the sign of the input gradient of the loss."""
    if eps == 0:
        return x.detach().clone()
    return (x + eps * _grad(model, loss_fn, x, y).sign()).detach()


def pgd(
    model: nn.Module,
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``steps`` signed-gradient steps of ``step_size`` (default 2.5·eps/steps) from a random start
    in the ``eps`` ball, each projected back onto it."""
    if eps == 0:
        return x.detach().clone()
    step = step_size if step_size is not None else 2.5 * eps / steps
    noise = (torch.rand(x.shape, generator=generator) * 2 - 1).to(x) * eps
    adv = (x + noise).detach()
    for _ in range(steps):
        adv = adv + step * _grad(model, loss_fn, adv, y).sign()
        adv = (x + (adv - x).clamp(-eps, eps)).detach()
    return adv


def adversarial(
    model: nn.Module,
    loss_fn: Callable,
    loader,
    kind: str,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs (logits) on adversarial versions of every batch of ``loader``, and the targets."""
    if kind not in ATTACKS[1:]:
        raise ValueError(f"attack must be one of {', '.join(ATTACKS)}, got {kind!r}")
    model.eval()
    g = torch.Generator().manual_seed(seed)
    outs, ys = [], []
    for x, y in loader:
        adv = fgsm(model, loss_fn, x, y, eps) if kind == "fgsm" else pgd(model, loss_fn, x, y, eps, steps, step_size, g)
        with torch.no_grad():
            outs.append(model(adv).float())
        ys.append(y)
    return torch.cat(outs), torch.cat(ys)
