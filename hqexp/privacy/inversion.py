"""Model-inversion attacks on the smashed data: how much of the raw input can be rebuilt from
what crosses the cut.

* :func:`decoder_attack` (black box): the attacker holds auxiliary (input, activation) pairs —
  from data not used in training — and trains a decoder from activations back to inputs, then
  decodes the victims' activations (the "inverse network" of He et al., ACSAC 2019).
* :func:`whitebox_attack`: the server knows the client's weights (in split-federated learning
  it receives them after FedAvg) and optimises an input until the client side maps it to the
  observed activation.

:func:`scores`: mean squared error on the (standardised) inputs, Pearson r per channel
(per feature for rows) averaged over channels, and PRD — the percentage root-mean-square
difference used for ECG compression — for signals.
"""

from __future__ import annotations

import torch
from torch import nn


def scores(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    """``mse``, ``corr`` (mean per-channel Pearson r) and, for ``[N, C, T]`` signals, ``prd`` (%)."""
    x, x_hat = x.detach().double(), x_hat.detach().double().reshape(x.shape)
    out = {"mse": float(((x - x_hat) ** 2).mean())}
    per = x.transpose(0, 1).reshape(x.shape[1], -1), x_hat.transpose(0, 1).reshape(x.shape[1], -1)
    a, b = per[0] - per[0].mean(1, keepdim=True), per[1] - per[1].mean(1, keepdim=True)
    denom = (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    out["corr"] = float(((a * b).sum(1) / denom).mean())
    if x.dim() == 3:
        out["prd"] = float(100 * torch.sqrt(((x - x_hat) ** 2).sum() / (x**2).sum().clamp_min(1e-12)))
    return out


def decoder_attack(
    aux_x: torch.Tensor,
    aux_z: torch.Tensor,
    target_x: torch.Tensor,
    target_z: torch.Tensor,
    epochs: int = 300,
    hidden: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, float]:
    """Train an MLP decoder ``z → x`` on the auxiliary pairs; score it on the target pairs."""
    g = torch.Generator().manual_seed(seed)
    zin, xout = aux_z[0].numel(), aux_x[0].numel()
    dec = nn.Sequential(
        nn.Linear(zin, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, xout)
    )
    with torch.no_grad():
        for p in dec.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.02 if p.dim() == 1 else (2 / p.shape[-1]) ** 0.5))
    opt = torch.optim.Adam(dec.parameters(), lr=lr)
    Z, X = aux_z.reshape(len(aux_z), -1).float(), aux_x.reshape(len(aux_x), -1).float()
    batch = min(128, len(Z))
    with torch.enable_grad():
        for _ in range(epochs):
            perm = torch.randperm(len(Z), generator=g)
            for i in range(0, len(Z), batch):
                idx = perm[i : i + batch]
                opt.zero_grad()
                nn.functional.mse_loss(dec(Z[idx]), X[idx]).backward()
                opt.step()
    with torch.no_grad():
        x_hat = dec(target_z.reshape(len(target_z), -1).float())
    return scores(target_x, x_hat)


def whitebox_attack(
    client: nn.Module, target_x: torch.Tensor, target_z: torch.Tensor, steps: int = 300, lr: float = 0.05
) -> dict[str, float]:
    """Optimise inputs (from zero, the mean of standardised data) so ``client(x̂) ≈ z``; score x̂."""
    client.eval()
    flags = [p.requires_grad for p in client.parameters()]
    for p in client.parameters():
        p.requires_grad_(False)
    x_hat = torch.zeros_like(target_x, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([x_hat], lr=lr)
    z = target_z.detach().float()
    try:
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                nn.functional.mse_loss(client(x_hat), z).backward()
                opt.step()
    finally:
        for p, flag in zip(client.parameters(), flags):
            p.requires_grad_(flag)
    return scores(target_x, x_hat)
