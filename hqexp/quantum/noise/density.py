"""The noisy executor: a batched, differentiable density-matrix simulator in torch.

``vec(ρ)`` of ``n`` qubits is held as ``n`` four-level digits (each qubit's row and column bit
together, ``[B, 4, …, 4]``), so a one-qubit gate or channel is a 4×4 superoperator on one digit
and a two-qubit one a 16×16 on two — the same kind of pass as the state-vector simulator's, on
a vector of ``4ⁿ`` entries. Everything before a qubit's first two-qubit gate (the embedding and
the first layer's rotations, with their noise) acts on that qubit alone, so the state starts
as a product of per-qubit 2×2 density matrices; consecutive one-qubit gates and their channels
on a qubit are fused into one superoperator. Gradients come from ordinary autograd.

Two pictures, chosen per call:

* **Heisenberg** (exact expectation values of shared-weight circuits without learned
  entanglement — what training asks for): the measured observables, readout error folded in,
  are evolved backwards through the circuit once for the whole batch (the adjoint channel, a
  vector per output), then contracted with each sample's product state. The cost grows with
  the number of outputs, not the batch.
* **Schrödinger** (everything else: shots, per-sample weights, learned entanglement, parameter
  shift): every sample's density matrix evolves forwards and its diagonal, through the readout
  assignment matrices, is the distribution the shots are drawn from.

Above :data:`MAX_QUBITS` a density matrix of one sample alone is beyond any machine here (the
memory check says so first).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from hqexp.errors import ConfigError
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.memory import require_memory
from hqexp.quantum.noise.model import NoiseModel, Step, swap_middle
from hqexp.quantum.templates.base import REAL_OF, rotation_matrix

MAX_QUBITS = 13  # 4^13 complex64 = 512 MiB per sample

_FIXED = {
    "CNOT": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=np.complex128),
    "CZ": np.diag([1, 1, 1, -1]).astype(np.complex128),
    "SWAP": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.complex128),
}


def _unitary_superop(u: torch.Tensor) -> torch.Tensor:
    """``kron(U, conj(U))`` of ``[..., d, d]`` unitaries: ``[..., d², d²]`` acting on vec (row first)."""
    d = u.shape[-1]
    s = u[..., :, None, :, None] * u.conj()[..., None, :, None, :]
    return s.reshape(*u.shape[:-2], d * d, d * d)


def _two_qudit(s: torch.Tensor) -> torch.Tensor:
    """A two-qubit superoperator from (ra, rb, ca, cb) to digit order (ra, ca, rb, cb)."""
    t = s.reshape(*s.shape[:-2], 2, 2, 2, 2, 2, 2, 2, 2)
    lead = s.dim() - 2
    perm = [*range(lead), *(lead + i for i in (0, 2, 1, 3, 4, 6, 5, 7))]
    return t.permute(perm).reshape(*s.shape[:-2], 16, 16)


@dataclass(frozen=True)
class _Plan:
    prefix: tuple[tuple[Step, ...], ...]  # per qubit: its one-qubit steps before its first two-qubit one
    body: tuple[Step, ...]  # the rest, in order
    channels: tuple  # per body step: its channel superoperator (numpy) or None
    prefix_channels: tuple  # per qubit: per prefix step


@lru_cache(maxsize=128)
def plan(ansatz: Ansatz, model: NoiseModel) -> _Plan:
    steps = model.steps(ansatz)
    n = ansatz.n_qubits
    first = [len(steps)] * n
    for i, s in enumerate(steps):
        if len(s.wires) == 2:
            for w in s.wires:
                first[w] = min(first[w], i)
    prefix = [[] for _ in range(n)]
    body = []
    for i, s in enumerate(steps):
        if len(s.wires) == 1 and i < first[s.wires[0]]:
            prefix[s.wires[0]].append(s)
        else:
            body.append(s)
    pre = tuple(tuple(p) for p in prefix)
    return _Plan(
        pre, tuple(body), tuple(model.after(s) for s in body), tuple(tuple(model.after(s) for s in p) for p in pre)
    )


class _Angles:
    """Resolves a step's angle: an input column (or a pair angle of one layer), a weight, a constant."""

    def __init__(self, ansatz: Ansatz, inputs: torch.Tensor, weights: torch.Tensor, pair, rdtype) -> None:
        self.n = ansatz.n_qubits
        self.x = inputs.to(rdtype)
        self.shared = weights.dim() == len(ansatz.weight_shape)
        self.w = weights.to(rdtype).reshape(-1) if self.shared else weights.to(rdtype).reshape(weights.shape[0], -1)
        self.pair = pair.to(rdtype) if pair is not None else None

    def __call__(self, step: Step) -> torch.Tensor:
        kind, v = step.param
        if kind == "c":
            return torch.tensor(float(v), dtype=self.x.dtype, device=self.x.device)
        if kind == "w":
            return self.w[int(v)] if self.shared else self.w[:, int(v)]
        if step.occurrence is not None and self.pair is not None:
            layer, p = step.occurrence
            return self.pair[:, layer, p]
        return self.x[:, int(v)]


