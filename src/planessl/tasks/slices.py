"""Pretext 2: relative slice location in a parallel stack (0 base, 1 apex)."""

from __future__ import annotations

import torch

from planessl.tasks.losses import masked_mse


def slice_loss(pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Masked MSE between predicted (B, 1) and target locations (images not from a stack
    of two or more slices are masked)."""
    return masked_mse(pred, batch["slice"], batch["slice_mask"])


def slice_abs_errors(pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Absolute errors of the images that have a target (1D)."""
    keep = batch["slice_mask"][:, 0] > 0
    return (pred.detach()[keep, 0].float() - batch["slice"][keep, 0]).abs()
