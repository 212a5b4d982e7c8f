"""The small-circuit path: a shared-weight circuit of a few qubits as one ``2ⁿ×2ⁿ`` matrix.

With weights shared by the batch, everything after the embedding that depends on the
weights is one matrix ``M``, built once per step; the batch is a product state ``P``
(real) times ``M`` and one measurement matmul. At 4–5 qubits that is a few kilobytes of
arithmetic, so the time is per-op dispatch and autograd bookkeeping, not FLOPs: the
whole circuit (the template's 2×2s, product state, matrix chain, measurement) is one
autograd node (:class:`DenseCircuit`) whose forward and hand-written backward are short
runs of plain ops with no graph recorded. ``create_graph=True`` (Hessians, gradient
penalties) replays the circuit with ordinary autograd ops (:func:`dense_reference`), exact
at plain-autograd speed. See :mod:`hqexp.quantum.statevector` for the pass structure used elsewhere
(:func:`dense_applies`).
"""

from __future__ import annotations

import torch

from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.dense_plan import DensePlan
from hqexp.quantum.templates.base import REAL_OF

COMPLEX_OF = {real: cplx for cplx, real in REAL_OF.items()}
# Measured (fwd+bwd, 2 cores, against the passes): faster up to 5 qubits at every batch size
# and depth tried ((4,10,64) 0.23 against 1.31 ms, (5,10,1) 0.42 against 0.87); at 6 qubits
# faster ((6,3,64) 0.48 against 0.77, (6,3,1024) 1.5 against 4.1, (6,8,64) 0.99 against 1.42)
# except for deep circuits on small batches ((6,8,16) 1.17 against 0.99, (6,10,16) 1.21 against
# 1.15), where the batch-independent 64×64 matrix chain dominates; from 7 qubits slower.
DENSE_MAX_QUBITS = 6
DEEP_LAYERS = 7  # at DENSE_MAX_QUBITS, this many layers or more need ...
DEEP_MIN_BATCH = 32  # ... this batch size for the dense path to pay


def dense_applies(ansatz: Ansatz, weights: torch.Tensor, batch: int, max_qubits: int | None = None) -> bool:
    """The small-circuit path: shared weights, no learned entanglement, at most 6 qubits (at 6,
    not for a deep circuit on a small batch). ``max_qubits`` (the torch backend's
    ``dense_max_qubits`` option) replaces the size rule by "up to that many qubits" (0: never)."""
    if weights.dim() != len(ansatz.weight_shape) or ansatz.pair_gate:
        return False
    n = ansatz.n_qubits
    if max_qubits is not None:
        return n <= max_qubits
    if n < DENSE_MAX_QUBITS:
        return True
    return n == DENSE_MAX_QUBITS and (ansatz.n_layers < DEEP_LAYERS or batch >= DEEP_MIN_BATCH)


def _one_thread(plan: DensePlan) -> int:
    """Run a step's ops on one intra-op thread when the plan says they are too small to share:
    at 4-5 qubits each op is a few microseconds, and waking a second OpenMP thread per op
    costs more than it saves (measured: ~1.2× slower with two threads). Process-wide, like
    every ``torch.set_num_threads``; returns the count for :func:`_restore` (0: unchanged).
    Plain calls, not a context manager: a generator-based one costs ~3 µs per step here."""
    before = torch.get_num_threads()
    if not plan.single_thread or before == 1:
        return 0
    torch.set_num_threads(1)
    return before


def _restore(before: int) -> None:
    if before:
        torch.set_num_threads(before)


def dense_args(
    ansatz: Ansatz, plan: DensePlan, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, w)`` for :class:`DenseCircuit` or :func:`dense_reference`: ``x`` in the real dtype,
    ``w`` the weights (trig form) or the template's 2×2s."""
    rdtype = REAL_OF[dtype]
    x = inputs if inputs.dtype == rdtype else inputs.to(rdtype)
    return x, (weights if plan.trig is not None else ansatz.spec.unitaries(ansatz, weights, dtype))


