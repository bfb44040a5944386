"""Pretext 1: intersecting-line heatmaps (one channel per target view type)."""

from __future__ import annotations

import numpy as np
import torch

from planessl.evaluation.lines import batch_line_errors
from planessl.tasks.losses import masked_mse


def line_loss(pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Masked MSE between predicted (B, C, H, W) and target heatmaps."""
    return masked_mse(pred, batch["lines"], batch["line_mask"])


def line_metrics(pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """Angle (deg) and distance (mm) errors of lines extracted from the predictions."""
    return batch_line_errors(pred.detach().float().cpu().numpy(),
                             batch["line_abc"].cpu().numpy(), batch["line_mask"].cpu().numpy(),
                             batch["spacing"].cpu().numpy())


def summarise(values: dict[str, list[float]]) -> dict[str, float]:
    """Means of :func:`line_metrics` lists (NaN when empty)."""
    return {k: float(np.mean(v)) if v else float("nan") for k, v in values.items()}
