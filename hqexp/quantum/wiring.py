"""The static wiring of a circuit for the torch simulator, built once and cached: basis-bit
tables, entangler permutations and sign vectors, the embedding as a matrix, Kronecker gather
indices, wire groups and measurement tables. Layout: wire 0 is the most significant bit of a basis index."""

from __future__ import annotations

import os
from functools import lru_cache

import torch

from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.templates.base import REAL_OF, rotation_matrix


def permute(psi: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``psi[:, idx]``, fast: ``gather`` on an 8-byte real view beats ``index_select``
    along the last dim by ~10x on CPU (measured at 256 x 4096)."""
    B, N = psi.shape
    if psi.dtype == torch.complex64 and not (psi.requires_grad and torch.is_grad_enabled()):
        # the dtype view is not differentiable: only the hand-written backward takes it
        return torch.gather(psi.view(torch.float64), 1, idx.expand(B, N)).view(torch.complex64)
    return psi.index_select(1, idx.view(-1))


@lru_cache(maxsize=256)
def bit_table(n: int) -> torch.Tensor:
    """``[2**n, n]`` int64 table: bit of wire ``i`` (wire 0 = MSB) of each index."""
    idx = torch.arange(2**n, dtype=torch.int64)
    shifts = torch.arange(n - 1, -1, -1, dtype=torch.int64)
    return (idx[:, None] >> shifts[None, :]) & 1


@lru_cache(maxsize=256)
def entangler_cpu(n: int, pairs: tuple[tuple[int, int], ...], kind: str):
    """Precomputed action of a block of CNOTs (a permutation) or CZs (a ±1 diagonal)."""
    idx = torch.arange(2**n, dtype=torch.int64)
    if kind == "cz":
        bits = bit_table(n)
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


DEVICE_CACHE: dict = {}


def entangler(n, pairs, kind, device, cdtype):
    key = (n, pairs, kind, str(device), cdtype)
    hit = DEVICE_CACHE.get(key)
    if hit is None:
        base = entangler_cpu(n, pairs, kind)
        if kind == "cz":
            hit = base.to(device=device, dtype=REAL_OF[cdtype]).to(cdtype)
        else:
            hit = tuple(t.to(device) for t in base)
        if len(DEVICE_CACHE) > 512:
            DEVICE_CACHE.clear()
        DEVICE_CACHE[key] = hit
    return hit


def kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched Kronecker product of square matrices ``[..., p, p] ⊗ [..., q, q]``."""
    p, q = a.shape[-1], b.shape[-1]
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(*out.shape[:-4], p * q, p * q)


def wire_groups(n: int, k: int) -> list[tuple[int, int]]:
    """Split wires into contiguous groups of at most ``k``, from the last wire back."""
    out, end = [], n
    while end > 0:
        start = max(0, end - k)
        out.append((start, end))
        end = start
    return out


@lru_cache(maxsize=256)
def kron_index(wires: tuple[int, ...]) -> torch.Tensor:
    """``[K*K, k]`` positions in a flattened ``[n, 2, 2]`` stack of 2×2s whose product is
    entry (row, col) of the Kronecker product of those wires' matrices (first wire
    most significant)."""
    k = len(wires)
    bits = bit_table(2 * k)  # row bits then column bits
    w = torch.tensor(wires, dtype=torch.int64)
    return 4 * w + 2 * bits[:, :k] + bits[:, k:]


@lru_cache(maxsize=256)
def layout(groups: tuple[tuple[int, int], ...]):
    """Groups of one size share a stack: ``(groups per stack, where[group] = (stack, position))``."""
    by_size: dict[int, list[tuple[int, int]]] = {}
    for grp in groups:
        by_size.setdefault(grp[1] - grp[0], []).append(grp)
    stacks = tuple(tuple(same) for same in by_size.values())
    return stacks, {grp: (i, j) for i, same in enumerate(stacks) for j, grp in enumerate(same)}


@lru_cache(maxsize=256)
def layer_kron_index(n: int, L: int, same: tuple[tuple[int, int], ...], device: str) -> torch.Tensor:
    """Flat positions in ``U[L, n, 2, 2]`` for :func:`_group_unitaries`, layers 1 … L−1."""
    per_layer = torch.cat([kron_index(tuple(range(a, b))) for a, b in same]).flatten()
    return torch.cat([per_layer + layer * n * 4 for layer in range(1, L)]).to(device)


def group_size(n: int) -> int:
    """Wires per fused group pass (``HQEXP_TORCH_GROUP`` overrides, for tuning)."""
    # 2**k work per amplitude per pass vs ceil(n/k) passes: k=4 measured best on a
    # 2-core CPU for 8-16 qubits (see `hqexp bench backends`); override for tuning.
    env = os.environ.get("HQEXP_TORCH_GROUP")
    return max(1, int(env)) if env else min(4, n)


@lru_cache(maxsize=256)
def product_index(n: int, parts: tuple[tuple[int, int], ...], device: str) -> torch.Tensor:
    """Positions in a flattened ``[n, 2]`` stack of qubit vectors: for each wire range in
    ``parts``, ``2**k`` rows of ``k`` entries whose product is amplitude x of that range's
    tensor product (first wire most significant)."""
    rows = [(2 * torch.arange(a, b) + bit_table(b - a)).flatten() for a, b in parts]
    return torch.cat(rows).to(device)


def measure_table(ansatz: Ansatz, fold_perm: bool, device, rdtype) -> torch.Tensor:
    """``[2·2**n, n_out]``: expectation values are ``|psi|² @ table`` for every diagonal
    measurement. With ``fold_perm`` the last layer's CNOT permutation is folded into the
    table's rows instead of being a pass over the state."""
    n = ansatz.n_qubits
    pairs = ansatz.entangling_pairs(ansatz.n_layers - 1) if fold_perm else ()
    key = ("table", ansatz.measurement, n, pairs, str(device), rdtype)
    hit = DEVICE_CACHE.get(key)
    if hit is None:
        t = ansatz.observable.table(n).to(device=device, dtype=rdtype)
        if pairs:
            # after psi[y] = psi_pre[idx[y]]: Σ_y p_pre[idx[y]] t[y] = Σ_x p_pre[x] t[idx⁻¹[x]]
            t = t[entangler_cpu(n, pairs, "cnot")[1].to(device)]
        hit = DEVICE_CACHE[key] = t.repeat_interleave(2, dim=0)  # rows for re² and im²
    return hit


_EMBED = {  # angle embedding applied to |0>, as a matrix on [cos x/2, sin x/2]
    "angle_x": [[1, 0], [0, -1j]],  # RX|0> = cos|0> - i sin|1>
    "angle_y": [[1, 0], [0, 1]],  # RY|0> = cos|0> + sin|1>
    "angle_z": [[1, -1j], [0, 0]],  # RZ|0> = e^{-ix/2}|0>
}


@lru_cache(maxsize=64)
def embedding_matrix(embedding: str, pre_rotation: tuple | None, cdtype: torch.dtype, device: str) -> torch.Tensor:
    """``[2, 2]`` complex: the embedding (and any fixed pre-rotation) as a matrix acting on
    ``[cos x/2, sin x/2]``."""
    E = torch.tensor(_EMBED[embedding], dtype=torch.complex128)
    if pre_rotation is not None:
        name, angle = pre_rotation
        E = rotation_matrix(name, torch.tensor(angle, dtype=torch.float64)) @ E
    return E.to(device=device, dtype=cdtype)