def run_dense(
    ansatz: Ansatz, plan: DensePlan, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Expectation values ``[B, n_out]`` of a small shared-weight circuit (inputs ``[B, n]``);
    ``plan`` from :func:`~hqexp.quantum.dense_plan.checked_plan`."""
    x, w = dense_args(ansatz, plan, inputs, weights, dtype)
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return DenseCircuit.apply(x, w, plan)
    before = _one_thread(plan)
    try:
        with torch.no_grad():
            return dense_reference(x, w, plan)
    finally:
        _restore(before)


def dense_reference(x: torch.Tensor, w: torch.Tensor, plan: DensePlan) -> torch.Tensor:
    """The circuit with ordinary ops (differentiable by autograd: the ``create_graph`` replay)."""
    return _forward(x, _kron(_table(w, plan)[0], plan.kron, x.shape[1]), plan)[0]


def _complex_view(t: torch.Tensor) -> torch.Tensor:
    """``[..., 2k]`` reals as ``[..., k]`` complex. Without a graph to record, a dtype view: the
    same reinterpretation as ``view_as_complex`` at a third of its dispatch cost (it is not
    differentiable, so the ``create_graph`` replay takes ``view_as_complex``)."""
    if torch.is_grad_enabled():
        return torch.view_as_complex(t.view(*t.shape[:-1], -1, 2))
    return t.view(COMPLEX_OF[t.dtype])


def _real_view(t: torch.Tensor) -> torch.Tensor:
    """``[..., k]`` complex as ``[..., 2k]`` reals (see :func:`_complex_view`)."""
    if torch.is_grad_enabled():
        return torch.view_as_real(t).flatten(-2)
    return t.view(REAL_OF[t.dtype])


def _kron(T: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """``KT[L, N, N]``, products of ``n`` gathered table entries: every entry of a Kronecker
    product of 2×2s is a product of one entry per wire, so all layers' are one gather + prod."""
    N = 2**n
    return T.index_select(0, index).view(-1, N, N, n).prod(-1)


def _table(w: torch.Tensor, plan: DensePlan) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``T`` (flat ``[L, n, 2, 2]``: the 2×2 each layer uses, ``U·E`` in layer 0) and, for a trig
    form, the cos and sin of its angles; without one, ``w`` are the 2×2s ``U[L, n, 2, 2]``."""
    if plan.trig is None:
        return torch.cat([w[:1] @ plan.embed, w[1:]]).view(-1), None
    trig = plan.trig
    w2 = w.reshape(-1, trig.a2.shape[0])
    if w2.dtype == trig.a2.dtype:
        c = torch.cos(torch.addmm(trig.off2, w2, trig.a2))
    elif w2.dtype == torch.float64:  # angles in the precision they came in (see TrigPlan)
        c = torch.cos(torch.addmm(trig.off2_64, w2, trig.a2_64)).to(trig.a2.dtype)
    else:
        c = torch.cos(torch.addmm(trig.off2, w2.to(trig.a2.dtype), trig.a2))
    mext = trig.mext
    return _complex_view(torch.bmm(c.view(mext.shape[0], -1, c.shape[1]), mext)).view(-1), c


def _forward(x: torch.Tensor, KT: torch.Tensor, plan: DensePlan) -> tuple[torch.Tensor, tuple]:
    """Each qubit's embedded state after layer 0 is ``U_i·E·[cos x_i/2, sin x_i/2]``, so the
    state after layer 0 is ``psi = P·(⊗U_i·E)ᵀ`` with ``P = ⊗[cos, sin]`` real and weight-free.
    The later layers and entanglers make one matrix; hence ``phi = P·M``, and with ``M`` split
    into interleaved real and imaginary columns the batch runs through one real matmul and the
    measurement through another. ``KT[L, N, N]`` are the layers' transposed Kronecker products.
    Also returns what the backward reads."""
    B, n = x.shape
    N = 2**n
    q = torch.cos(torch.addmm(plan.shift, x, plan.half))
    P = q.index_select(1, plan.states).view(B, N, n).prod(-1)
    prefixes = []
    layers = KT.unbind(0)
    M = layers[0]
    for kind, layer, extra in plan.ops:
        if kind == "u":
            prefixes.append(M)
            M = torch.mm(M, layers[layer])
        else:
            M = M * extra
    M2 = _real_view(M)  # [N, 2N]: columns (re, im) per amplitude
    Y = torch.mm(P, M2)
    return torch.mm(Y.square(), plan.table), (P, M2, Y, prefixes)


class DenseCircuit(torch.autograd.Function):
    """Weights (or 2×2s) and inputs → expectation values as one autograd node.

    Backward (``g = ∂loss/∂out``): ``dY = Y·(g @ 2Tᵀ)``. Batch side: ``dP = dY·M2ᵀ`` and,
    since ``∂P[k]/∂x_i = ±½·P[k xor bit i]``, ``dx_i = Σ_k (dP @ flips)[i, k]·P[k]`` (two
    matmuls and one bmm). Weight side: ``dM = Pᵀ·dY``, pushed back through the matrix chain
    (``grad_A = G·Bᴴ``, ``grad_B = Aᴴ·G``) to each layer's Kronecker product; every entry of a
    Kronecker product is a product of one entry per wire, so the gradient of one table entry is
    the sum, over the entries it is a factor of, of the upstream gradient times the conjugate
    product of the other ``n−1`` factors: two gathers, one prod and one bmm
    (:func:`_table_backward`); then through the trig form, ``∂/∂angle = −sin·(dT @ mextᵀ)`` and
    ``dw = ∂/∂angle @ Aᵀ``.

    The intermediates the backward reads are attributes of ``ctx``, not saved tensors: they
    were made inside this forward without a graph, so they cannot form a reference cycle,
    and a SavedVariable each costs a few microseconds at this size.
    """

    @staticmethod
    def forward(ctx, x, w, plan):  # type: ignore[override]
        before = _one_thread(plan)
        try:
            T, c = _table(w, plan)
            KT = _kron(T, plan.kron, x.shape[1])
            out, (P, M2, Y, prefixes) = _forward(x, KT, plan)
        finally:
            _restore(before)
        ctx.plan = plan
        ctx.save_for_backward(x, w)  # the inputs: version checks, and the create_graph replay
        ctx.inner = (T, c, P, KT, M2, Y, prefixes)
        return out

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, w = ctx.saved_tensors
        T, c, P, KT, M2, Y, prefixes = ctx.inner
        plan = ctx.plan
        if torch.is_grad_enabled():  # create_graph: replay with differentiable ops
            return (*_replay(x, w, plan, g, ctx.needs_input_grad[:2]), None)
        before = _one_thread(plan)
        try:
            dY = Y * torch.mm(g, plan.table_t2)
            dx = dw = None
            B, N = P.shape
            if ctx.needs_input_grad[0]:
                flipped = torch.mm(torch.mm(dY, M2.T), plan.flips)
                dx = torch.bmm(flipped.view(B, -1, N), P.unsqueeze(-1)).view(B, -1)
            if ctx.needs_input_grad[1]:
                dT = _table_backward(T, _chain_backward(torch.mm(P.T, dY), KT, prefixes, plan), plan)
                if plan.trig is None:
                    dT = dT.view(w.shape)
                    dw = torch.cat([dT[:1] @ plan.embed.mH, dT[1:]])
                else:
                    neg = plan.trig.neg
                    dangle = torch.bmm(_real_view(dT).view(neg.shape[0], -1, 8), neg)
                    dw = torch.mm(dangle.view(c.shape[0], 16) * c[:, 16:], plan.trig.a_t).view(w.shape)
                    dw = dw if dw.dtype == w.dtype else dw.to(w.dtype)
        finally:
            _restore(before)
        return dx, dw, None


def _replay(x: torch.Tensor, w: torch.Tensor, plan: DensePlan, g: torch.Tensor, needs: tuple) -> list:
    """First derivatives that are themselves differentiable (``create_graph=True``): the saved
    ``x`` and ``w`` are still connected to the caller's graph, so the replay is too."""
    with torch.enable_grad():
        wrt = [t for t, need in zip((x, w), needs) if need]
        got = iter(torch.autograd.grad(dense_reference(x, w, plan), wrt, g, create_graph=True))
    return [next(got) if need else None for need in needs]


def _chain_backward(dM2: torch.Tensor, KT: torch.Tensor, prefixes: list, plan: DensePlan) -> torch.Tensor:
    """``∂loss/∂KT[L, N, N]`` from ``∂loss/∂M2`` through ``M = KT[0]·…·KT[L−1]`` (CZ signs between)."""
    L = KT.shape[0]
    G = _complex_view(dM2)
    grads = [None] * L
    before = iter(reversed(prefixes))  # not popped: a retain_graph backward reads them again
    for kind, layer, extra in reversed(plan.ops):
        if kind == "u":
            grads[layer] = torch.mm(next(before).mH, G)
            G = torch.mm(G, KT[layer].mH)
        else:
            G = G * extra
    grads[0] = G
    return torch.stack(grads)


def _table_backward(T: torch.Tensor, GK: torch.Tensor, plan: DensePlan) -> torch.Tensor:
    """``∂loss/∂T`` ``[L·n, 4]`` from the Kronecker products' gradients ``GK[L, N, N]``: entry e
    of wire i gets ``Σ_m GK[at[e, m]]·conj(R[m])``, ``R[m]`` the product of the other wires'
    factors (:func:`_grouped_factors`), so all of them are one bmm."""
    L, N = GK.shape[0], GK.shape[1]
    n = N.bit_length() - 1
    Q = N * N // 4
    G = GK.view(-1).index_select(0, plan.grad_at).view(L * n, 4, Q)
    rest = T.conj_physical().index_select(0, plan.others).view(L * n, Q, n - 1).prod(-1)
    return torch.bmm(G, rest.unsqueeze(-1)).view(L * n, 4)
