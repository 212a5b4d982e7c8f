"""Conv1D building blocks and the classical Conv1D baseline for windows of signals or rows.

A block is ``Conv1d → norm → ReLU → MaxPool``. Inputs are ``[B, channels, time]`` windows,
or ``[B, features]`` rows, which are read as one channel over the features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

NORMS = ("group", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``group`` (GroupNorm with 4 groups where they divide the channels: no running
    statistics, so nothing client-specific to average in federated training), ``batch``
    or ``none``."""
    if kind == "group":
        return nn.GroupNorm(4 if channels % 4 == 0 else 1, channels)
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"model.norm must be one of {', '.join(NORMS)}, got {kind!r}")


class AsSequence(nn.Module):
    """``[B, F]`` rows → ``[B, 1, F]``; ``[B, C, T]`` windows pass unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1) if x.dim() == 2 else x


class ConvBlock(nn.Sequential):
    """``Conv1d(k, same padding) → norm → ReLU → MaxPool1d(pool, ceil_mode)``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 5, pool: int = 2, norm: str = "group") -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
            norm_layer(norm, c_out),
            nn.ReLU(),
            nn.MaxPool1d(pool, ceil_mode=True) if pool > 1 else nn.Identity(),
        )


def conv_stack(
    n_features: int, input_length: int | None, channels: Sequence[int], kernel_size: int, pool: int, norm: str
) -> list[nn.Module]:
    """The blocks of a Conv1D feature extractor; the first also reads rows as one channel."""
    if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
        raise ValueError(f"model.channels must be a non-empty list of positive ints, got {list(channels)}")
    if not isinstance(kernel_size, int) or kernel_size < 1 or not isinstance(pool, int) or pool < 1:
        raise ValueError(f"model.kernel_size and model.pool must be positive ints, got {kernel_size}, {pool}")
    c_in = n_features if input_length is not None else 1
    blocks: list[nn.Module] = []
    for i, c in enumerate(channels):
        block = ConvBlock(c_in, c, kernel_size, pool, norm)
        blocks.append(nn.Sequential(AsSequence(), block) if i == 0 else block)
        c_in = c
    return blocks


class Conv1DBaseline(nn.Module):
    """The classical baseline: Conv1D blocks → global average pooling → MLP head.

    ``input_length`` is set from the data (``None`` for tabular rows, read as one channel).
    """

    task = ("classification", "multilabel")

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        input_length: int | None = None,
        channels: Sequence[int] = (16, 32, 32),
        kernel_size: int = 5,
        pool: int = 2,
        norm: str = "group",
        hidden: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_stack(n_features, input_length, channels, kernel_size, pool, norm),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(channels[-1], hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
