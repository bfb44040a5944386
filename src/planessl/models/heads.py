"""Task heads on top of the backbone; their parameters are named ``heads.*`` in the model
so that transfer can keep or drop them by prefix."""

from __future__ import annotations

import torch
from torch import nn


class LineHead(nn.Module):
    """Decoder features (B, F, H, W) -> one line-heatmap channel per target view type
    (B, C, H, W), by a 1x1 convolution (as the reference's last layer)."""

    def __init__(self, in_channels: int, n_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, n_channels, kernel_size=1)

    def forward(self, decoder_features: torch.Tensor) -> torch.Tensor:
        return self.conv(decoder_features)


class SliceHead(nn.Module):
    """Deepest encoder features (B, F, h, w) -> global average pool -> MLP -> (B, 1)
    relative slice location."""

    def __init__(self, in_channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(in_channels, hidden),
                                 nn.LeakyReLU(0.1, inplace=True), nn.Linear(hidden, 1))

    def forward(self, deepest: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pool(deepest))
