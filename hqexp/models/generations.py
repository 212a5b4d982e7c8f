"""The G-0 … G-10 hybrid family: one configurable network, one generation per config.

``GenerationNet`` = ``Linear(features→hidden) → ReLU → threshold → Linear(→n_qubits) →
π·tanh → middle → Linear(→classes)`` where

* ``threshold``: ``hard`` zeroes activations with |a| < τ (G-0 … G-9); ``soft`` multiplies
  them by sigmoid((|a| − τ)/T) with learnable τ and temperature T (G-10);
* ``middle``: nothing but tanh (G-0, classical), a :class:`QuantumLayer` (G-1 on), or, with
  ``twin=True``, a :class:`~hqexp.models.baselines.MatchedBlock` of the circuit's
  parameter count — the classical twin reported beside every hybrid;
* ``lora``: ``{rank, alpha}`` puts LoRA adapters on every linear layer and freezes the
  base weights (G-2 on).

Mixed precision (G-3), INT8 (G-4), adjoint backends (G-5), k-fold CV (G-6), retries
(G-7), SMOTE (G-8) and clinical early stopping (G-9) are run-level choices the
generation configs set (``conf/model/g*.yaml``); see the README.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from hqexp.models.baselines import MatchedBlock
from hqexp.models.vqc import AngleScale
from hqexp.quantum import Ansatz, QuantumLayer

THRESHOLDS = ("none", "hard", "soft")


class Threshold(nn.Module):
    """Activation sparsification; ``last_sparsity`` is the zeroed (hard) or gated-off (soft) fraction."""

    def __init__(self, mode: str = "hard", tau: float = 0.1, temperature: float = 0.05) -> None:
        super().__init__()
        if mode not in THRESHOLDS:
            raise ValueError(f"model.threshold must be one of {', '.join(THRESHOLDS)}, got {mode!r}")
        if tau < 0 or temperature <= 0:
            raise ValueError(f"model.tau must be >= 0 and model.temperature > 0, got {tau}, {temperature}")
        self.mode = mode
        if mode == "soft":
            self.tau = nn.Parameter(torch.tensor(float(tau)))
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        else:
            self.register_buffer("tau", torch.tensor(float(tau)))
        self.last_sparsity: float | None = None

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return a
        if self.mode == "hard":
            keep = a.abs() >= self.tau
            self.last_sparsity = float(1 - keep.float().mean())
            return a * keep
        gate = torch.sigmoid((a.abs() - self.tau) / self.log_temperature.exp())
        self.last_sparsity = float((gate < 0.5).float().mean())
        return a * gate


class LoRALinear(nn.Module):
    """``base(x) + (alpha/rank)·x Aᵀ Bᵀ`` with the base weights frozen (Hu et al. 2021).

    ``B`` starts at zero, so training starts from the base layer exactly.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"model.lora.rank must be an int >= 1, got {rank!r}")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * (x @ self.A.t()) @ self.B.t()

    def extra_macs(self, x: torch.Tensor) -> float:
        """Multiply-accumulates of the adapter (the base layer counts its own): ``rows × rank × (in + out)``."""
        rows = x.numel() // self.base.in_features
        return float(rows * self.A.shape[0] * (self.base.in_features + self.base.out_features))

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the adapter folded in (for export and INT8)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * self.B @ self.A)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def merge_lora(module: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` inside ``module`` (in place) by its merged ``nn.Linear``."""
    for name, child in module.named_children():
        if isinstance(child, LoRALinear):
            setattr(module, name, child.merged())
        else:
            merge_lora(child)
    return module


class GenerationNet(nn.Module):
    """One network for every generation (see the module docstring)."""

    task = "classification"

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        quantum: Mapping | None = None,
        backend: Mapping | None = None,
        twin: bool = False,
        hidden: int = 16,
        threshold: str = "hard",
        tau: float = 0.1,
        temperature: float = 0.05,
        lora: Mapping | None = None,
        init: str = "uniform",
        n_qubits: int | None = None,
    ) -> None:
        super().__init__()
        ansatz = Ansatz.from_config(quantum) if quantum else None
        width = ansatz.n_qubits if ansatz else int(n_qubits or 4)
        self.encoder = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            Threshold(threshold, tau, temperature),
            nn.Linear(hidden, width),
            AngleScale(),
        )
        if ansatz is None:
            self.classical = nn.Tanh()
            n_mid = width
        elif twin:
            self.classical = MatchedBlock(width, ansatz.n_out, ansatz.n_weights)
            n_mid = ansatz.n_out
        else:
            if backend is None:
                raise ValueError("a quantum generation needs a backend")
            self.quantum = QuantumLayer.from_config(ansatz, backend, init=init)
            n_mid = ansatz.n_out
        self.head = nn.Linear(n_mid, n_classes)
        if lora:
            for seq, idx in ((self.encoder, 0), (self.encoder, 3)):
                seq[idx] = LoRALinear(seq[idx], int(lora.get("rank", 4)), float(lora.get("alpha", 8.0)))
            self.head = LoRALinear(self.head, int(lora.get("rank", 4)), float(lora.get("alpha", 8.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        mid = self.quantum(h) if hasattr(self, "quantum") else self.classical(h)
        return self.head(mid)

    def extra_metrics(self) -> dict[str, float]:
        """``sparsity/activations`` (and the soft threshold's τ and T) for the task to log."""
        th = self.encoder[2]
        out = {} if th.last_sparsity is None else {"sparsity/activations": th.last_sparsity}
        if th.mode == "soft":
            out.update(
                {
                    "threshold/tau": float(th.tau.detach()),
                    "threshold/temperature": float(th.log_temperature.detach().exp()),
                }
            )
        return out
