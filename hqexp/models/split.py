"""``split_conv1d``: a Conv1D network made of stages, so split learning can cut it anywhere.

Stages, in order: ``block1 … blockN`` (Conv1D blocks), ``encode`` (global average pooling
→ linear → π·tanh angles), ``server_head`` (a :class:`~hqexp.quantum.QuantumLayer`, or with
``server_head=classical`` its parameter-matched classical twin) and ``classifier``.
``federation.cut = k`` gives the client ``block1 … blockk``; the server the rest. With
``federation=none`` the same network trains end to end, so every comparison is like for like.

Any model can be split the same way by defining :meth:`stages` (an ordered list of
``(name, module)`` whose composition is ``forward``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from hqexp.models.baselines import MatchedBlock
from hqexp.models.conv1d import conv_stack
from hqexp.models.vqc import AngleScale
from hqexp.quantum import Ansatz, QuantumLayer

SERVER_HEADS = ("quantum", "classical")


class SplitConv1D(nn.Module):
    """Conv1D client blocks → server blocks → quantum (or classical twin) head → classifier."""

    task = ("classification", "multilabel")

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        quantum: Mapping,
        backend: Mapping | None = None,
        input_length: int | None = None,
        channels: Sequence[int] = (16, 32, 32),
        kernel_size: int = 5,
        pool: int = 2,
        norm: str = "group",
        server_head: str = "quantum",
        init: str = "uniform",
    ) -> None:
        super().__init__()
        if server_head not in SERVER_HEADS:
            raise ValueError(f"model.server_head must be one of {', '.join(SERVER_HEADS)}, got {server_head!r}")
        ansatz = Ansatz.from_config(quantum)
        self.server_head_kind = server_head
        self.blocks = nn.ModuleList(conv_stack(n_features, input_length, channels, kernel_size, pool, norm))
        self.encode = nn.Sequential(
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(channels[-1], ansatz.n_qubits), AngleScale()
        )
        if server_head == "quantum":
            if backend is None:
                raise ValueError("model.server_head=quantum needs a backend")
            self.server_head = QuantumLayer.from_config(ansatz, backend, init=init)
        else:
            self.server_head = MatchedBlock(ansatz.n_qubits, ansatz.n_out, ansatz.n_weights)
        self.classifier = nn.Linear(ansatz.n_out, n_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """The network as an ordered list of ``(name, module)``; ``forward`` is their composition."""
        return [
            *((f"block{i + 1}", b) for i, b in enumerate(self.blocks)),
            ("encode", self.encode),
            ("server_head", self.server_head),
            ("classifier", self.classifier),
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _, stage in self.stages():
            x = stage(x)
        return x
