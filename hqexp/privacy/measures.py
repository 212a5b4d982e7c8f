"""What the smashed data reveals, measured on held-out samples through the client side that
produced it: dCor (every round), model inversion (black and white box, at the end) and, where
labels stay on the client (``sl_ushaped``, binary tasks), the norm attack on the gradients the
server sees (Li et al., ICLR 2022)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hqexp.privacy.dcor import dcor
from hqexp.privacy.inversion import decoder_attack, whitebox_attack


def take(data: Dataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` samples of ``data`` as tensors."""
    x, y = next(iter(DataLoader(data, batch_size=max(1, min(n, len(data))), shuffle=False)))
    return x, y


def label_leak_auc(
    front: nn.Module, server: nn.Module, head: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor
) -> float:
    """ROC AUC of the per-example norm of ∂loss/∂h — the gradient the U-shaped client sends the
    server — against the true binary label (0.5: no leak; near 0 or 1: the norm gives the label away)."""
    from sklearn.metrics import roc_auc_score

    with torch.enable_grad():
        h = server(front(x)).detach().requires_grad_(True)
        per_sample = getattr(loss_fn, "reduction", None)
        loss_fn.reduction = "none"
        try:
            loss = loss_fn(head(h).float(), y).sum()
        finally:
            loss_fn.reduction = per_sample
        (g,) = torch.autograd.grad(loss, h)
    norms = g.reshape(len(g), -1).norm(dim=1).double().numpy()
    labels = y.numpy()
    return float(roc_auc_score(labels, norms)) if 0 < labels.sum() < len(labels) else float("nan")


@dataclass
class PrivacyProbe:
    """The measures of one run (see the module docstring)."""

    client: nn.Module  # the global client side (front)
    held_out: Mapping[str, Dataset]  # "val" (auxiliary / dCor) and "test" (the victims)
    n_eval: int = 256
    server: nn.Module | None = None  # U-shaped: the middle …
    head: nn.Module | None = None  # … and the client's head
    loss_fn: object = None
    leak: bool = False
    inversion_epochs: int = 200
    whitebox_steps: int = 200
    seed: int = 0
    defence: object = None  # the client's defence: what crosses is what it transmits (noise included)

    def _acts(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Held-out inputs, labels and the activations the server would receive for them."""
        x, y = take(self.held_out[split], self.n_eval)
        self.client.eval()
        with torch.no_grad():
            z = self.client(x)
            return x, y, self.defence.transmit(z) if self.defence is not None else z

    def round(self) -> dict[str, float]:
        """``privacy/dcor`` (and ``privacy/label_leak_auc``) on the held-out validation samples."""
        x, y, z = self._acts("val")
        out = {"privacy/dcor": float(dcor(x, z))}
        if self.leak:
            for m in (self.server, self.head):
                m.eval()
            auc = label_leak_auc(self.client, self.server, self.head, self.loss_fn, x, y)
            out["privacy/label_leak_auc_raw"] = auc
            out["privacy/label_leak_auc"] = max(auc, 1 - auc)  # the attacker picks the better direction
        return out

    def final(self) -> dict[str, float]:
        """The inversion attacks: the decoder learns on validation pairs and decodes test ones."""
        aux_x, _, aux_z = self._acts("val")
        x, _, z = self._acts("test")
        out = {
            f"privacy/inversion_{k}": v
            for k, v in decoder_attack(aux_x, aux_z, x, z, epochs=self.inversion_epochs, seed=self.seed).items()
        }
        out.update(
            {
                f"privacy/whitebox_{k}": v
                for k, v in whitebox_attack(self.client, x, z, steps=self.whitebox_steps).items()
            }
        )
        return out
