"""The static part of the small-circuit path (:mod:`hqexp.quantum.dense`): index tables, the
template's trig form and the measurement table of one circuit, built once per ansatz, device and
dtype (:func:`dense_plan`)."""

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

SMALL_QUBITS = 5  # measured at 4-5 qubits: one thread is faster than two at every batch size


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


def checked_plan(ansatz: Ansatz, inputs: torch.Tensor, dtype: torch.dtype) -> DensePlan:
    """:func:`dense_plan` for ``inputs``' device, after checking the batch's memory fits."""
    plan = dense_plan(ansatz, str(inputs.device), dtype)
    B, N = inputs.shape[0], 2**ansatz.n_qubits
    # batch-sized tensors: q, P, Y, Y², their gradients; all else is weight-sized
    require_memory(8 * B * 2 * N * plan.table.element_size(), "torch", ansatz.n_qubits, B, inputs.device)
    return plan
