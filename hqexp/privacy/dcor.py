"""Distance correlation (Székely, Rizzo & Bakirov 2007) between raw inputs and what crosses the cut.

With pairwise Euclidean (not squared) distances ``a_ij = |x_i − x_j|``, ``b_ij = |z_i − z_j|``,
double-centred (``A = a − row mean − column mean + grand mean``, likewise ``B``):
``dCov²(X, Z) = mean(A·B)``, ``dVar²(X) = mean(A·A)``, and

    dCor²(X, Z) = dCov²(X, Z) / √(dVar²(X) · dVar²(Z))   ∈ [0, 1].

``dcor`` returns dCor = √dCor²: 0 when Z carries no (even nonlinear) dependence on X, 1 when Z
is a similarity transform of X (Z = aX + b, for instance). This is the V-statistic (biased)
form; it is differentiable, so NoPeek (Vepakomma et al. 2020) can minimise it in training.
"""

from __future__ import annotations

import torch


def _centred_distances(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(x.shape[0], -1).double()
    d = torch.cdist(x, x)  # Euclidean
    return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()


def dcor_squared(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """dCor² of two batches of the same size (any trailing shape: flattened per sample)."""
    if x.shape[0] != z.shape[0]:
        raise ValueError(f"dcor needs as many inputs as activations, got {x.shape[0]} and {z.shape[0]}")
    if x.shape[0] < 2:
        raise ValueError("dcor needs at least two samples")
    A, B = _centred_distances(x), _centred_distances(z)
    dcov2 = (A * B).mean()
    denom = torch.sqrt((A * A).mean() * (B * B).mean())
    if denom <= 0:
        return torch.zeros((), dtype=torch.float64, device=x.device)
    return (dcov2 / denom).clamp(0.0, 1.0)


def dcor(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Distance correlation dCor ∈ [0, 1] (see the module docstring)."""
    return dcor_squared(x, z).sqrt()
