"""Passes over a batch of states as one autograd node with a hand-written backward
(:class:`Passes`), and the learned-entanglement fans. See :mod:`hqexp.quantum.statevector`."""

from __future__ import annotations

import torch

from hqexp.quantum.wiring import kron, permute


def apply_last_rotate(psi: torch.Tensor, u: torch.Tensor, k: int) -> torch.Tensor:
    """Apply ``u`` to the last ``k`` wires and move those wires to the front.

    ``psi[B, M, K]`` times ``u^T`` is written transposed as ``u @ psi^T`` ([B, K, M]):
    one bmm with a transposed operand, no permute copy. Applying every group this
    way, last to first, returns the wires to their original order.
    """
    B = psi.shape[0]
    K = 2**k
    x = psi.view(B, -1, K).transpose(1, 2)  # [B, K, M], a view
    # Explicit bmm: torch.matmul would fold [K,K] @ [B,K,M] into one mm and copy x.
    ub = u.expand(B, K, K) if u.dim() == 2 else u
    return torch.bmm(ub, x).reshape(B, -1)


class Passes(torch.autograd.Function):
    """A run of passes over the state — fused group unitaries, CNOT permutations,
    CZ signs, optionally the final measurement — as one autograd node with a
    hand-written backward.

    Why: at 8 qubits a pass is a ~50 µs bmm, and autograd's generic bmm backward
    (conjugate copies, expanded-operand reductions, an engine node per pass) cost
    more than the passes. Here the backward of a group pass ``X_out = G · P^T``
    (``P = psi_in.view(B, M, K)``) is ``grad_P = grad_out^T · conj(G)``, one bmm on
    strided views, and ``grad_G = Σ_b grad_out_b · conj(P_b)`` one more, stacked per
    stack at the end. The measurement ``probs @ T`` has
    ``grad_psi = 2 psi · (grad @ T^T)``. Every op in ``plan`` of a stack's layers must
    be present (each stack entry is used exactly once). Twice differentiable by
    replaying the passes with ordinary ops (:meth:`replay_backward`).
    """

    @staticmethod
    def forward(ctx, psi, plan, *stacks):  # type: ignore[override]
        out, saved = Passes.run(psi, plan, stacks)
        ctx.plan = plan
        # the input itself goes last: only the double-backward path reads it
        ctx.save_for_backward(*saved, *stacks, psi)
        return out

    @staticmethod
    def run(psi: torch.Tensor, plan: tuple, stacks: tuple) -> tuple[torch.Tensor, list]:
        """The passes with plain torch ops; returns the output and each pass's input."""
        saved = []
        for op in plan:
            if op[0] == "u":
                saved.append(psi)
                psi = apply_last_rotate(psi, stacks[op[2]][..., op[4], op[3], :, :], op[1])
            elif op[0] == "perm":
                psi = permute(psi, op[1])
            elif op[0] == "sign":
                psi = psi * op[1]
            else:  # measure
                saved.append(psi)
                re_im = torch.view_as_real(psi).view(psi.shape[0], -1)  # [B, 2N], re and im interleaved
                psi = (re_im * re_im) @ op[1]  # the table has each row twice: re², im²
        return psi, saved

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        plan = ctx.plan
        tensors = ctx.saved_tensors
        want = ctx.needs_input_grad[2:]
        n_saved = len(tensors) - len(want) - 1
        saved, stacks = tensors[:n_saved], tensors[n_saved:-1]
        if torch.is_grad_enabled():
            # create_graph=True: the intermediate states saved by forward carry no
            # history, so the hand-written backward would silently drop second-order
            # terms. Replay the passes with ordinary autograd ops from the graph-connected
            # inputs instead (like reentrant checkpointing) and differentiate that.
            return Passes.replay_backward(ctx, grad, tensors[-1], stacks)
        pending: list[list] = [[] for _ in stacks]  # (layer, position, grad_out, psi_in) per stack
        B = grad.shape[0]
        grad = grad.contiguous()
        conj = [st.conj_physical() for st in stacks]  # once, not per pass
        for op in reversed(plan):
            kind = op[0]
            if kind == "u":
                n_saved -= 1
                K = 2 ** op[1]
                g = grad.view(B, K, -1)  # [B, K, M]: the pass wrote its output transposed
                if want[op[2]]:  # grad_G = Σ_b grad_out_b · conj(P_b)
                    gu = torch.bmm(g, saved[n_saved].view(B, -1, K).conj_physical())
                    shared = stacks[op[2]].dim() == 4
                    pending[op[2]].append((op[4], op[3], gu.sum(0) if shared else gu))
                u = conj[op[2]][..., op[4], op[3], :, :]
                grad = torch.bmm(g.transpose(1, 2), u.expand(B, K, K) if u.dim() == 2 else u).view(B, -1)
            elif kind == "perm":
                grad = permute(grad, op[2])
            elif kind == "sign":
                grad = grad * op[1]
            else:
                n_saved -= 1
                re_im = torch.view_as_real(saved[n_saved]).view(B, -1)
                grad = torch.view_as_complex(((grad @ op[2]) * re_im).view(B, -1, 2))
        grads = [_stack_grad(st, rec) if rec else None for st, rec in zip(stacks, pending)]
        return (grad if ctx.needs_input_grad[0] else None), None, *grads

    @staticmethod
    def replay_backward(ctx, grad: torch.Tensor, psi: torch.Tensor, stacks: tuple) -> tuple:
        """First-order gradients as a differentiable graph (the ``create_graph`` path)."""
        need = [ctx.needs_input_grad[0], *ctx.needs_input_grad[2:]]
        leaves = [t for t, w in zip((psi, *stacks), need) if w]
        out, _ = Passes.run(psi, ctx.plan, stacks)
        found = iter(torch.autograd.grad(out, leaves, grad, create_graph=True, allow_unused=True))
        grads = [next(found) if w else None for w in need]
        return grads[0], None, *grads[1:]


def _stack_grad(stack: torch.Tensor, records: list) -> torch.Tensor:
    """The gradient of one stack from its passes' ``(layer, position, grad)``."""
    records.sort(key=lambda r: (r[0], r[1]))
    gu = torch.stack([r[2] for r in records], dim=-3)  # [(B,) R, K, K]
    return gu.view(stack.shape)


def pair_fans(n: int, pair_u: torch.Tensor) -> list[torch.Tensor]:
    """For each control ``c``, the Kronecker product of its rotations on targets ``c+1 … n−1``.

    Rotations sharing a control commute (they act on different targets under the same
    projector), so each control's whole fan is one ``[B, 2^k, 2^k]`` matrix applied to the
    control-is-1 half of the state: ``n − 1`` passes instead of ``n(n−1)/2``.
    """
    fans, p = [], 0
    for c in range(n - 1):
        k = n - 1 - c  # targets c+1 .. n-1
        fan = pair_u[:, p + k - 1]
        for j in range(k - 2, -1, -1):
            fan = kron(pair_u[:, p + j], fan)  # target c+1 most significant
        fans.append(fan.transpose(-1, -2))
        p += k
    return fans


def apply_fans(psi: torch.Tensor, n: int, fans: list[torch.Tensor]) -> torch.Tensor:
    """Controlled rotations on every pair ``(c, t)``, ``c < t``, in lexicographic order."""
    B = psi.shape[0]
    for c, fan_t in enumerate(fans):
        view = psi.view(B, 2**c, 2, 2 ** (n - 1 - c))
        on = torch.matmul(view[:, :, 1], fan_t)
        psi = torch.stack([view[:, :, 0], on], dim=2).reshape(B, -1)
    return psi
