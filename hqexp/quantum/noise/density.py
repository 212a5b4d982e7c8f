"""The noisy executor: a batched, differentiable density-matrix simulator in torch.

The state is held as its ``4ⁿ`` real Pauli coefficients (:mod:`hqexp.quantum.noise.ptm`): a
one-qubit gate or channel is a 4×4 real matrix on one base-4 digit, a two-qubit one a 16×16 on two.
Everything before a qubit's first two-qubit gate (the embedding and the first layer's rotations,
with their noise) acts on that qubit alone, so the state starts as a product of Bloch vectors;
consecutive one-qubit gates and their channels are fused, all rotation matrices of a call are
built in one batched expression, and the one-qubit layer between entangling blocks is applied as
Kronecker-grouped matrices. Gradients come from ordinary autograd.

Two pictures, chosen per call:

* **Heisenberg** (exact expectation values of shared-weight circuits without learned
  entanglement — what training asks for): the measured observables, readout error folded in, are
  evolved backwards through the circuit once for the whole batch (``Rᵀ``, one vector per output),
  then contracted with each sample's product state. The cost grows with the outputs, not the batch.
* **Schrödinger** (everything else: shots, per-sample weights, learned entanglement, parameter
  shift): every sample's state evolves forwards; its ``{I, Z}ⁿ`` coefficients are the measured
  distribution (a Walsh–Hadamard transform away), then the readout assignment matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from hqexp.errors import ConfigError
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.memory import require_memory
from hqexp.quantum.noise import ptm
from hqexp.quantum.noise.model import NoiseModel, Step, swap_middle
from hqexp.quantum.templates.base import REAL_OF, rotation_matrix

MAX_QUBITS = 13  # 4^13 float32 coefficients = 256 MiB per sample

_FIXED = {
    "CNOT": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=np.complex128),
    "CZ": np.diag([1, 1, 1, -1]).astype(np.complex128),
}


# ------------------------------------------------------------------ the static plan
@dataclass(frozen=True)
class _Plan:
    """Everything about a noisy circuit that does not depend on its angles, built once."""

    axes: tuple[int, ...]  # rotation axis (1 X, 2 Y, 3 Z) of every one-qubit gate
    sources: tuple  # per one-qubit gate: ("x", col) | ("w", k) | ("c", value)
    channels: np.ndarray  # [G, 4, 4] transfer matrix of the channel after each one-qubit gate
    prefix: tuple[tuple[int, ...], ...]  # per qubit: its one-qubit gates before its first two-qubit gate
    ops: tuple  # the body: ("local", ((q, segment), ...)) | ("two", wires, key, step)
    two: dict  # key -> [16, 16] transfer matrix (gate and channel) of a fixed two-qubit step
    x_gates: tuple[int, ...]  # one-qubit gates whose angle is an input (the embedding)
    segments: np.ndarray  # [S, K] gate ids of each run of fused gates, time order, padded with G (identity)
    tails: tuple  # per qubit: (its embedding gate or None, the segment of the rest of its prefix or None)
    constants: np.ndarray  # the constant angles, then a 0 (the inputs' slot)
    angle_index: np.ndarray  # [G] each gate's angle in [weights..., constants]


@lru_cache(maxsize=128)
def plan(ansatz: Ansatz, model: NoiseModel) -> _Plan:
    steps = model.steps(ansatz)
    n = ansatz.n_qubits
    first = [len(steps)] * n
    for i, s in enumerate(steps):
        if len(s.wires) == 2:
            for w in s.wires:
                first[w] = min(first[w], i)
    axes, sources, chans = [], [], []
    prefix: list[list[int]] = [[] for _ in range(n)]
    ops: list = []
    two: dict = {}
    pending: dict[int, list[int]] = {}

    segments: list[tuple[int, ...]] = []

    def segment(ids) -> int:
        segments.append(tuple(ids))
        return len(segments) - 1

    def flush() -> None:
        if pending:
            ops.append(("local", tuple((q, segment(ids)) for q, ids in sorted(pending.items()))))
            pending.clear()

    for i, s in enumerate(steps):
        if len(s.wires) == 1:
            g = len(axes)
            axes.append(ptm.AXIS[s.name])
            sources.append(s.param)
            after = model.after(s)
            chans.append(np.eye(4) if after is None else ptm.of_superop(after, 1))
            q = s.wires[0]
            (prefix[q] if i < first[q] else pending.setdefault(q, [])).append(g)
            continue
        flush()  # one-qubit gates pending on other qubits commute with this gate: apply them now
        if s.name in _FIXED:
            key = (s.name, s.wires)
            if key not in two:
                r = ptm.of_kraus((_FIXED[s.name],))
                after = model.after(s)
                if after is not None:
                    r = ptm.of_superop(swap_middle(after), 2) @ r
                two[key] = r
            ops.append(("two", s.wires, key, None))
        else:  # a learned-entanglement gate: its angle is per sample
            after = model.after(s)
            key = ("channel", s.wires, s.name)
            two[key] = np.eye(16) if after is None else ptm.of_superop(swap_middle(after), 2)
            ops.append(("two", s.wires, key, s))
    flush()
    x_gates = tuple(g for g, src in enumerate(sources) if src[0] == "x")
    if any(g in x_gates for seg in segments for g in seg):
        raise NotImplementedError("an input-angle gate after the embedding")  # no template has one
    tails = []
    for q in range(n):
        ids = list(prefix[q])
        emb = ids.pop(0) if ids and ids[0] in x_gates else None
        if any(g in x_gates for g in ids):
            raise NotImplementedError("two input-angle gates on one qubit before its first two-qubit gate")
        tails.append((emb, segment(ids) if ids else None))
    n_w = ansatz.n_weights
    consts = [float(v) for kind, v in sources if kind == "c"]
    index, c = [], 0
    for kind, v in sources:
        if kind == "w":
            index.append(int(v))
        elif kind == "c":
            index.append(n_w + c)
            c += 1
        else:
            index.append(n_w + len(consts))  # 0: an input angle, applied per sample instead
    G = len(axes)
    width = max((len(seg) for seg in segments), default=1)
    padded = np.full((max(len(segments), 1), width), G, dtype=np.int64)
    for i, seg in enumerate(segments):
        padded[i, : len(seg)] = seg
    return _Plan(
        tuple(axes),
        tuple(sources),
        np.stack(chans) if chans else np.zeros((0, 4, 4)),
        tuple(tuple(p) for p in prefix),
        tuple(ops),
        two,
        x_gates,
        padded,
        tuple(tails),
        np.asarray([*consts, 0.0]),
        np.asarray(index, dtype=np.int64),
    )


# ------------------------------------------------------------------ the gates of one call
class _Gates:
    """The transfer matrices of one call's one-qubit gates, built in one batched expression.

    ``shared[g]`` ``[G, 4, 4]`` for gates whose angle is a weight or a constant (with per-sample
    weights ``[B, G, 4, 4]``); the embedding gates, whose angle is an input, ``per_sample[g]``."""

    def __init__(self, p: _Plan, inputs: torch.Tensor, weights: torch.Tensor, ansatz: Ansatz, dtype) -> None:
        self.p, self.dtype, self.device = p, dtype, inputs.device
        G = len(p.axes)
        self.batched_w = weights.dim() > len(ansatz.weight_shape)
        w = weights.to(dtype).reshape(weights.shape[0], -1) if self.batched_w else weights.to(dtype).reshape(-1)
        chans = _const(p.channels, dtype, self.device) if G else None
        if G:
            # every gate's angle in one gather from [weights..., constants..., 0 (inputs: set below)]
            consts = _const(p.constants, dtype, self.device)
            ext = torch.cat([w, consts.expand(*w.shape[:-1], -1)], dim=-1)
            theta = ext[..., _const(p.angle_index, torch.int64, self.device)]
            r = ptm.rotations(p.axes, theta)  # [(B,) G, 4, 4]
            self.shared = chans @ r
        else:
            self.shared = None
        self.chans = chans
        # every run of fused gates at once: gather the runs' gates (identity as padding), multiply
        eye = (
            torch.eye(4, dtype=dtype, device=self.device).expand(*self.shared.shape[:-3], 1, 4, 4)
            if self.shared is not None
            else torch.eye(4, dtype=dtype, device=self.device)[None]
        )
        table = torch.cat([self.shared, eye], dim=-3) if self.shared is not None else eye
        idx = _const(p.segments, torch.int64, self.device)
        runs = table[..., idx, :, :]  # [(B,) S, K, 4, 4]
        m = runs[..., 0, :, :]
        for k in range(1, runs.shape[-3]):
            m = runs[..., k, :, :] @ m
        self.segments = m  # [(B,) S, 4, 4]
        x = inputs.to(dtype)
        self.per_sample = {}
        if p.x_gates:
            axes = tuple(p.axes[g] for g in p.x_gates)
            cols = [int(p.sources[g][1]) for g in p.x_gates]
            rx = ptm.rotations(axes, x[:, cols])  # [B, Gx, 4, 4]
            rx = chans[list(p.x_gates)] @ rx
            self.per_sample = {g: rx[:, j] for j, g in enumerate(p.x_gates)}

    def get(self, g: int) -> torch.Tensor:
        if g in self.per_sample:
            return self.per_sample[g]
        return self.shared[..., g, :, :]

    def segment(self, i: int) -> torch.Tensor:
        """The fused matrix of run ``i`` (its gates in time order, the last one leftmost)."""
        return self.segments[..., i, :, :]


def _const(array: np.ndarray, dtype, device) -> torch.Tensor:
    key = (id(array), dtype, str(device))
    hit = _CONST.get(key)
    if hit is None or hit[0] is not array:
        if len(_CONST) > 4096:
            _CONST.clear()
        hit = _CONST[key] = (array, torch.as_tensor(array, dtype=dtype, device=device))
    return hit[1]


_CONST: dict = {}


def _pair_ptm(step: Step, angle: torch.Tensor, dtype) -> torch.Tensor:
    """``[B, 16, 16]`` transfer matrices of a controlled rotation with per-sample angles."""
    cd = torch.complex128 if dtype == torch.float64 else torch.complex64
    r = rotation_matrix(step.name[1:], angle.to(dtype)).to(cd)  # [B, 2, 2]
    u = torch.zeros(*r.shape[:-2], 4, 4, dtype=cd, device=r.device)
    u[..., 0, 0] = u[..., 1, 1] = 1
    u[..., 2:, 2:] = r
    P = _const(ptm.pauli_strings(2), cd, r.device)  # [16, 4, 4]
    images = torch.einsum("bij,pjk,blk->bpil", u, P, u.conj())  # u P u†
    return torch.einsum("aji,bpij->bap", P, images).real / 4


# ------------------------------------------------------------------ applying operators
def _digits_op(vec: torch.Tensor, lead: int, op: torch.Tensor, d: int, tail: int) -> torch.Tensor:
    """``op`` ``[d, d]`` (or per row ``[B, d, d]``) on the block of ``d`` values that sits between
    ``lead`` and ``tail`` positions of every row: the fastest of three forms by the block's place
    (measured at 8 qubits: a broadcast matmul from 64 trailing values on, one GEMM when nothing
    trails, an einsum between)."""
    B = vec.shape[0]
    if op.dim() == 2:
        if tail >= 64:
            return torch.matmul(op, vec.view(B * lead, d, tail)).reshape(B, -1)
        if tail == 1:
            return (vec.view(-1, d) @ op.T).reshape(B, -1)
        if tail == 4 and d == 4:  # the op on the last two digits as (op ⊗ I₄): one GEMM, no copy
            eye = torch.eye(4, dtype=op.dtype, device=op.device)
            return (vec.view(-1, 16) @ _kron(op, eye).T).reshape(B, -1)
        return torch.einsum("ij,bxjy->bxiy", op, vec.view(B, lead, d, tail)).reshape(B, -1)
    if tail >= 64:
        return torch.matmul(op[:, None], vec.view(B, lead, d, tail)).reshape(B, -1)
    return torch.einsum("bij,bxjy->bxiy", op, vec.view(B, lead, d, tail)).reshape(B, -1)


def _apply1(vec: torch.Tensor, n: int, q: int, op: torch.Tensor) -> torch.Tensor:
    """``op`` ``[4, 4]`` (or per row ``[B, 4, 4]``) on digit ``q``."""
    return _digits_op(vec, 4**q, op, 4, 4 ** (n - q - 1))


def _apply2(vec: torch.Tensor, n: int, wires: tuple[int, int], op: torch.Tensor) -> torch.Tensor:
    """``op`` ``[16, 16]`` (or ``[B, 16, 16]``) on digits ``wires`` (the first is the op's first)."""
    a, b = wires
    if abs(a - b) == 1:  # neighbouring digits: one 16-value block
        if a > b:  # the op's first digit is the later one: swap its digit order
            op = op.reshape(*op.shape[:-2], 4, 4, 4, 4).transpose(-4, -3).transpose(-2, -1).reshape(op.shape)
            a, b = b, a
        return _digits_op(vec, 4**a, op, 16, 4 ** (n - b - 1))
    B = vec.shape[0]
    op4 = op.reshape(*op.shape[:-2], 4, 4, 4, 4)  # out_a out_b in_a in_b (a = wires[0])
    if a > b:
        a, b = b, a
        lead = op4.dim() - 4
        op4 = op4.permute(*range(lead), lead + 1, lead, lead + 3, lead + 2)
    v = vec.view(B, 4**a, 4, 4 ** (b - a - 1), 4, 4 ** (n - b - 1))
    eq = "bijkl,bxkylz->bxiyjz" if op4.dim() == 5 else "ijkl,bxkylz->bxiyjz"
    return torch.einsum(eq, op4, v).reshape(B, -1)


def _kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    p, q = a.shape[-1], b.shape[-1]
    return (a[..., :, None, :, None] * b[..., None, :, None, :]).reshape(*a.shape[:-2], p * q, p * q)


def _apply_local(vec: torch.Tensor, n: int, mats: dict[int, torch.Tensor], transpose: bool) -> torch.Tensor:
    """One-qubit matrices on several qubits at once: the whole register as one Kronecker product
    when it is small, adjacent pairs as 16×16 otherwise."""
    if transpose:
        mats = {q: m.transpose(-1, -2) for q, m in mats.items()}
    shared = all(m.dim() == 2 for m in mats.values())
    if shared and len(mats) == n and n <= 4:
        full = mats[0]
        for q in range(1, n):
            full = _kron(full, mats[q])
        return vec @ full.T
    qs = sorted(mats)
    i = 0
    while i < len(qs):
        q = qs[i]
        if i + 1 < len(qs) and qs[i + 1] == q + 1 and shared:
            vec = _apply2(vec, n, (q, q + 1), _kron(mats[q], mats[q + 1]))
            i += 2
        else:
            vec = _apply1(vec, n, q, mats[q])
            i += 1
    return vec


def _two_op(p: _Plan, op, angles: dict, dtype, device, pair) -> torch.Tensor:
    _, wires, key, step = op
    r = _const(p.two[key], dtype, device)
    if step is None:
        return r
    layer, k = step.occurrence
    angle = pair[:, layer, k] if pair is not None else angles["x"][:, int(step.param[1])]
    return r @ _pair_ptm(step, angle, dtype)


# ------------------------------------------------------------------ the two pictures
def _check(ansatz: Ansatz) -> None:
    if ansatz.n_qubits > MAX_QUBITS:
        raise ConfigError(
            f"the noisy simulator holds density matrices: {ansatz.n_qubits} qubits is beyond its "
            f"{MAX_QUBITS}-qubit limit (4^n coefficients per sample)"
        )


def _product_vectors(p: _Plan, gates: _Gates, n: int, B: int) -> torch.Tensor:
    """``[B, n, 4]``: each qubit's Bloch vector before its first two-qubit gate — its embedding
    (per sample) applied to |0⟩, then the fused rest of its prefix."""
    out = []
    for q in range(n):
        emb, tail = p.tails[q]
        if emb is not None:
            m = gates.get(emb)  # [B, 4, 4]
            v = m[..., :, 0] + m[..., :, 3]  # applied to |0><0| = (1, 0, 0, 1)
        else:
            v = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=gates.dtype, device=gates.device).expand(B, 4)
        if tail is not None:
            t = gates.segment(tail)
            v = torch.einsum("bij,bj->bi" if t.dim() == 3 else "ij,bj->bi", t, v)
        out.append(v)
    return torch.stack(out, dim=1)


