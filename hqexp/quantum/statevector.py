"""hqexp's own batched state-vector simulator in plain PyTorch (the ``torch`` backend).

Layout: a batch of states ``psi[B, 2**n]``; wire 0 is the most significant bit of
the basis index (PennyLane's convention). Everything is differentiable by autograd.

Where the time goes, and what we do about it:

* Embedding and the first layer's rotations act on a product state, so they are
  folded into per-qubit 2-vectors and the state is built by Kronecker products —
  no gate is ever applied to the full state for them.
* The rotations of one qubit in one layer (e.g. ``Rot = RZ·RY·RZ``) are one 2×2.
* Neighbouring qubits' 2×2s are merged by Kronecker product into one
  ``2**k × 2**k`` matrix, so a layer costs ``ceil(n/k)`` passes over the state
  instead of ``n``. Each pass is one bmm on the *last* wires whose output is
  written transposed, which rotates the wire order; after all groups the order
  is back where it started, so no pass ever needs a permute copy.
* A whole CNOT ring is one basis permutation (one gather; its backward is a gather
  with the inverse permutation, not a scatter); a CZ chain is one sign vector.
* All ⟨Z_i⟩ come from one ``probs @ signs`` matmul.
"""

from __future__ import annotations

import math
import os
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


def _embedding_vectors(embedding: str, x: torch.Tensor) -> torch.Tensor:
    """Per-qubit states ``[B, n, 2]`` of the angle embedding applied to |0⟩."""
    c, s = torch.cos(x / 2), torch.sin(x / 2)
    z = torch.zeros_like(c)
    if embedding == "angle_x":  # RX|0> = cos|0> - i sin|1>
        return torch.stack([_c(c, z), _c(z, -s)], dim=-1)
    if embedding == "angle_y":
        return torch.stack([_c(c, z), _c(s, z)], dim=-1)
    return torch.stack([_c(c, -s), _c(z, z)], dim=-1)  # angle_z: e^{-ix/2}|0>


def layer_unitaries(ansatz: Ansatz, weights: torch.Tensor, cdtype: torch.dtype) -> torch.Tensor:
    """Fused single-qubit unitaries ``[..., L, n, 2, 2]`` of every layer.

    Closed forms (one ``torch.complex`` each) instead of multiplying gate matrices:
    at 8 qubits the simulator is dispatch-bound, so op count is time.
    """
    w = weights.to(REAL_OF[cdtype])
    if ansatz.template == "basic_entangler":
        return rotation_matrix("RX", w)
    if ansatz.template == "random_pauli":
        # One closed form for all three axes, selected by constant 0/1 masks [L, n]:
        # RX=[[c,-is],[-is,c]], RY=[[c,-s],[s,c]], RZ=[[c-is,0],[0,c+is]].
        mx, my, mz = _pauli_masks(ansatz, w.device, w.dtype)
        c, s = torch.cos(w / 2), torch.sin(w / 2)
        sx, sy, sz = s * mx, s * my, s * mz
        re = torch.stack([c, -sy, sy, c], dim=-1)
        im = torch.stack([-sz, -sx, -sx, sz], dim=-1)
        return torch.complex(re, im).unflatten(-1, (2, 2))
    if ansatz.template == "strongly_entangling":
        # Rot(φ,θ,ω) = RZ(ω)RY(θ)RZ(φ) = [[e^{-ia}c, -e^{ib}s], [e^{-ib}s, e^{ia}c]],
        # a = (φ+ω)/2, b = (φ-ω)/2, c = cos θ/2, s = sin θ/2.
        phi, theta, omega = w.unbind(-1)
        a, b = (phi + omega) / 2, (phi - omega) / 2
        c, s = torch.cos(theta / 2), torch.sin(theta / 2)
        ca, sa, cb, sb = torch.cos(a) * c, torch.sin(a) * c, torch.cos(b) * s, torch.sin(b) * s
        re = torch.stack([ca, -cb, cb, ca], dim=-1)
        im = torch.stack([-sa, -sb, -sb, sa], dim=-1)
    else:
        # hardware_efficient: RZ(β)RY(α) = [[e^{-iβ/2}c, -e^{-iβ/2}s], [e^{iβ/2}s, e^{iβ/2}c]].
        alpha, beta = w.unbind(-1)
        c, s = torch.cos(alpha / 2), torch.sin(alpha / 2)
        cz, sz = torch.cos(beta / 2), torch.sin(beta / 2)
        re = torch.stack([cz * c, -cz * s, cz * s, cz * c], dim=-1)
        im = torch.stack([-sz * c, sz * s, sz * s, sz * c], dim=-1)
    return torch.complex(re, im).unflatten(-1, (2, 2))


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
    if psi.dtype == torch.complex64:
        return torch.gather(psi.view(torch.float64), 1, idx.expand(B, N)).view(torch.complex64)
    return psi[:, idx]


class _Gather(torch.autograd.Function):
    """``psi[:, idx]`` for a permutation ``idx``; backward gathers with the inverse."""

    @staticmethod
    def forward(ctx, psi, idx, inv):  # type: ignore[override]
        ctx.save_for_backward(inv)
        return _permute(psi.contiguous(), idx)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (inv,) = ctx.saved_tensors
        return _permute(grad.contiguous(), inv), None, None


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


