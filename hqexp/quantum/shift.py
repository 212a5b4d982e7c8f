"""Parameter-shift gradients: the gradient a device would produce.

A device cannot backpropagate through a circuit; it evaluates the circuit again with one gate
angle shifted and combines the results. Every parametrised gate hqexp builds is a Pauli rotation
(embedding, template rotations: generator eigenvalues ±1/2, the two-term rule
``∂f = [f(θ+π/2) − f(θ−π/2)] / 2``) or a controlled Pauli rotation of the learned-entanglement block
(eigenvalues 0, ±1/2: the four-term rule of Anselmetti et al. 2021, eq. 32,
``∂f = c₊[f(θ+π/2) − f(θ−π/2)] − c₋[f(θ+3π/2) − f(θ−3π/2)]``, ``c± = (√2 ± 1)/(4√2)``). Both are
exact for the circuit's expectation values, so at ``shots=None`` the shifted circuits give the
analytic gradient; with shots each shifted circuit is itself sampled, as on a device.

An angle that feeds several gates (a pair angle is used in every layer) is shifted one
occurrence at a time and the occurrences add up. All shifted circuits of a batch run as one
batch through the executor (chunked to bound memory), never a Python loop over angles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from hqexp.errors import ConfigError
from hqexp.quantum.ansatz import Ansatz

HALF_PI = math.pi / 2
_CP = (math.sqrt(2) + 1) / (4 * math.sqrt(2))
_CM = (math.sqrt(2) - 1) / (4 * math.sqrt(2))
#: (shifts, coefficients) of the two-term and four-term rules
TWO_TERM = ((HALF_PI, -HALF_PI), (0.5, -0.5))
FOUR_TERM = ((HALF_PI, -HALF_PI, 3 * HALF_PI, -3 * HALF_PI), (_CP, -_CP, -_CM, _CM))
#: bytes of shifted states (and their probabilities) held at once
CHUNK_BYTES = 256 * 2**20


def shift_circuits(ansatz: Ansatz, need_inputs: bool, need_weights: bool) -> int:
    """Shifted circuits per sample a device runs for the gradient: 2 per Pauli-rotation angle
    occurrence, 4 per controlled-rotation occurrence, for the arguments whose gradient is needed."""
    n = 0
    if need_inputs:
        n += 2 * ansatz.n_qubits + 4 * ansatz.n_layers * ansatz.n_pairs
    if need_weights:
        n += 2 * ansatz.n_weights
    return n


#: ``probabilities(inputs [M, n_inputs], weights, pair_angles [M, L, P] | None) -> [M, 2**n]``
Probabilities = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
#: ``estimate(probs [M, 2**n]) -> [M, n_out]`` (sampled or exact)
Estimate = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class _Group:
    """Shifted circuits of one kind of angle: ``kind`` x (embedding), pair or w (weights)."""

    kind: str
    slots: list  # x: input columns; pair: (layer, pair); w: flat weight indices
    rule: tuple


def _groups(ansatz: Ansatz, need_inputs: bool, need_weights: bool) -> list[_Group]:
    out = []
    if need_inputs:
        out.append(_Group("x", list(range(ansatz.n_qubits)), TWO_TERM))
        if ansatz.n_pairs:
            slots = [(layer, p) for layer in range(ansatz.n_layers) for p in range(ansatz.n_pairs)]
            out.append(_Group("pair", slots, FOUR_TERM))
    if need_weights:
        out.append(_Group("w", list(range(ansatz.n_weights)), TWO_TERM))
    return out


def _chunk(ansatz: Ansatz, batch: int, n_shifts: int, itemsize: int) -> int:
    """Slots per chunk so that the chunk's states stay within :data:`CHUNK_BYTES`."""
    per_slot = batch * n_shifts * (2**ansatz.n_qubits) * itemsize * 3  # state, probabilities, workspace
    return max(1, CHUNK_BYTES // max(1, per_slot))


def _shifted_batch(group: _Group, slots: list, ansatz: Ansatz, x, w, shared: bool):
    """``(inputs, weights, pair_angles)`` of every (slot, shift, sample) of ``slots``, flattened."""
    shifts = torch.tensor(group.rule[0], dtype=x.dtype, device=x.device)
    J, S, B = len(slots), len(shifts), x.shape[0]
    n, L, P = ansatz.n_qubits, ansatz.n_layers, ansatz.n_pairs
    M = J * S * B
    xs = x.expand(J, S, *x.shape).clone()  # [J, S, B, n_inputs]
    pair = None
    if P:
        pair = x[:, n:].unsqueeze(1).expand(B, L, P).expand(J, S, B, L, P).clone()
    if group.kind == "x":
        for j, col in enumerate(slots):
            xs[j, :, :, col] += shifts[:, None]
    elif group.kind == "pair":
        for j, (layer, p) in enumerate(slots):
            pair[j, :, :, layer, p] += shifts[:, None]
    if group.kind == "w":
        base = w.reshape(-1, ansatz.n_weights) if not shared else w.reshape(1, ansatz.n_weights)
        ws = base.expand(B, ansatz.n_weights).expand(J, S, B, ansatz.n_weights).clone()
        for j, k in enumerate(slots):
            ws[j, :, :, k] += shifts[:, None]
        weights = ws.view(M, *ansatz.weight_shape)
    elif shared:
        weights = w
    else:
        weights = w.expand(J, S, *w.shape).reshape(M, *ansatz.weight_shape)
    return xs.view(M, -1), weights, (pair.view(M, L, P) if pair is not None else None)


def shift_jacobian_products(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    grad_out: torch.Tensor,
    probabilities: Probabilities,
    estimate: Estimate,
    need_inputs: bool,
    need_weights: bool,
    itemsize: int = 8,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(grad_inputs, grad_weights)``: the vector-Jacobian products of ``grad_out`` ``[B, n_out]``
    with the parameter-shift Jacobian, each shifted circuit evaluated by ``probabilities`` and
    read out by ``estimate`` (sampled when the backend samples)."""
    if torch.is_grad_enabled():
        raise ConfigError(
            "backend.options.grad=parameter_shift gives first derivatives only (no create_graph / "
            "Hessians); use grad=exact for higher derivatives"
        )
    x = inputs.detach()
    shared = weights.dim() == len(ansatz.weight_shape)
    w = weights.detach()
    B = x.shape[0]
    go = grad_out.detach().to(torch.float64)
    gx = torch.zeros(B, ansatz.n_inputs, dtype=torch.float64, device=x.device) if need_inputs else None
    gw = torch.zeros(B, ansatz.n_weights, dtype=torch.float64, device=x.device) if need_weights else None
    for group in _groups(ansatz, need_inputs, need_weights):
        shifts, coeffs = group.rule
        c = torch.tensor(coeffs, dtype=torch.float64, device=x.device)
        step = _chunk(ansatz, B, len(shifts), itemsize)
        for start in range(0, len(group.slots), step):
            slots = group.slots[start : start + step]
            xs, ws, pair = _shifted_batch(group, slots, ansatz, x, w, shared)
            out = estimate(probabilities(xs, ws, pair)).to(torch.float64)
            out = out.view(len(slots), len(shifts), B, -1)
            jac = torch.einsum("s,jsbo->jbo", c, out)  # d<O>/d(angle of slot j), per sample
            vjp = torch.einsum("jbo,bo->jb", jac, go)
            if group.kind == "x":
                gx[:, slots] += vjp.T
            elif group.kind == "pair":
                cols = torch.tensor([ansatz.n_qubits + p for _, p in slots], device=x.device)
                gx.index_add_(1, cols, vjp.T)
            else:
                gw[:, slots] += vjp.T
    grad_x = gx.to(inputs.dtype) if gx is not None else None
    grad_w = None
    if gw is not None:
        grad_w = gw.sum(0).view(ansatz.weight_shape) if shared else gw.view(weights.shape)
        grad_w = grad_w.to(weights.dtype)
    return grad_x, grad_w


class ShiftRule(torch.autograd.Function):
    """A circuit whose forward is read out by ``estimate`` and whose backward is the
    parameter-shift rule over the same executor: what a device computes."""

    @staticmethod
    def forward(ctx, inputs, weights, probabilities, estimate, ansatz, itemsize):  # type: ignore[override]
        with torch.no_grad():
            pair = None
            if ansatz.n_pairs:
                pair = inputs[:, ansatz.n_qubits :].unsqueeze(1).expand(-1, ansatz.n_layers, -1)
            out = estimate(probabilities(inputs, weights, pair))
        ctx.save_for_backward(inputs, weights)
        ctx.run = (probabilities, estimate, ansatz, itemsize)
        return out.to(inputs.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        inputs, weights = ctx.saved_tensors
        probabilities, estimate, ansatz, itemsize = ctx.run
        gx, gw = shift_jacobian_products(
            ansatz,
            inputs,
            weights,
            grad_out,
            probabilities,
            estimate,
            ctx.needs_input_grad[0],
            ctx.needs_input_grad[1],
            itemsize,
        )
        return gx, gw, None, None, None, None
