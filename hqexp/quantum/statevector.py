"""hqexp's own batched state-vector simulator in plain PyTorch (the ``torch`` backend).

Layout: a batch of states ``psi[B, 2**n]``; wire 0 is the most significant bit of
the basis index (PennyLane's convention). Differentiable by torch autograd w.r.t.
inputs and weights; the state passes have a hand-written first-order backward,
and ``create_graph=True`` (Hessians, gradient penalties) recomputes them with
ordinary autograd ops, correct at plain-autograd speed.

At 4-12 qubits a step is dispatch-bound: per-op overhead, not arithmetic, sets the
time, so the design counts operations (``hqexp bench backends`` measures it):

* Every fused single-qubit unitary (e.g. ``Rot = RZ·RY·RZ``) has entries that are
  sums of cosines of linear forms of its angles: all layers' 2×2s are
  ``cos(w @ A + off) @ M`` — a handful of ops instead of gate-by-gate products.
* Embedding and the first layer's rotations act on a product state: they are
  folded into per-qubit 2-vectors and the state is one gather + product per half
  of the wires and one outer product — no gate is applied to the full state.
* Neighbouring qubits' 2×2s are merged into one ``2**k × 2**k`` matrix (k=4), so a
  layer costs ``ceil(n/k)`` passes instead of ``n``; all those Kronecker products
  are one gather + product. Each pass is one bmm on the *last* wires whose output
  is written transposed, which rotates the wire order; after all groups the order
  is back where it started, so no pass needs a permute copy.
* A whole CNOT ring is one basis permutation (one gather); a CZ chain is one sign
  vector. The last layer's permutation is folded into the measurement table, and
  every diagonal measurement is one ``|psi|² @ table`` matmul.
* All passes and the measurement are one autograd node (:class:`Passes`) whose
  backward is two bmms per pass, and everything static about a circuit (groups,
  pass plan, permutations, tables) is built once per ansatz (:func:`_program`).
* For small circuits with shared weights (:func:`~hqexp.quantum.dense.dense_applies`), the whole
  weight-dependent circuit is one ``2ⁿ×2ⁿ`` matrix and the whole circuit one autograd node
  (:mod:`hqexp.quantum.dense`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch

from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.dense import dense_applies, dense_args, dense_reference, run_dense
from hqexp.quantum.dense_plan import DensePlan, checked_plan
from hqexp.quantum.measurements import TABLE_MAX_QUBITS
from hqexp.quantum.memory import require_memory
from hqexp.quantum.passes import Passes, apply_fans, pair_fans
from hqexp.quantum.templates.base import REAL_OF, rotation_matrix
from hqexp.quantum.wiring import (
    embedding_matrix,
    entangler,
    group_size,
    layer_kron_index,
    layout,
    measure_table,
    product_index,
    wire_groups,
)

_HALF_SHIFT = {dt: torch.tensor([0.0, math.pi / 2], dtype=dt) for dt in REAL_OF.values()}


def layer_unitaries(ansatz: Ansatz, weights: torch.Tensor, cdtype: torch.dtype) -> torch.Tensor:
    """Fused single-qubit unitaries ``[..., L, n, 2, 2]`` of every layer (the template's fused form)."""
    return ansatz.spec.unitaries(ansatz, weights, cdtype)


def _group_unitaries(
    U: torch.Tensor, groups: list[tuple[int, int]]
) -> tuple[list[torch.Tensor], dict[tuple[int, int], tuple[int, int]]]:
    """Kronecker products of each wire group's 2×2s in layers ``1 … L−1``.

    ``U[.., L, n, 2, 2]`` → stacks ``[.., L−1, n_same, K, K]``, one per group size, and
    ``where[group] = (stack, position)``. Every entry of a Kronecker product is a
    product of one entry per factor, so all layers' matrices of one group size are one
    ``index_select`` + one ``prod`` on the flattened ``U``: the preparation is
    dispatch-bound, and this is 2 autograd nodes instead of a Kronecker tree's dozens.
    """
    L, n = U.shape[-4], U.shape[-3]
    flat = U.reshape(*U.shape[:-4], L * n * 4)
    by_size, where = layout(tuple(groups))
    stacks = []
    for same in by_size:
        k = same[0][1] - same[0][0]
        idx = layer_kron_index(n, L, same, str(U.device))
        K = 2**k
        stacks.append(flat.index_select(-1, idx).view(*flat.shape[:-1], L - 1, len(same), K, K, k).prod(-1))
    return stacks, where


def check_memory(ansatz: Ansatz, batch: int, cdtype: torch.dtype, device: torch.device, grad: bool) -> None:
    """Raise :class:`QuantumMemoryError` when the state vectors cannot fit."""
    itemsize = torch.empty((), dtype=cdtype).element_size()
    state = batch * (2**ansatz.n_qubits) * itemsize
    # Autograd keeps one state per pass: groups per layer + entangler + measurement.
    passes = ansatz.n_layers * (math.ceil(ansatz.n_qubits / group_size(ansatz.n_qubits)) + 1 + 2 * ansatz.n_pairs) + 3
    require_memory(state * (passes if grad else 3), "torch", ansatz.n_qubits, batch, device)


def _product_state(q: torch.Tensor) -> torch.Tensor:
    """``⊗_i q[:, i]`` for per-qubit vectors ``q[B, n, 2]``, as ``[B, 2**n]`` (wire 0 = MSB).

    Each amplitude is a product of one entry per qubit: an ``index_select`` + ``prod``
    per half of the wires (one for both when the halves are equal), then one outer
    product of the halves (halves keep the gathered tensor at ``2**(n/2)`` rows
    instead of ``n·2**n``).
    """
    B, n = q.shape[0], q.shape[1]
    flat = q.reshape(B, 2 * n)
    if n <= 4:
        return flat.index_select(1, product_index(n, ((0, n),), str(q.device))).view(B, 2**n, n).prod(-1)
    h = n // 2
    if n % 2 == 0:
        idx = product_index(n, ((0, h), (h, n)), str(q.device))
        halves = flat.index_select(1, idx).view(B, 2, 2**h, h).prod(-1)
        hi, lo = halves[:, 0], halves[:, 1]
    else:
        hi, lo = (
            flat.index_select(1, product_index(n, (part,), str(q.device)))
            .view(B, 2 ** (part[1] - part[0]), -1)
            .prod(-1)
            for part in ((0, h), (h, n))
        )
    return (hi[:, :, None] * lo[:, None, :]).reshape(B, -1)


def simulate(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Final states ``[B, 2**n]`` of ``ansatz`` for inputs ``[B, n]``.

    ``weights`` has ``ansatz.weight_shape`` (shared) or ``[B, *weight_shape]``.
    """
    return _run(ansatz, inputs, weights, dtype, measure=False)


def probabilities(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    dtype: torch.dtype = torch.complex64,
    pair_angles: torch.Tensor | None = None,
) -> torch.Tensor:
    """Basis probabilities ``[B, 2**n]`` (real) of the final states: what a Z-basis readout samples.

    ``pair_angles`` ``[B, L, n_pairs]`` gives every layer its own learned-entanglement angles."""
    check_memory(ansatz, inputs.shape[0], dtype, inputs.device, torch.is_grad_enabled())
    psi = _run(ansatz, inputs, weights, dtype, measure=False, pair_angles=pair_angles)
    return torch.view_as_real(psi).square().sum(-1)


def _run(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    dtype: torch.dtype,
    measure: bool,
    plain: bool = False,
    pair_angles: torch.Tensor | None = None,
):
    """The circuit; with ``measure`` the last :class:`Passes` also measures
    (diagonal observables, ``n ≤ 16``, no ``pair_gate``) and expectation values are returned.
    ``plain``: the passes as ordinary autograd ops (:meth:`Passes.run`), for ``torch.compile``.
    ``pair_angles`` ``[B, L, n_pairs]``: each layer's own learned-entanglement angles instead of the
    inputs' one set for every layer (what a parameter shift of one occurrence needs)."""
    passes = _plain_passes if plain else Passes.apply
    n = ansatz.n_qubits
    rdtype = REAL_OF[dtype]
    U = layer_unitaries(ansatz, weights, dtype)  # [.., L, n, 2, 2]
    # Layer 0's rotations act on the embedded product state: fold them into the qubit
    # vectors. Every angle embedding of |0> is E @ [cos x/2, sin x/2] for a constant E.
    cs = torch.cos(inputs[:, :n, None].to(rdtype) * 0.5 - _HALF_SHIFT[rdtype].to(inputs.device))
    E = embedding_matrix(ansatz.embedding, ansatz.pre_rotation, dtype, str(inputs.device))
    q = ((U[..., 0, :, :, :] @ E) * cs[:, :, None, :]).sum(-1)  # [B, n, 2]
    psi = _product_state(q)
    prog = _program(ansatz, group_size(n), str(psi.device), dtype, measure)
    stacks = _group_unitaries(U, prog.groups)[0] if ansatz.n_layers > 1 else []
    if not ansatz.pair_gate:
        if prog.runs[0]:
            psi = passes(psi, prog.runs[0], *stacks)
    else:  # one run per layer, each followed by the learned-entanglement fans
        gate = ansatz.pair_gate[1:].upper()
        fans = None if pair_angles is not None else pair_fans(n, rotation_matrix(gate, inputs[:, n:].to(rdtype)))
        for layer, run in enumerate(prog.runs):
            mine = [st[..., layer - 1 : layer, :, :, :] for st in stacks] if layer > 0 else []
            if pair_angles is not None:
                fans = pair_fans(n, rotation_matrix(gate, pair_angles[:, layer].to(rdtype)))
            psi = apply_fans(passes(psi, run, *mine) if run else psi, n, fans)
    if not measure or prog.measured:
        return psi
    return measure_probs(ansatz, torch.view_as_real(psi).square().sum(-1))


def _plain_passes(psi: torch.Tensor, plan: tuple, *stacks: torch.Tensor) -> torch.Tensor:
    return Passes.run(psi, plan, stacks)[0]


@dataclass(frozen=True)
class _Program:
    groups: list[tuple[int, int]]
    runs: list[tuple]  # plans for Passes: one, or one per layer with pair_gate
    measured: bool  # the last run ends with the measurement


@lru_cache(maxsize=256)
def _program(ansatz: Ansatz, k: int, device: str, dtype: torch.dtype, measure: bool) -> _Program:
    """The static part of a circuit step — wire groups, pass plans, entangler
    permutations, measurement table — built once per ansatz and device, not per call."""
    n = ansatz.n_qubits
    groups = wire_groups(n, k)
    where = layout(tuple(groups))[1]
    runs, plan = [], []
    for layer in range(ansatz.n_layers):
        if layer > 0:
            # with pair_gate every run gets its own layer's slice of the stacks: index 0
            at = 0 if ansatz.pair_gate else layer - 1
            for start, stop in groups:  # last group first: see apply_last_rotate
                plan.append(("u", stop - start, *where[(start, stop)], at))
        pairs = ansatz.entangling_pairs(layer)
        if pairs:
            ent = entangler(n, pairs, ansatz.entangler, device, dtype)
            plan.append(("sign", ent) if ansatz.entangler == "cz" else ("perm", *ent))
        if ansatz.pair_gate:
            runs.append(tuple(plan))
            plan = []
    measured = measure and not ansatz.pair_gate and n <= TABLE_MAX_QUBITS
    if measured:
        # The last entangler needs no pass: a CZ sign does not change probabilities,
        # a CNOT permutation is folded into the measurement table.
        last = plan.pop()[0] if plan and plan[-1][0] in ("sign", "perm") else None
        table = measure_table(ansatz, last == "perm", device, REAL_OF[dtype])
        plan.append(("measure", table, (2 * table.T).contiguous()))  # d(re²)/d(re) = 2 re
    if not ansatz.pair_gate:
        runs.append(tuple(plan))
    return _Program(groups, runs, measured)


def measure_probs(ansatz: Ansatz, probs: torch.Tensor) -> torch.Tensor:
    """Expectation values ``[B, n_out]`` from basis probabilities ``[B, 2**n]``."""
    return ansatz.observable.from_probs(probs, ansatz.n_qubits)


def torch_expval(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    dtype: torch.dtype = torch.complex64,
    dense_max_qubits: int | None = None,
) -> torch.Tensor:
    """Expectation values ``[B, n_out]`` (real dtype matching ``dtype``); ``dense_max_qubits``
    overrides the size rule of the small-circuit path (:func:`dense_applies`)."""
    plan = _route(ansatz, inputs, weights, dtype, dense_max_qubits)
    if plan is not None:
        return run_dense(ansatz, plan, inputs, weights, dtype)
    return _run(ansatz, inputs, weights, dtype, measure=True)


def _route(
    ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype, dense_max_qubits: int | None
) -> DensePlan | None:
    """The size rule and the memory check of a step: the small-circuit plan, or None for the passes."""
    if dense_applies(ansatz, weights, inputs.shape[0], dense_max_qubits):
        return checked_plan(ansatz, inputs, dtype)
    check_memory(ansatz, inputs.shape[0], dtype, inputs.device, torch.is_grad_enabled())
    return None


def plain_step(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    dtype: torch.dtype = torch.complex64,
    dense_max_qubits: int | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The step :func:`torch_expval` would take for these shapes, as ``f(inputs, weights)`` made of
    ordinary autograd ops only (no hand-written autograd node): the form ``torch.compile`` traces.
    The size rule and the memory check run here, eagerly; ``f`` is the arithmetic alone."""
    plan = _route(ansatz, inputs, weights, dtype, dense_max_qubits)
    if plan is not None:

        def dense_step(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return dense_reference(*dense_args(ansatz, plan, x, w, dtype), plan)

        return dense_step

    def pass_step(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return _run(ansatz, x, w, dtype, measure=True, plain=True)

    return pass_step