def _group_unitaries(rest: torch.Tensor, groups: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Kronecker product of each wire group's 2×2s, for all layers at once: ``[.., L, K, K]``
    per group, in the order of ``groups``.

    Full groups of a power-of-two size are built as a pairwise tree over all groups
    together (log2 k batched products instead of k−1 per group): the preparation of
    the fused matrices is dispatch-bound and costs as much as the passes over the state.
    """
    sizes = [stop - start for start, stop in groups]
    k = sizes[0]
    full = [g for g in groups if g[1] - g[0] == k]
    out: dict[tuple[int, int], torch.Tensor] = {}
    if k > 1 and k & (k - 1) == 0 and len(full) > 1:
        lo = min(start for start, _ in full)  # full groups are contiguous and end at wire n
        g = rest[..., lo:, :, :]
        while g.shape[-3] > len(full):
            a, b = g[..., 0::2, :, :], g[..., 1::2, :, :]
            p = a.shape[-1]
            g = (a[..., :, None, :, None] * b[..., None, :, None, :]).reshape(*a.shape[:-2], p * p, p * p)
        for j, grp in enumerate(sorted(full)):
            out[grp] = g[..., j, :, :]
    for start, stop in groups:
        if (start, stop) not in out:
            g = rest[..., start, :, :]
            for w in range(start + 1, stop):
                g = _kron(g, rest[..., w, :, :])
            out[(start, stop)] = g
    return [out[grp] for grp in groups]


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


def check_memory(ansatz: Ansatz, batch: int, cdtype: torch.dtype, device: torch.device, grad: bool) -> None:
    """Raise :class:`QuantumMemoryError` when the state vectors cannot fit."""
    itemsize = torch.empty((), dtype=cdtype).element_size()
    state = batch * (2**ansatz.n_qubits) * itemsize
    # Autograd keeps one state per pass: groups per layer + entangler + measurement.
    passes = ansatz.n_layers * (math.ceil(ansatz.n_qubits / _group_size(ansatz.n_qubits)) + 1 + 2 * ansatz.n_pairs) + 3
    need = state * (passes if grad else 3)
    have = _available_bytes(device)
    if have is not None and need > have:
        gib = 2**30
        raise QuantumMemoryError(
            f"torch backend: {ansatz.n_qubits} qubits x batch {batch} needs about {need / gib:.1f} GiB "
            f"for state vectors on {device}, only {have / gib:.1f} GiB available; "
            "reduce the batch size or the number of qubits"
        )


# ------------------------------------------------------------------- the sim
def _product_state(q: torch.Tensor) -> torch.Tensor:
    """``⊗_i q[:, i]`` for per-qubit vectors ``q[B, n, 2]``, as ``[B, 2**n]`` (wire 0 = MSB).

    Pairwise tree: about log2(n) broadcasted products instead of n-1.
    """
    B = q.shape[0]
    tails = []  # odd ones out, each less significant than everything paired after it
    while q.shape[1] > 1:
        if q.shape[1] % 2:
            tails.append(q[:, -1])
            q = q[:, :-1]
        d = q.shape[-1]
        q = (q[:, 0::2, :, None] * q[:, 1::2, None, :]).reshape(B, -1, d * d)
    psi = q[:, 0]
    for t in reversed(tails):
        psi = (psi[:, :, None] * t[:, None, :]).reshape(B, -1)
    return psi


def simulate(
    ansatz: Ansatz,
    inputs: torch.Tensor,
    weights: torch.Tensor,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Final states ``[B, 2**n]`` of ``ansatz`` for inputs ``[B, n]``.

    ``weights`` has ``ansatz.weight_shape`` (shared) or ``[B, *weight_shape]``.
    """
    n = ansatz.n_qubits
    rdtype = REAL_OF[dtype]
    U = layer_unitaries(ansatz, weights, dtype)  # [.., L, n, 2, 2]
    vec = _embedding_vectors(ansatz.embedding, inputs[:, :n].to(rdtype))  # [B, n, 2]
    if ansatz.pre_rotation is not None:
        name, angle = ansatz.pre_rotation
        r = rotation_matrix(name, torch.tensor(angle, dtype=rdtype, device=vec.device))
        vec = vec @ r.transpose(-1, -2)
    # Layer 0's rotations act on a product state: fold them into the qubit vectors.
    q = torch.matmul(U[..., 0, :, :, :], vec.unsqueeze(-1)).squeeze(-1)  # [B, n, 2]
    psi = _product_state(q)
    groups = _groups(n, _group_size(n))
    if ansatz.n_layers > 1:
        fused = _group_unitaries(U[..., 1:, :, :, :], groups)
    kind = ansatz.entangler
    if ansatz.pair_gate:
        pair_u = rotation_matrix(ansatz.pair_gate[1:].upper(), inputs[:, n:].to(rdtype))  # [B, P, 2, 2]
    for layer in range(ansatz.n_layers):
        if layer > 0:
            for (start, stop), g in zip(groups, fused):  # last group first: see _apply_last_rotate
                psi = _apply_last_rotate(psi, g[..., layer - 1, :, :], stop - start)
        pairs = ansatz.entangling_pairs(layer)
        if pairs:
            ent = _entangler(n, pairs, kind, psi.device, dtype)
            psi = psi * ent if kind == "cz" else _Gather.apply(psi, *ent)
        if ansatz.pair_gate:
            if layer == 0:  # the pair angles are the same in every layer: build the fans once
                fans = _pair_fans(n, pair_u)
            psi = _apply_fans(psi, n, fans)
    return psi


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
    psi = simulate(ansatz, inputs, weights, dtype)
    probs = torch.view_as_real(psi).pow(2).sum(-1)
    return measure_probs(ansatz, probs)
