"""Spiking building blocks: LIF neurons with a surrogate gradient, low-bit convolutions.

A leaky integrate-and-fire neuron integrates its input current over time,
``v ← β·v + I_t``, fires ``s_t = H(v − θ)`` and resets by subtraction. The Heaviside
step has no useful derivative, so the backward pass uses the fast-sigmoid surrogate
``∂s/∂v ≈ 1 / (1 + k|v − θ|)²`` (Zenke & Ganguli 2018; snnTorch's default). That is
all a convolutional SNN needs, so it is written here in a few lines rather than
pulling in a spiking framework.
"""

from __future__ import annotations

import torch
from torch import nn


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, slope: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.slope = slope
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad / (1.0 + ctx.slope * u.abs()) ** 2, None


def spike(u: torch.Tensor, slope: float = 25.0) -> torch.Tensor:
    """Heaviside spike of ``u`` (membrane minus threshold) with a fast-sigmoid surrogate gradient."""
    return _SpikeFn.apply(u, slope)


class _LIFFn(torch.autograd.Function):
    """The whole LIF time loop as one autograd node.

    Recording ~4 autograd ops per time step made training dispatch-bound; here the
    forward loop runs without a graph (three ops per step; spikes are recovered from
    the stored membranes in one op) and the backward is the adjoint recursion
    ``g_t = ∂L/∂s_t · σ'(u_t) + β·g_{t+1}`` (reset treated as constant, as is common
    for subtractive reset) at one op per step.
    """

    @staticmethod
    def forward(ctx, current: torch.Tensor, beta: torch.Tensor, threshold: float, slope: float):  # type: ignore[override]
        cur = current.movedim(-1, 0).contiguous()  # [T, B, C]: each step reads a contiguous slice
        v = torch.zeros_like(cur[0])
        # 0-dim tensors, not Python floats: a float operand costs a scalar-to-tensor copy
        # per op, which at batch 1 doubled the loop's time.
        thr, zero = cur.new_tensor(threshold), cur.new_zeros(())
        us = []
        for c in cur.unbind(0):
            v = torch.addcmul(c, beta, v)
            u = torch.sub(v, thr)
            us.append(u)
            v = torch.where(u > zero, u, v)  # reset by subtraction: v - θ where it fired
        u = torch.stack(us)  # [T, B, C], membrane minus threshold before reset
        s = (u > 0).to(current.dtype)
        ctx.save_for_backward(u, s, beta)
        ctx.threshold, ctx.slope = threshold, slope
        return s.movedim(0, -1)

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor):  # type: ignore[override]
        u, s, beta = ctx.saved_tensors
        surrogate = grad_s.movedim(-1, 0) / (1.0 + ctx.slope * u.abs()) ** 2
        g = torch.zeros_like(u[0])
        gs = [g] * u.shape[0]
        steps = surrogate.unbind(0)
        for t in range(u.shape[0] - 1, -1, -1):
            g = torch.addcmul(steps[t], beta, g)
            gs[t] = g
        grad_i = torch.stack(gs)  # [T, B, C]
        v_after = u + ctx.threshold * (1.0 - s)  # membrane after reset, v'_t
        # v_{t+1} = β v'_t + I_{t+1}  →  ∂L/∂β = Σ_t g_{t+1} v'_t
        grad_beta = (grad_i[1:] * v_after[:-1]).sum(dim=(0, 1)).unsqueeze(0)
        return grad_i.movedim(0, -1), grad_beta, None, None


class LIF(nn.Module):
    """Leaky integrate-and-fire over the last (time) axis of ``[B, C, T]`` currents.

    ``beta`` (leak) is learnable per channel through a sigmoid; returns spikes ``[B, C, T]``.
    ``last_rate`` keeps the mean firing rate of the latest call, for ``snn/spike_rate``.
    """

    def __init__(self, channels: int, beta: float = 0.9, threshold: float = 1.0, slope: float = 25.0) -> None:
        super().__init__()
        self.beta_logit = nn.Parameter(torch.full((channels,), float(torch.logit(torch.tensor(beta)))))
        self.threshold, self.slope = threshold, slope
        self.last_rate: torch.Tensor | None = None

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        beta = torch.sigmoid(self.beta_logit)[None, :].to(current.dtype)
        spikes = _LIFFn.apply(current, beta, self.threshold, self.slope)
        self.last_rate = spikes.detach().mean()
        return spikes


class _QuantSTE(torch.autograd.Function):
    """k-bit symmetric per-output-channel weight quantisation with a straight-through gradient."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, bits: int) -> torch.Tensor:  # type: ignore[override]
        dims = tuple(range(1, w.dim()))
        if bits == 1:
            scale = w.abs().mean(dim=dims, keepdim=True)  # XNOR-Net: α = mean |w|
            q = torch.where(w >= 0, 1.0, -1.0).to(w.dtype) * scale
        else:
            levels = 2 ** (bits - 1) - 1
            scale = w.abs().amax(dim=dims, keepdim=True).clamp_min(1e-8) / levels
            q = torch.round(w / scale).clamp(-levels, levels) * scale
        ctx.save_for_backward(w)
        return q

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1.0).to(grad.dtype), None  # clipped STE


class QuantConv1d(nn.Conv1d):
    """``Conv1d`` whose weights are quantised to ``weight_bits`` (1, 2, 8) in the forward pass; 32 = float."""

    def __init__(self, *args, weight_bits: int = 1, **kw) -> None:
        super().__init__(*args, **kw)
        if weight_bits not in (1, 2, 8, 32):
            raise ValueError(f"weight_bits must be 1, 2, 8 or 32, got {weight_bits}")
        self.weight_bits = weight_bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight if self.weight_bits == 32 else _QuantSTE.apply(self.weight, self.weight_bits)
        return self._conv_forward(x, w, self.bias)