def _kron_rows(v: torch.Tensor) -> torch.Tensor:
    """``[B, k, 4]`` → ``[B, 4^k]``: the product of each row's ``k`` vectors (the first most significant)."""
    B, k = v.shape[0], v.shape[1]
    out = v.new_ones(B, 1)
    for q in range(k):
        out = (out[:, :, None] * v[:, q, None, :]).reshape(B, -1)
    return out


def heisenberg_applies(ansatz: Ansatz, weights: torch.Tensor) -> bool:
    """Shared weights and no learned entanglement: the circuit after the product state is the same
    channel for every sample, so the observables can be evolved once for the whole batch."""
    return weights.dim() == len(ansatz.weight_shape) and not ansatz.pair_gate


def expectations(
    ansatz: Ansatz,
    model: NoiseModel,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    cdtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Exact expectation values ``[B, n_out]`` of the noisy circuit: the Heisenberg picture."""
    _check(ansatz)
    n, B, J = ansatz.n_qubits, inputs.shape[0], ansatz.n_out
    dtype = REAL_OF[cdtype]
    p = plan(ansatz, model)
    itemsize = torch.empty((), dtype=dtype).element_size()
    require_memory(
        J * 4**n * itemsize * (len(p.ops) + 3) + B * J * 4 ** (n - 1) * itemsize,
        "torch (density matrix)",
        n,
        B,
        inputs.device,
    )
    gates = _Gates(p, inputs, weights, ansatz, dtype)
    table = ansatz.observable.table(n).to(device=inputs.device, dtype=dtype)  # [2^n, J]
    mats = model.readout()
    if mats is not None:  # as measured: t'[x] = Σ_y A[y, x] t[y]
        table = _readout_transpose(table.T.contiguous(), n, mats).T
    o = torch.zeros(J, 4**n, dtype=dtype, device=inputs.device)
    o[:, ptm.iz_positions(n, str(inputs.device))] = table.T @ ptm.walsh(n, str(inputs.device), dtype).T
    for op in reversed(p.ops):
        if op[0] == "local":
            o = _apply_local(o, n, {q: gates.segment(seg) for q, seg in op[1]}, transpose=True)
        else:
            o = _apply2(o, n, op[1], _two_op(p, op, {}, dtype, inputs.device, None).transpose(-1, -2))
    v = _product_vectors(p, gates, n, B)  # [B, n, 4]
    # ⟨o_j, ⊗_q v_q⟩ for every sample: the product state split in halves, left ⊗ right; one GEMM of
    # the observables with the right halves, then a small weighted sum with the left halves
    h = n // 2
    left, right = _kron_rows(v[:, :h]), _kron_rows(v[:, h:])  # [B, 4^h], [B, 4^(n-h)]
    t = o.view(J * 4**h, 4 ** (n - h)) @ right.T  # [J·4^h, B]
    return torch.einsum("jxb,bx->bj", t.view(J, 4**h, B), left)


def probabilities(
    ansatz: Ansatz,
    model: NoiseModel,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    cdtype: torch.dtype = torch.complex64,
    pair_angles: torch.Tensor | None = None,
) -> torch.Tensor:
    """The measured distribution ``[B, 2**n]`` (readout error included) of every sample: the
    Schrödinger picture. ``pair_angles`` ``[B, L, n_pairs]``: each layer's own pair angles."""
    r = _evolve(ansatz, model, inputs, weights, REAL_OF[cdtype], pair_angles)
    n = ansatz.n_qubits
    iz = r[:, ptm.iz_positions(n, str(r.device))]  # coefficients of the {I, Z} strings
    probs = iz @ ptm.walsh(n, str(r.device), r.dtype)  # p(x) = 2^-n Σ_a r_a Π_q (±1 for Z, 1 for I)
    return _readout(probs, n, model.readout())


def _evolve(ansatz, model, inputs, weights, dtype, pair_angles) -> torch.Tensor:
    """``[B, 4^n]``: every sample's final Pauli coefficients (before readout)."""
    _check(ansatz)
    n, B = ansatz.n_qubits, inputs.shape[0]
    p = plan(ansatz, model)
    itemsize = torch.empty((), dtype=dtype).element_size()
    require_memory(B * 4**n * itemsize * (len(p.ops) + 3), "torch (density matrix)", n, B, inputs.device)
    gates = _Gates(p, inputs, weights, ansatz, dtype)
    r = _kron_rows(_product_vectors(p, gates, n, B))
    angles = {"x": inputs}
    for op in p.ops:
        if op[0] == "local":
            r = _apply_local(r, n, {q: gates.segment(seg) for q, seg in op[1]}, transpose=False)
        else:
            r = _apply2(r, n, op[1], _two_op(p, op, angles, dtype, inputs.device, pair_angles))
    return r


def readout_probabilities(probs: torch.Tensor, model: NoiseModel) -> torch.Tensor:
    """``[B, 2**n]`` probabilities as measured through ``model``'s readout assignment matrices."""
    return _readout(probs, model.n, model.readout())


def _readout(probs: torch.Tensor, n: int, mats) -> torch.Tensor:
    if mats is None:
        return probs
    B = probs.shape[0]
    out = probs
    for q, A in enumerate(mats):
        At = torch.as_tensor(A, dtype=probs.dtype, device=probs.device)
        v = out.view(B, 2**q, 2, 2 ** (n - q - 1))
        out = torch.einsum("ij,bxjy->bxiy", At, v).reshape(B, -1)
    return out


def _readout_transpose(t: torch.Tensor, n: int, mats) -> torch.Tensor:
    """``t`` ``[J, 2**n]`` times ``⊗ A_q`` on the right: each output's eigenvalues as measured."""
    J = t.shape[0]
    out = t
    for q, A in enumerate(mats):
        At = torch.as_tensor(A, dtype=t.dtype, device=t.device)
        v = out.view(J, 2**q, 2, 2 ** (n - q - 1))
        out = torch.einsum("ji,bxjy->bxiy", At, v).reshape(J, -1)
    return out


def density_matrices(
    ansatz: Ansatz, model: NoiseModel, inputs: torch.Tensor, weights: torch.Tensor, cdtype=torch.complex128
) -> torch.Tensor:
    """Final density matrices ``[B, 2**n, 2**n]`` before readout (for tests and diagnostics)."""
    r = _evolve(ansatz, model, inputs, weights, REAL_OF[cdtype], None)
    P = torch.as_tensor(ptm.pauli_strings(ansatz.n_qubits), dtype=cdtype, device=r.device)
    return torch.einsum("ba,aij->bij", r.to(cdtype), P) / 2**ansatz.n_qubits
