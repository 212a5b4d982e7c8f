"""The ECG dual-path classifier (spiking path + quantum path + gated fusion), its ablations,
and two classical CNN baselines.

``snn_vqc_ecg``: logits = (1 − α)·spiking + α·quantum, α = sigmoid(a) learnable.

* Spiking path: a three-stage temporal pyramid. Each stage is a low-bit 1-D
  convolution (``weight_bits``: 1 = binary with per-channel scale, 2, 8, or 32 =
  float; straight-through gradients), batch norm, average pooling and LIF neurons.
  The firing rate of every channel of every stage (the pyramid) feeds a linear head.
* Quantum path: a shared per-lead convolution summarises each lead; a linear map turns
  the 12 lead summaries into 8 rotation angles (π·tanh), and an attention over qubit
  pairs (queries and keys from per-qubit embeddings) sets the angle of a controlled
  rotation on every pair (the ansatz's learned-entanglement block); 8 qubits, 3 layers.

``snn_ecg`` / ``vqc_ecg`` keep one path; ``ecg_cnn_small`` is a plain CNN under 50k
parameters; ``fcn_wang`` is the fully convolutional network of Wang et al. (2017) that
the PTB-XL benchmark (Strodthoff et al. 2021) reports, as a reference at ~280k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from hqexp.models.snn import LIF, QuantConv1d
from hqexp.quantum import Ansatz, QuantumLayer

PATHS = ("snn", "quantum")


class SpikingPyramid(nn.Module):
    """Three conv → BN → pool → LIF stages; returns per-channel firing rates of all stages."""

    def __init__(
        self,
        n_leads: int,
        channels: Sequence[int] = (16, 32, 48),
        kernels: Sequence[int] = (9, 5, 3),
        strides: Sequence[int] = (4, 2, 2),
        weight_bits: int = 1,
        beta: float = 0.9,
    ) -> None:
        super().__init__()
        stages, c_in = [], n_leads
        # Time steps of the LIF loops set the cost: 1000 samples -> 125, 31, 8 steps.
        for c, k, st in zip(channels, kernels, strides):
            stages.append(
                nn.ModuleDict(
                    {
                        "conv": QuantConv1d(c_in, c, k, stride=st, padding=k // 2, bias=False, weight_bits=weight_bits),
                        "bn": nn.BatchNorm1d(c),
                        "lif": LIF(c, beta=beta),
                    }
                )
            )
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AvgPool1d(2)
        self.n_out = sum(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rates = []
        for st in self.stages:
            x = st["lif"](self.pool(st["bn"](st["conv"](x))))
            rates.append(x.mean(-1))
        return torch.cat(rates, dim=-1)

    def spike_rate(self) -> float | None:
        r = [st["lif"].last_rate for st in self.stages if st["lif"].last_rate is not None]
        return float(torch.stack(r).mean()) if r else None


class QuantumPath(nn.Module):
    """Lead summaries → qubit angles + pair-attention angles → QuantumLayer → ⟨Z_i⟩."""

    def __init__(
        self,
        n_leads: int,
        quantum: Mapping,
        backend: Mapping,
        lead_channels: int = 4,
        attn_dim: int = 8,
        init: str = "uniform",
    ) -> None:
        super().__init__()
        ansatz = Ansatz.from_config(quantum)
        if not ansatz.pair_gate:
            raise ValueError("the ECG quantum path needs model.quantum.pair_gate (crx, cry or crz)")
        n = ansatz.n_qubits
        self.lead_conv = nn.Sequential(
            nn.Conv1d(1, lead_channels, 7, stride=4, padding=3), nn.ReLU(), nn.AdaptiveAvgPool1d(1)
        )
        feat = n_leads * lead_channels
        self.angles = nn.Linear(feat, n)
        self.embed = nn.Linear(feat, n * attn_dim)
        self.q, self.k = nn.Linear(attn_dim, attn_dim, bias=False), nn.Linear(attn_dim, attn_dim, bias=False)
        iu = torch.triu_indices(n, n, offset=1)  # i < j, the ansatz's pairs() order
        self.register_buffer("pair_i", iu[0], persistent=False)
        self.register_buffer("pair_j", iu[1], persistent=False)
        self.n_qubits, self.attn_dim = n, attn_dim
        self.quantum = QuantumLayer.from_config(ansatz, backend, init=init)
        self.n_out = ansatz.n_out
        self.last_strength: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, leads, T = x.shape
        f = self.lead_conv(x.reshape(B * leads, 1, T)).reshape(B, -1)
        theta = math.pi * torch.tanh(self.angles(f))
        h = self.embed(f).view(B, self.n_qubits, self.attn_dim)
        scores = torch.einsum("bie,bje->bij", self.q(h), self.k(h)) / math.sqrt(self.attn_dim)
        strength = torch.sigmoid(scores[:, self.pair_i, self.pair_j])  # [B, n_pairs] in (0, 1)
        self.last_strength = strength.detach().mean(0)
        return self.quantum(torch.cat([theta, math.pi * strength], dim=-1))

    def pair_matrix(self) -> torch.Tensor | None:
        """Mean pair strength of the last batch as an ``[n, n]`` matrix (upper triangle)."""
        if self.last_strength is None:
            return None
        m = torch.zeros(self.n_qubits, self.n_qubits)
        m[self.pair_i.cpu(), self.pair_j.cpu()] = self.last_strength.float().cpu()
        return m


class ECGDualPath(nn.Module):
    """Spiking and/or quantum path with gated fusion (``paths`` picks the ablation)."""

    task = "multilabel"

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        quantum: Mapping | None = None,
        backend: Mapping | None = None,
        paths: Sequence[str] = PATHS,
        weight_bits: int = 1,
        channels: Sequence[int] = (16, 32, 48),
        lead_channels: int = 4,
        attn_dim: int = 8,
        alpha_init: float = 0.5,
        init: str = "uniform",
    ) -> None:
        super().__init__()
        paths = tuple(paths)
        if not paths or any(p not in PATHS for p in paths):
            raise ValueError(f"model.paths must be a non-empty subset of {list(PATHS)}, got {list(paths)}")
        self.paths = paths
        if "snn" in paths:
            self.snn = SpikingPyramid(n_features, channels, weight_bits=weight_bits)
            self.snn_head = nn.Linear(self.snn.n_out, n_classes)
        if "quantum" in paths:
            if quantum is None or backend is None:
                raise ValueError("the quantum path needs model.quantum and a backend")
            self.qpath = QuantumPath(n_features, quantum, backend, lead_channels, attn_dim, init)
            self.q_head = nn.Linear(self.qpath.n_out, n_classes)
        if len(paths) == 2:
            if not 0 < alpha_init < 1:
                raise ValueError(f"model.alpha_init must be in (0, 1), got {alpha_init}")
            self.alpha_logit = nn.Parameter(torch.tensor(math.log(alpha_init / (1 - alpha_init))))

    @property
    def alpha(self) -> torch.Tensor | None:
        return torch.sigmoid(self.alpha_logit) if len(self.paths) == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = {}
        if "snn" in self.paths:
            outs["snn"] = self.snn_head(self.snn(x))
        if "quantum" in self.paths:
            outs["quantum"] = self.q_head(self.qpath(x))
        if len(outs) == 1:
            return next(iter(outs.values()))
        a = self.alpha
        return (1 - a) * outs["snn"] + a * outs["quantum"]

    def extra_metrics(self) -> dict[str, float]:
        """Logged by the task each training step: ``fusion/alpha``, ``snn/spike_rate``."""
        out = {}
        if self.alpha is not None:
            out["fusion/alpha"] = float(self.alpha.detach())
        if "snn" in self.paths and self.snn.spike_rate() is not None:
            out["snn/spike_rate"] = self.snn.spike_rate()
        return out

    def figures(self) -> dict:
        """``plots/pair_attention.png``: learned pair strengths of the quantum path."""
        if "quantum" not in self.paths or self.qpath.pair_matrix() is None:
            return {}
        from hqexp.tracking import plots

        return {
            "plots/pair_attention.png": plots.heatmap(
                self.qpath.pair_matrix().numpy(), "learned pair strength (test)", "target qubit", "control qubit"
            )
        }


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()
    )


class ECGCNNSmall(nn.Module):
    """A classical CNN under 50k parameters (the size class of the dual path)."""

    task = "multilabel"

    def __init__(self, n_features: int, n_classes: int, channels: Sequence[int] = (32, 48, 64)) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            _conv_bn(n_features, c1, 7, 2),
            nn.MaxPool1d(2),
            _conv_bn(c1, c2, 5, 2),
            nn.MaxPool1d(2),
            _conv_bn(c2, c3, 3),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(c3, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FCNWang(nn.Module):
    """Wang et al. (2017) FCN: 128-k8, 256-k5, 128-k3 conv blocks, global average pooling."""

    task = "multilabel"

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(n_features, 128, 8),
            _conv_bn(128, 256, 5),
            _conv_bn(256, 128, 3),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(128, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