class _Ops:
    """Superoperators of the steps, in ``cdtype`` on ``device``, constants cached."""

    def __init__(self, cdtype: torch.dtype, device) -> None:
        self.cdtype, self.device = cdtype, device
        self._const: dict = {}

    def const(self, key, array: np.ndarray) -> torch.Tensor:
        hit = self._const.get(key)
        if hit is None:
            hit = self._const[key] = torch.as_tensor(array, dtype=self.cdtype, device=self.device)
        return hit

    def step(self, step: Step, channel, angles: _Angles) -> torch.Tensor:
        """``channel ∘ gate`` for one step: ``[4, 4]`` / ``[16, 16]`` (shared) or with a batch dim."""
        if step.name in _FIXED:
            s = self.const(("fixed", step.name), swap_middle(np.kron(_FIXED[step.name], _FIXED[step.name].conj())))
        elif step.name.startswith("CR"):
            r = rotation_matrix(step.name[1:], angles(step)).to(self.cdtype)  # [B, 2, 2]
            u = torch.zeros(*r.shape[:-2], 4, 4, dtype=self.cdtype, device=r.device)
            u[..., 0, 0] = u[..., 1, 1] = 1
            u[..., 2:, 2:] = r
            s = _two_qudit(_unitary_superop(u))
        else:
            s = _unitary_superop(rotation_matrix(step.name, angles(step)).to(self.cdtype))
        if channel is not None:
            s = self.const(("ch", id(channel)), channel) @ s
        return s


def _apply1(vec: torch.Tensor, n: int, q: int, op: torch.Tensor) -> torch.Tensor:
    B = vec.shape[0]
    v = vec.view(B, 4**q, 4, 4 ** (n - q - 1))
    eq = "bij,bxjy->bxiy" if op.dim() == 3 else "ij,bxjy->bxiy"
    return torch.einsum(eq, op, v).reshape(B, -1)


def _apply2(vec: torch.Tensor, n: int, wires: tuple[int, int], op: torch.Tensor) -> torch.Tensor:
    a, b = wires
    op4 = op.reshape(*op.shape[:-2], 4, 4, 4, 4)  # out_a out_b in_a in_b (a = wires[0])
    if a > b:
        a, b = b, a
        lead = op4.dim() - 4
        op4 = op4.permute(*range(lead), lead + 1, lead, lead + 3, lead + 2)
    B = vec.shape[0]
    v = vec.view(B, 4**a, 4, 4 ** (b - a - 1), 4, 4 ** (n - b - 1))
    eq = "bijkl,bxkylz->bxiyjz" if op4.dim() == 5 else "ijkl,bxkylz->bxiyjz"
    return torch.einsum(eq, op4, v).reshape(B, -1)


@lru_cache(maxsize=64)
def _diag_index(n: int, device: str) -> torch.Tensor:
    """Positions of ρ's diagonal in the digit layout: digit 3·bit for every qubit."""
    bits = (torch.arange(2**n)[:, None] >> torch.arange(n - 1, -1, -1)[None, :]) & 1
    weights = 4 ** torch.arange(n - 1, -1, -1)
    return ((3 * bits) * weights).sum(-1).to(device)


def readout_probabilities(probs: torch.Tensor, model: NoiseModel) -> torch.Tensor:
    """``[B, 2**n]`` probabilities as measured through ``model``'s readout assignment matrices."""
    return _readout(probs, model.n, model.readout())


def _readout(probs: torch.Tensor, n: int, mats) -> torch.Tensor:
    """Per-qubit assignment matrices applied to ``[B, 2**n]`` probabilities."""
    if mats is None:
        return probs
    B = probs.shape[0]
    out = probs
    for q, A in enumerate(mats):
        At = torch.as_tensor(A, dtype=probs.dtype, device=probs.device)
        v = out.view(B, 2**q, 2, 2 ** (n - q - 1))
        out = torch.einsum("ij,bxjy->bxiy", At, v).reshape(B, -1)
    return out


def _product_vectors(ansatz, p: _Plan, ops: _Ops, angles: _Angles, B: int) -> list[torch.Tensor]:
    """Per qubit, vec of its one-qubit density matrix before its first two-qubit gate ``[B, 4]``."""
    e0 = torch.zeros(4, dtype=ops.cdtype, device=ops.device)
    e0[0] = 1  # |0><0|
    out = []
    for q in range(ansatz.n_qubits):
        v = e0.expand(B, 4)
        for step, channel in zip(p.prefix[q], p.prefix_channels[q]):
            s = ops.step(step, channel, angles)
            v = torch.einsum("bij,bj->bi" if s.dim() == 3 else "ij,bj->bi", s, v)
        out.append(v)
    return out


