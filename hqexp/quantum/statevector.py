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
* All passes and the measurement are one autograd node (:class:`_Passes`) whose
  backward is two bmms per pass, and everything static about a circuit (groups,
  pass plan, permutations, tables) is built once per ansatz (:func:`_program`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import torch

from hqexp.errors import QuantumMemoryError
from hqexp.quantum.ansatz import Ansatz

REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}


# ------------------------------------------------------------------ 2×2 gates
def _c(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    return torch.complex(re, im)


def rotation_matrix(name: str, theta: torch.Tensor) -> torch.Tensor:
    """``[..., 2, 2]`` complex matrix of RX/RY/RZ(theta) for a real tensor ``theta``."""
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    z = torch.zeros_like(c)
    if name == "RX":
        rows = [[_c(c, z), _c(z, -s)], [_c(z, -s), _c(c, z)]]
    elif name == "RY":
        rows = [[_c(c, z), _c(-s, z)], [_c(s, z), _c(c, z)]]
    elif name == "RZ":
        rows = [[_c(c, -s), _c(z, z)], [_c(z, z), _c(c, s)]]
    else:  # pragma: no cover - Ansatz validates names
        raise ValueError(name)
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


_HALF_SHIFT = {dt: torch.tensor([0.0, math.pi / 2], dtype=dt) for dt in REAL_OF.values()}
_EMBED = {  # angle embedding applied to |0>, as a matrix on [cos x/2, sin x/2]
    "angle_x": [[1, 0], [0, -1j]],  # RX|0> = cos|0> - i sin|1>
    "angle_y": [[1, 0], [0, 1]],  # RY|0> = cos|0> + sin|1>
    "angle_z": [[1, -1j], [0, 0]],  # RZ|0> = e^{-ix/2}|0>
}


@lru_cache(maxsize=64)
def _embedding_matrix(embedding: str, pre_rotation: tuple | None, cdtype: torch.dtype, device: str) -> torch.Tensor:
    """``[2, 2]`` complex: the embedding (and any fixed pre-rotation) as a matrix acting on
    ``[cos x/2, sin x/2]``."""
    E = torch.tensor(_EMBED[embedding], dtype=torch.complex128)
    if pre_rotation is not None:
        name, angle = pre_rotation
        E = rotation_matrix(name, torch.tensor(angle, dtype=torch.float64)) @ E
    return E.to(device=device, dtype=cdtype)


# Every fused single-qubit unitary of a template has entries m·e^{iφ} with
# m = cos(linear in the angles + const) and φ linear in the angles. Each real and
# imaginary part is then cos(α)cos(β) = ½cos(α+β) + ½cos(α−β): the whole [.., 2, 2]
# complex matrix is cos(w @ A + off) @ M, viewed as complex — six autograd nodes
# instead of the ~25 a gate-by-gate closed form takes. At 8 qubits the simulator is
# dispatch-bound, so op count is time.
_H = math.pi / 2
_TRIG_FORMS = {
    # template: (mag coefficients [p, 4], mag offsets [4], phase coefficients [p, 4], phase offsets [4]),
    # entries in row-major order [00, 01, 10, 11].
    # Rot(φ,θ,ω) = RZ(ω)RY(θ)RZ(φ) = [[e^{-ia}c, -e^{ib}s], [e^{-ib}s, e^{ia}c]],
    # a = (φ+ω)/2, b = (φ-ω)/2, c = cos θ/2, s = sin θ/2 (-s = cos(θ/2 + π/2)).
    "strongly_entangling": (
        [[0, 0, 0, 0], [0.5] * 4, [0, 0, 0, 0]], [0, _H, -_H, 0],
        [[-0.5, 0.5, -0.5, 0.5], [0, 0, 0, 0], [-0.5, -0.5, 0.5, 0.5]], [0, 0, 0, 0],
    ),
    # RZ(β)RY(α) = [[e^{-iβ/2}c, -e^{-iβ/2}s], [e^{iβ/2}s, e^{iβ/2}c]]
    "hardware_efficient": (
        [[0.5] * 4, [0, 0, 0, 0]], [0, _H, -_H, 0],
        [[0, 0, 0, 0], [-0.5, -0.5, 0.5, 0.5]], [0, 0, 0, 0],
    ),
    # RX(θ) = [[c, -is], [-is, c]]
    "basic_entangler": ([[0.5] * 4], [0, -_H, -_H, 0], [[0, 0, 0, 0]], [0, -_H, -_H, 0]),
}


@lru_cache(maxsize=64)
def _trig_tables(template: str, rdtype: torch.dtype, device: str):
    """``A[p, 16]``, ``off[16]``, ``M[16, 8]`` of :data:`_TRIG_FORMS`: entry e's real part
    (imaginary: phase − π/2) is ½cos(lin[4e+2j]) + ½cos(lin[4e+2j+1]), j = re/im."""
    mc, mo, pc, po = (torch.tensor(t, dtype=torch.float64) for t in _TRIG_FORMS[template])
    A = torch.zeros(mc.shape[0], 16, dtype=torch.float64)
    off = torch.zeros(16, dtype=torch.float64)
    M = torch.zeros(16, 8, dtype=torch.float64)
    for e in range(4):
        for j, shift in enumerate((0.0, -_H)):  # Re: cos φ, Im: sin φ = cos(φ − π/2)
            col = 2 * e + j
            for t, sign in enumerate((1.0, -1.0)):  # α + β, α − β
                A[:, 2 * col + t] = mc[:, e] + sign * pc[:, e]
                off[2 * col + t] = mo[e] + sign * (po[e] + shift)
                M[2 * col + t, col] = 0.5
    return tuple(t.to(device=device, dtype=rdtype) for t in (A, off, M))


def layer_unitaries(ansatz: Ansatz, weights: torch.Tensor, cdtype: torch.dtype) -> torch.Tensor:
    """Fused single-qubit unitaries ``[..., L, n, 2, 2]`` of every layer."""
    w = weights.to(REAL_OF[cdtype])
    if ansatz.template == "random_pauli":
        # One closed form for all three axes, selected by constant 0/1 masks [L, n]:
        # RX=[[c,-is],[-is,c]], RY=[[c,-s],[s,c]], RZ=[[c-is,0],[0,c+is]].
        mx, my, mz = _pauli_masks(ansatz, w.device, w.dtype)
        c, s = torch.cos(w / 2), torch.sin(w / 2)
        sx, sy, sz = s * mx, s * my, s * mz
        re = torch.stack([c, -sy, sy, c], dim=-1)
        im = torch.stack([-sz, -sx, -sx, sz], dim=-1)
        return torch.complex(re, im).unflatten(-1, (2, 2))
    A, off, M = _trig_tables(ansatz.template, torch.float64, str(w.device))
    w = weights.double().unsqueeze(-1) if ansatz.template == "basic_entangler" else weights.double()
    re_im = torch.cos(torch.addmm(off, w.reshape(-1, A.shape[0]), A)) @ M  # [.., 8]
    return torch.view_as_complex(re_im.view(*w.shape[:-1], 2, 2, 2)).to(cdtype)


def _pauli_masks(ansatz: Ansatz, device, rdtype) -> torch.Tensor:
    """``[3, L, n]`` indicator of RX/RY/RZ for ``random_pauli``."""
    names = ansatz.pauli_choices
    return torch.tensor(
        [[[float(g == axis) for g in row] for row in names] for axis in ("RX", "RY", "RZ")],
        device=device, dtype=rdtype,
    )


# --------------------------------------------------------------- permutations
def _permute(psi: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``psi[:, idx]``, fast: ``gather`` on an 8-byte real view beats ``index_select``
    along the last dim by ~10x on CPU (measured at 256 x 4096)."""
    B, N = psi.shape
    if psi.dtype == torch.complex64 and not (psi.requires_grad and torch.is_grad_enabled()):
        # the dtype view is not differentiable: only the hand-written backward takes it
        return torch.gather(psi.view(torch.float64), 1, idx.expand(B, N)).view(torch.complex64)
    return psi.index_select(1, idx.view(-1))


@lru_cache(maxsize=256)
def _bits(n: int) -> torch.Tensor:
    """``[2**n, n]`` int64 table: bit of wire ``i`` (wire 0 = MSB) of each index."""
    idx = torch.arange(2**n, dtype=torch.int64)
    shifts = torch.arange(n - 1, -1, -1, dtype=torch.int64)
    return (idx[:, None] >> shifts[None, :]) & 1


@lru_cache(maxsize=256)
def _entangler_cpu(n: int, pairs: tuple[tuple[int, int], ...], kind: str):
    """Precomputed action of a block of CNOTs (a permutation) or CZs (a ±1 diagonal)."""
    idx = torch.arange(2**n, dtype=torch.int64)
    if kind == "cz":
        bits = _bits(n)
        sign = torch.ones(2**n, dtype=torch.int64)
        for a, b in pairs:
            sign = sign * (1 - 2 * (bits[:, a] & bits[:, b]))
        return sign
    # Basis state x is sent to f(x); the new amplitude at y is the old one at f^{-1}(y).
    fx = idx.clone()
    for c, t in pairs:
        cbit = (fx >> (n - 1 - c)) & 1
        fx = fx ^ (cbit << (n - 1 - t))
    inv_f = torch.empty_like(fx)
    inv_f[fx] = idx
    return inv_f, fx  # gather index, and its inverse for the backward


_DEVICE_CACHE: dict = {}


def _entangler(n, pairs, kind, device, cdtype):
    key = (n, pairs, kind, str(device), cdtype)
    hit = _DEVICE_CACHE.get(key)
    if hit is None:
        base = _entangler_cpu(n, pairs, kind)
        if kind == "cz":
            hit = base.to(device=device, dtype=REAL_OF[cdtype]).to(cdtype)
        else:
            hit = tuple(t.to(device) for t in base)
        if len(_DEVICE_CACHE) > 512:
            _DEVICE_CACHE.clear()
        _DEVICE_CACHE[key] = hit
    return hit


def _z_signs(n: int, device, rdtype) -> torch.Tensor:
    key = ("z", n, str(device), rdtype)
    hit = _DEVICE_CACHE.get(key)
    if hit is None:
        hit = (1 - 2 * _bits(n)).to(device=device, dtype=rdtype)
        _DEVICE_CACHE[key] = hit
    return hit


# --------------------------------------------------------------- application
def _kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched Kronecker product of square matrices ``[..., p, p] ⊗ [..., q, q]``."""
    p, q = a.shape[-1], b.shape[-1]
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(*out.shape[:-4], p * q, p * q)


def _groups(n: int, k: int) -> list[tuple[int, int]]:
    """Split wires into contiguous groups of at most ``k``, from the last wire back."""
    out, end = [], n
    while end > 0:
        start = max(0, end - k)
        out.append((start, end))
        end = start
    return out


def _apply_last_rotate(psi: torch.Tensor, u: torch.Tensor, k: int) -> torch.Tensor:
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


@lru_cache(maxsize=256)
def _kron_index(wires: tuple[int, ...]) -> torch.Tensor:
    """``[K*K, k]`` positions in a flattened ``[n, 2, 2]`` stack of 2×2s whose product is
    entry (row, col) of the Kronecker product of those wires' matrices (first wire
    most significant)."""
    k = len(wires)
    bits = _bits(2 * k)  # row bits then column bits
    w = torch.tensor(wires, dtype=torch.int64)
    return 4 * w + 2 * bits[:, :k] + bits[:, k:]


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
    by_size, where = _layout(tuple(groups))
    stacks = []
    for same in by_size:
        k = same[0][1] - same[0][0]
        idx = _layer_kron_index(n, L, same, str(U.device))
        K = 2**k
        stacks.append(flat.index_select(-1, idx).view(*flat.shape[:-1], L - 1, len(same), K, K, k).prod(-1))
    return stacks, where


@lru_cache(maxsize=256)
def _layout(groups: tuple[tuple[int, int], ...]):
    """Groups of one size share a stack: ``(groups per stack, where[group] = (stack, position))``."""
    by_size: dict[int, list[tuple[int, int]]] = {}
    for grp in groups:
        by_size.setdefault(grp[1] - grp[0], []).append(grp)
    stacks = tuple(tuple(same) for same in by_size.values())
    return stacks, {grp: (i, j) for i, same in enumerate(stacks) for j, grp in enumerate(same)}


@lru_cache(maxsize=256)
def _layer_kron_index(n: int, L: int, same: tuple[tuple[int, int], ...], device: str) -> torch.Tensor:
    """Flat positions in ``U[L, n, 2, 2]`` for :func:`_group_unitaries`, layers 1 … L−1."""
    per_layer = torch.cat([_kron_index(tuple(range(a, b))) for a, b in same]).flatten()
    return torch.cat([per_layer + layer * n * 4 for layer in range(1, L)]).to(device)


def _group_size(n: int) -> int:
    # 2**k work per amplitude per pass vs ceil(n/k) passes: k=4 measured best on a
    # 2-core CPU for 8-16 qubits (see `hqexp bench backends`); override for tuning.
    env = os.environ.get("HQEXP_TORCH_GROUP")
    return max(1, int(env)) if env else min(4, n)


# --------------------------------------------------------------- memory guard
def _available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


_ALWAYS_FITS = 64 * 2**20


def check_memory(ansatz: Ansatz, batch: int, cdtype: torch.dtype, device: torch.device, grad: bool) -> None:
    """Raise :class:`QuantumMemoryError` when the state vectors cannot fit."""
    itemsize = torch.empty((), dtype=cdtype).element_size()
    state = batch * (2**ansatz.n_qubits) * itemsize
    # Autograd keeps one state per pass: groups per layer + entangler + measurement.
    passes = ansatz.n_layers * (math.ceil(ansatz.n_qubits / _group_size(ansatz.n_qubits)) + 1 + 2 * ansatz.n_pairs) + 3
    need = state * (passes if grad else 3)
    if need <= _ALWAYS_FITS:  # reading /proc/meminfo costs more than a small circuit step
        return
    have = _available_bytes(device)
    if have is not None and need > have:
        gib = 2**30
        raise QuantumMemoryError(
            f"torch backend: {ansatz.n_qubits} qubits x batch {batch} needs about {need / gib:.1f} GiB "
            f"for state vectors on {device}, only {have / gib:.1f} GiB available; "
            "reduce the batch size or the number of qubits"
        )


# ------------------------------------------------------------------- the sim
@lru_cache(maxsize=256)
def _product_index(n: int, parts: tuple[tuple[int, int], ...], device: str) -> torch.Tensor:
    """Positions in a flattened ``[n, 2]`` stack of qubit vectors: for each wire range in
    ``parts``, ``2**k`` rows of ``k`` entries whose product is amplitude x of that range's
    tensor product (first wire most significant)."""
    rows = [(2 * torch.arange(a, b) + _bits(b - a)).flatten() for a, b in parts]
    return torch.cat(rows).to(device)


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
        return flat.index_select(1, _product_index(n, ((0, n),), str(q.device))).view(B, 2**n, n).prod(-1)
    h = n // 2
    if n % 2 == 0:
        idx = _product_index(n, ((0, h), (h, n)), str(q.device))
        halves = flat.index_select(1, idx).view(B, 2, 2**h, h).prod(-1)
        hi, lo = halves[:, 0], halves[:, 1]
    else:
        hi, lo = (
            flat.index_select(1, _product_index(n, (part,), str(q.device))).view(B, 2 ** (part[1] - part[0]), -1).prod(-1)
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


def _run(ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype, measure: bool):
    """The circuit; with ``measure`` the last :class:`_Passes` also measures
    (diagonal observables, ``n ≤ 16``, no ``pair_gate``) and expectation values are returned."""
    n = ansatz.n_qubits
    rdtype = REAL_OF[dtype]
    U = layer_unitaries(ansatz, weights, dtype)  # [.., L, n, 2, 2]
    # Layer 0's rotations act on the embedded product state: fold them into the qubit
    # vectors. Every angle embedding of |0> is E @ [cos x/2, sin x/2] for a constant E.
    cs = torch.cos(inputs[:, :n, None].to(rdtype) * 0.5 - _HALF_SHIFT[rdtype].to(inputs.device))
    E = _embedding_matrix(ansatz.embedding, ansatz.pre_rotation, dtype, str(inputs.device))
    q = ((U[..., 0, :, :, :] @ E) * cs[:, :, None, :]).sum(-1)  # [B, n, 2]
    psi = _product_state(q)
    prog = _program(ansatz, _group_size(n), str(psi.device), dtype, measure)
    stacks = _group_unitaries(U, prog.groups)[0] if ansatz.n_layers > 1 else []
    if not ansatz.pair_gate:
        if prog.runs[0]:
            psi = _Passes.apply(psi, prog.runs[0], *stacks)
    else:  # one run per layer, each followed by the learned-entanglement fans
        fans = _pair_fans(n, rotation_matrix(ansatz.pair_gate[1:].upper(), inputs[:, n:].to(rdtype)))
        for layer, run in enumerate(prog.runs):
            mine = [st[..., layer - 1 : layer, :, :, :] for st in stacks] if layer > 0 else []
            psi = _apply_fans(_Passes.apply(psi, run, *mine) if run else psi, n, fans)
    if not measure or prog.measured:
        return psi
    return measure_probs(ansatz, torch.view_as_real(psi).square().sum(-1))


@dataclass(frozen=True)
class _Program:
    groups: list[tuple[int, int]]
    runs: list[tuple]  # plans for _Passes: one, or one per layer with pair_gate
    measured: bool  # the last run ends with the measurement


@lru_cache(maxsize=256)
def _program(ansatz: Ansatz, k: int, device: str, dtype: torch.dtype, measure: bool) -> _Program:
    """The static part of a circuit step — wire groups, pass plans, entangler
    permutations, measurement table — built once per ansatz and device, not per call."""
    n = ansatz.n_qubits
    groups = _groups(n, k)
    where = _layout(tuple(groups))[1]
    runs, plan = [], []
    for layer in range(ansatz.n_layers):
        if layer > 0:
            # with pair_gate every run gets its own layer's slice of the stacks: index 0
            at = 0 if ansatz.pair_gate else layer - 1
            for start, stop in groups:  # last group first: see _apply_last_rotate
                plan.append(("u", stop - start, *where[(start, stop)], at))
        pairs = ansatz.entangling_pairs(layer)
        if pairs:
            ent = _entangler(n, pairs, ansatz.entangler, device, dtype)
            plan.append(("sign", ent) if ansatz.entangler == "cz" else ("perm", *ent))
        if ansatz.pair_gate:
            runs.append(tuple(plan))
            plan = []
    measured = measure and not ansatz.pair_gate and n <= _TABLE_MAX_QUBITS
    if measured:
        # The last entangler needs no pass: a CZ sign does not change probabilities,
        # a CNOT permutation is folded into the measurement table.
        last = plan.pop()[0] if plan and plan[-1][0] in ("sign", "perm") else None
        table = _measure_table(ansatz, last == "perm", device, REAL_OF[dtype])
        plan.append(("measure", table, (2 * table.T).contiguous()))  # d(re²)/d(re) = 2 re
    if not ansatz.pair_gate:
        runs.append(tuple(plan))
    return _Program(groups, runs, measured)


_TABLE_MAX_QUBITS = 16  # a z_each table is 2**n x n reals


def _measure_table(ansatz: Ansatz, fold_perm: bool, device, rdtype) -> torch.Tensor:
    """``[2·2**n, n_out]``: expectation values are ``|psi|² @ table`` for every diagonal
    measurement. With ``fold_perm`` the last layer's CNOT permutation is folded into the
    table's rows instead of being a pass over the state."""
    n = ansatz.n_qubits
    pairs = ansatz.entangling_pairs(ansatz.n_layers - 1) if fold_perm else ()
    key = ("table", ansatz.measurement, n, pairs, str(device), rdtype)
    hit = _DEVICE_CACHE.get(key)
    if hit is None:
        z = _z_signs(n, device, rdtype)
        m = ansatz.measurement
        if m == "z_each":
            t = z
        elif m == "z0":
            t = z[:, :1]
        elif m == "z0z1":
            t = (z[:, 0] * z[:, 1]).unsqueeze(-1)
        elif m == "global_projector":
            t = torch.zeros_like(z[:, :1])
            t[0] = 1
        else:  # local_projector: (1/n) Σ_j |0><0|_j = (1 + mean_j Z_j) / 2
            t = (1 + z.mean(-1, keepdim=True)) / 2
        if pairs:
            # after psi[y] = psi_pre[idx[y]]: Σ_y p_pre[idx[y]] t[y] = Σ_x p_pre[x] t[idx⁻¹[x]]
            t = t[_entangler_cpu(n, pairs, "cnot")[1].to(device)]
        hit = _DEVICE_CACHE[key] = t.repeat_interleave(2, dim=0)  # rows for re² and im²
    return hit


class _Passes(torch.autograd.Function):
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
        out, saved = _Passes.run(psi, plan, stacks)
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
                psi = _apply_last_rotate(psi, stacks[op[2]][..., op[4], op[3], :, :], op[1])
            elif op[0] == "perm":
                psi = _permute(psi, op[1])
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
            return _Passes.replay_backward(ctx, grad, tensors[-1], stacks)
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
                grad = _permute(grad, op[2])
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
        out, _ = _Passes.run(psi, ctx.plan, stacks)
        found = iter(torch.autograd.grad(out, leaves, grad, create_graph=True, allow_unused=True))
        grads = [next(found) if w else None for w in need]
        return grads[0], None, *grads[1:]


def _stack_grad(stack: torch.Tensor, records: list) -> torch.Tensor:
    """The gradient of one stack from its passes' ``(layer, position, grad)``."""
    records.sort(key=lambda r: (r[0], r[1]))
    gu = torch.stack([r[2] for r in records], dim=-3)  # [(B,) R, K, K]
    return gu.view(stack.shape)


def _pair_fans(n: int, pair_u: torch.Tensor) -> list[torch.Tensor]:
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
            fan = _kron(pair_u[:, p + j], fan)  # target c+1 most significant
        fans.append(fan.transpose(-1, -2))
        p += k
    return fans


def _apply_fans(psi: torch.Tensor, n: int, fans: list[torch.Tensor]) -> torch.Tensor:
    """Controlled rotations on every pair ``(c, t)``, ``c < t``, in lexicographic order."""
    B = psi.shape[0]
    for c, fan_t in enumerate(fans):
        view = psi.view(B, 2**c, 2, 2 ** (n - 1 - c))
        on = torch.matmul(view[:, :, 1], fan_t)
        psi = torch.stack([view[:, :, 0], on], dim=2).reshape(B, -1)
    return psi


def measure_probs(ansatz: Ansatz, probs: torch.Tensor) -> torch.Tensor:
    """Expectation values ``[B, n_out]`` from basis probabilities ``[B, 2**n]``."""
    n = ansatz.n_qubits
    m = ansatz.measurement
    if m == "global_projector":
        return probs[:, :1]
    if m == "z0":
        half = probs.view(probs.shape[0], 2, -1).sum(-1)
        return (half[:, :1] - half[:, 1:])
    if m == "z0z1":
        p = probs.view(probs.shape[0], 4, -1).sum(-1)  # |00>, |01>, |10>, |11> of wires 0, 1
        return (p[:, 0] - p[:, 1] - p[:, 2] + p[:, 3]).unsqueeze(-1)
    if n <= 16:
        z = probs @ _z_signs(n, probs.device, probs.dtype)
    else:  # the sign table would be 2**n x n: reduce per wire instead
        z = torch.stack(
            [(lambda h: h[:, 0] - h[:, 1])(probs.view(probs.shape[0], 2**i, 2, -1).sum((1, 3))) for i in range(n)],
            dim=-1,
        )
    if m == "z_each":
        return z
    return (1 + z.mean(-1, keepdim=True)) / 2  # local_projector: |0><0| = (1+Z)/2


def torch_expval(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Expectation values ``[B, n_out]`` (real dtype matching ``dtype``)."""
    check_memory(ansatz, inputs.shape[0], dtype, inputs.device, torch.is_grad_enabled())
    return _run(ansatz, inputs, weights, dtype, measure=True)
