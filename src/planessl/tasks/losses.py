"""Masked losses: targets a study lacks contribute nothing (they are not zero targets)."""

from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the present channels only.

    Args:
        pred, target: (B, C, ...) tensors.
        mask: (B, C), 1 where the channel's target exists, 0 where it is missing.

    Returns:
        The mean over the elements of present channels; 0 (still attached to the graph,
        so every parameter gets a gradient) when no channel is present.
    """
    m = mask.to(pred.dtype).reshape(mask.shape + (1,) * (pred.ndim - mask.ndim))
    weight = m.expand_as(pred)
    total = ((pred - target) ** 2 * weight).sum()
    return total / weight.sum().clamp_min(1.0)