def _fused_body(ansatz, p: _Plan, ops: _Ops, angles: _Angles) -> list[tuple[tuple[int, ...], torch.Tensor]]:
    """The body as ops: consecutive one-qubit steps on a qubit fused into one superoperator."""
    pending: dict[int, torch.Tensor] = {}
    out: list = []

    def flush(q: int) -> None:
        if q in pending:
            out.append(((q,), pending.pop(q)))

    for step, channel in zip(p.body, p.channels):
        s = ops.step(step, channel, angles)
        if len(step.wires) == 1:
            q = step.wires[0]
            pending[q] = s @ pending[q] if q in pending else s
        else:
            for q in step.wires:
                flush(q)
            out.append((step.wires, s))
    for q in sorted(pending):
        flush(q)
    return out


def _check(ansatz: Ansatz) -> None:
    if ansatz.n_qubits > MAX_QUBITS:
        raise ConfigError(
            f"the noisy simulator holds density matrices: {ansatz.n_qubits} qubits is beyond its "
            f"{MAX_QUBITS}-qubit limit (4^n amplitudes per sample)"
        )


def probabilities(
    ansatz: Ansatz,
    model: NoiseModel,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    cdtype: torch.dtype = torch.complex64,
    pair_angles: torch.Tensor | None = None,
) -> torch.Tensor:
    """The measured distribution ``[B, 2**n]`` (readout error included) of every sample: the
    Schrödinger picture."""
    _check(ansatz)
    n, B = ansatz.n_qubits, inputs.shape[0]
    p = plan(ansatz, model)
    itemsize = torch.empty((), dtype=cdtype).element_size()
    require_memory(B * 4**n * itemsize * (len(p.body) + 3), "torch (density matrix)", n, B, inputs.device)
    ops = _Ops(cdtype, inputs.device)
    angles = _Angles(ansatz, inputs, weights, pair_angles, REAL_OF[cdtype])
    vecs = _product_vectors(ansatz, p, ops, angles, B)
    vec = vecs[0]
    for v in vecs[1:]:
        vec = (vec[:, :, None] * v[:, None, :]).reshape(B, -1)
    for wires, s in _fused_body(ansatz, p, ops, angles):
        vec = _apply1(vec, n, wires[0], s) if len(wires) == 1 else _apply2(vec, n, wires, s)
    probs = vec[:, _diag_index(n, str(vec.device))].real
    return _readout(probs, n, model.readout())


def heisenberg_applies(ansatz: Ansatz, weights: torch.Tensor) -> bool:
    """Shared weights and no learned entanglement: the body of the circuit is the same channel for
    every sample, so the observables can be evolved once for the whole batch."""
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
    n, B = ansatz.n_qubits, inputs.shape[0]
    p = plan(ansatz, model)
    rdtype = REAL_OF[cdtype]
    J = ansatz.n_out
    itemsize = torch.empty((), dtype=cdtype).element_size()
    require_memory(
        J * 4**n * itemsize * (len(p.body) + 3) + B * J * 4 ** (n - 1) * itemsize,
        "torch (density matrix)",
        n,
        B,
        inputs.device,
    )
    ops = _Ops(cdtype, inputs.device)
    angles = _Angles(ansatz, inputs, weights, None, rdtype)
    # the observables as diagonal operators, readout folded in: T' = (⊗ A_q)^T T
    table = ansatz.observable.table(n).to(device=inputs.device, dtype=rdtype)  # [2^n, J]
    mats = model.readout()
    if mats is not None:
        t = table.T.contiguous()  # [J, 2^n]
        t = _readout_transpose(t, n, mats)
        table = t.T
    w = torch.zeros(J, 4**n, dtype=cdtype, device=inputs.device)
    w[:, _diag_index(n, str(inputs.device))] = table.T.to(cdtype)
    for wires, s in reversed(_fused_body(ansatz, p, ops, angles)):
        st = s.transpose(-1, -2)
        w = _apply1(w, n, wires[0], st) if len(wires) == 1 else _apply2(w, n, wires, st)
    vecs = _product_vectors(ansatz, p, ops, angles, B)
    t = w.view(J, 4 ** (n - 1), 4) @ vecs[-1].T  # [J, 4^(n-1), B]
    for q in range(n - 2, -1, -1):
        t = torch.einsum("jxkb,bk->jxb", t.view(J, 4**q, 4, B), vecs[q])
    return t.view(J, B).T.real


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
    _check(ansatz)
    n, B = ansatz.n_qubits, inputs.shape[0]
    p = plan(ansatz, model)
    ops = _Ops(cdtype, inputs.device)
    angles = _Angles(ansatz, inputs, weights, None, REAL_OF[cdtype])
    vecs = _product_vectors(ansatz, p, ops, angles, B)
    vec = vecs[0]
    for v in vecs[1:]:
        vec = (vec[:, :, None] * v[:, None, :]).reshape(B, -1)
    for wires, s in _fused_body(ansatz, p, ops, angles):
        vec = _apply1(vec, n, wires[0], s) if len(wires) == 1 else _apply2(vec, n, wires, s)
    # digits (r_q, c_q) -> (rows..., cols...)
    t = vec.view(B, *([2, 2] * n))
    perm = [0, *(1 + 2 * q for q in range(n)), *(2 + 2 * q for q in range(n))]
    return t.permute(perm).reshape(B, 2**n, 2**n)
