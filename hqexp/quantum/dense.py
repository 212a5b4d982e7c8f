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

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import torch

from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.memory import require_memory
from hqexp.quantum.templates.base import REAL_OF, trig_tables
from hqexp.quantum.wiring import bit_table, embedding_matrix, entangler, entangler_cpu, kron_index, measure_table

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


class TrigPlan(NamedTuple):
    """A template's trig form for the dense node: ``c = cos(w @ a2 + off2)`` holds the cos and
    sin of the form's 16 angles, and ``c @ mext[l]`` is layer l's 2×2 (``U·E`` in layer 0, ``U``
    after) as reals (its sin rows are 0). Backward: ``∂/∂angle = −sin·(dT @ mext[l]ᵀ)`` (the sign
    is in ``neg``) and ``dw = ∂/∂angle @ Aᵀ``."""

    a2: torch.Tensor  # [p, 32]
    off2: torch.Tensor  # [32]
    mext: torch.Tensor  # [L, 32, 8]
    neg: torch.Tensor  # [L, 8, 16]: −mext[l][:16]ᵀ
    a_t: torch.Tensor  # [16, p]
    # a2 and off2 in float64: float64 weights get their angle sums (|w @ a2| reaches ~10 rad,
    # where a float32 ulp is 1e-6) and cosines in float64 before the table is rounded
    a2_64: torch.Tensor
    off2_64: torch.Tensor


@dataclass(frozen=True)
class DensePlan:
    """Everything static about one small circuit, built once per ansatz, device and dtype.

    The circuit reads a table ``T[L, n, 2, 2]`` (complex, kept flat): per layer and qubit the
    2×2 that layer uses, ``U·E`` in layer 0 (``E`` = the embedding as a matrix on ``[cos x/2,
    sin x/2]``, so layer 0's Kronecker product already holds the embedding) and ``U`` after.
    For a template with a trig form the table is built from the weights inside the node;
    otherwise the 2×2s come from the template's own autograd code.
    """

    ops: tuple  # ("u", layer, None): M @ KT[layer] | ("sign", None, ±1 vector): CZs before a layer
    table: torch.Tensor  # [2N, n_out]: expectation values are (re², im² interleaved) @ table
    table_t2: torch.Tensor  # [n_out, 2N]: 2·tableᵀ (d re²/d re = 2 re)
    kron: torch.Tensor  # [L·N·N·n] positions in the flattened T: the factors of KT[l][r, c]
    # the table gradient as one bmm (see :func:`_table_backward`): for each (layer, wire, entry),
    # the Q = N²/4 positions of KT where that entry is a factor, ordered by the other wires'
    # entries, and for each (layer, wire) the Q products of those other factors
    grad_at: torch.Tensor  # [L·n·4·Q] positions in the flattened KT
    others: torch.Tensor  # [L·n·Q·(n−1)] positions in the flattened T
    states: torch.Tensor  # [N·n] positions in q[B, n, 2] = (cos, sin): the factors of P[k]
    flips: torch.Tensor  # [N, n·N]: ∂P[k]/∂x_i = ±½·P[k xor bit i], as dx_i = Σ_k (dP @ flips)[i·N + k]·P[k]
    half: torch.Tensor  # [n, 2n], with shift [2n]: q = cos(x @ half + shift) = (cos x_i/2, sin x_i/2)
    shift: torch.Tensor
    embed: torch.Tensor  # [2, 2] complex: E
    trig: TrigPlan | None  # None: the 2×2s come from the template
    single_thread: bool  # the step is too small for the intra-op pool (see :func:`_one_thread`)


@lru_cache(maxsize=256)
def dense_plan(ansatz: Ansatz, device: str, dtype: torch.dtype) -> DensePlan:
    """The static part of :func:`run_dense` for ``ansatz`` (cached)."""
    n, L = ansatz.n_qubits, ansatz.n_layers
    N = 2**n
    rdtype = REAL_OF[dtype]
    E = embedding_matrix(ansatz.embedding, ansatz.pre_rotation, torch.complex128, "cpu")
    factors = kron_index(tuple(range(n))).view(N, N, n).transpose(0, 1)  # [r, c]: factors of K[c, r]
    ops: list = []
    layers = []
    for layer in range(L):
        idx = factors + layer * n * 4  # position of entry e of wire i in T[L, n, 4]
        pairs = ansatz.entangling_pairs(layer - 1) if layer > 0 else ()
        if pairs and ansatz.entangler == "cz":
            ops.append(("sign", None, entangler(n, pairs, "cz", device, dtype)))
        elif pairs:  # M·P·KT = M·(KT with its rows in CNOT order): fold P into the gather
            idx = idx[entangler_cpu(n, pairs, "cnot")[1]]
        if layer > 0:
            ops.append(("u", layer, None))
        layers.append(idx)
    kron = torch.stack(layers)  # [L, N, N, n]
    grad_at, others = _grouped_factors(kron)
    last = ansatz.entangling_pairs(L - 1)  # the last CNOTs go into the table; CZs do not change |amp|²
    per_amp = measure_table(ansatz, bool(last) and ansatz.entangler != "cz", device, rdtype)[::2]
    table = per_amp.repeat_interleave(2, dim=0).contiguous()
    bits = bit_table(n)  # [N, n]
    flips = torch.zeros(N, n, N, dtype=torch.float64)
    k = torch.arange(N)
    for i in range(n):
        flips[k, i, k ^ (1 << (n - 1 - i))] = bits[:, i].double() - 0.5  # −½ where wire i is 0, +½ where 1
    return DensePlan(
        ops=tuple(ops),
        table=table,
        table_t2=(2 * table.T).contiguous(),
        kron=kron.reshape(-1).to(device),
        grad_at=grad_at.to(device),
        others=others.to(device),
        states=(2 * torch.arange(n) + bits).reshape(-1).to(device),
        flips=flips.view(N, n * N).to(device=device, dtype=rdtype),
        half=torch.kron(torch.eye(n), torch.tensor([[0.5, 0.5]])).to(device=device, dtype=rdtype),
        shift=torch.tensor([0.0, -math.pi / 2] * n, dtype=rdtype, device=device),
        embed=E.to(device=device, dtype=dtype),
        trig=_trig_plan(ansatz, E, rdtype, device),
        single_thread=device == "cpu" and n <= SMALL_QUBITS,
    )


def _grouped_factors(kron: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:attr:`DensePlan.grad_at` and :attr:`DensePlan.others` from ``kron[L, N, N, n]``.

    Wire i's entry e is a factor of a quarter of the KT entries; the other n−1 factors of
    those entries run through every combination of the other wires' entries exactly once, so
    sorted by that combination they are the same list for all four e. Hence the gradient of
    entry e is ``Σ_m G[at[e, m]]·conj(R[m])`` with ``R`` (products of the others) shared."""
    L, N, _, n = kron.shape
    Q = N * N // 4
    at, rest = [], []
    for layer in range(L):
        flat = kron[layer].reshape(N * N, n)
        for i in range(n):
            keep = [j for j in range(n) if j != i]
            code = (flat[:, keep] % 4) * 4 ** torch.arange(n - 1)  # the other entries, base 4
            key = code.sum(1)
            per_entry = []
            for e in range(4):
                pos = torch.nonzero(flat[:, i] % 4 == e).flatten()
                pos = pos[torch.argsort(key[pos])]
                per_entry.append(pos)
                if e == 0:
                    rest.append(flat[pos][:, keep])
                elif not torch.equal(flat[pos][:, keep], rest[-1]):  # pragma: no cover - structure
                    raise AssertionError("Kronecker factors do not group by entry")
            at.append(torch.stack(per_entry) + layer * N * N)
    assert all(p.shape == (4, Q) for p in at)
    return torch.stack(at).reshape(-1), torch.stack(rest).reshape(-1)


def _trig_plan(ansatz: Ansatz, E: torch.Tensor, rdtype: torch.dtype, device: str) -> TrigPlan | None:
    form = ansatz.spec.trig_form
    if form is None:
        return None
    A, off, M = trig_tables(ansatz.template, form, "cpu")
    # (U·E)'s entries are a real-linear map of U's (re, im) entries: its rows are the images
    # of the 8 unit vectors
    unit = torch.view_as_complex(torch.eye(8, dtype=torch.float64).view(8, 2, 2, 2))
    m_ue = M @ torch.view_as_real(unit @ E).reshape(8, 8)  # [16, 8]
    per_layer = [m_ue] + [M] * (ansatz.n_layers - 1)
    mext = torch.stack([torch.cat([m, torch.zeros_like(m)]) for m in per_layer])  # [L, 32, 8]
    neg = torch.stack([-m.T for m in per_layer])  # [L, 8, 16]
    off2 = torch.cat([off, off - math.pi / 2])  # cos(φ − π/2) = sin φ
    a2 = torch.cat([A, A], dim=1)
    tables = (t.to(device=device, dtype=rdtype).contiguous() for t in (a2, off2, mext, neg, A.T))
    return TrigPlan(*tables, a2_64=a2.to(device), off2_64=off2.to(device))


SMALL_QUBITS = 5  # measured at 4-5 qubits: one thread is faster than two at every batch size


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


def run_dense(ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Expectation values ``[B, n_out]`` of a small shared-weight circuit (inputs ``[B, n]``)."""
    plan = dense_plan(ansatz, str(inputs.device), dtype)
    B, N = inputs.shape[0], 2**ansatz.n_qubits
    # batch-sized tensors: q, P, Y, Y², their gradients; all else is weight-sized
    require_memory(8 * B * 2 * N * plan.table.element_size(), "torch", ansatz.n_qubits, B, inputs.device)
    rdtype = REAL_OF[dtype]
    x = inputs if inputs.dtype == rdtype else inputs.to(rdtype)
    w = weights if plan.trig is not None else ansatz.spec.unitaries(ansatz, weights, dtype)
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
