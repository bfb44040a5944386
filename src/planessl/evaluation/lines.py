"""Line accuracy of predicted heatmaps, as the view-planning literature reports it.

A line is extracted from a heatmap by a weighted principal-axis fit of its ridge: the pixels
above ``threshold x max`` weighted by their value, in millimetre coordinates; the line runs
along the principal axis through the weighted centroid. Errors against the true line:

* angle error: angle between the two lines, degrees in [0, 90];
* distance error: distance (mm) from the predicted line to the point of the true line that
  is closest to the image centre.

Lines are ``a*i + b*j + c = 0`` in pixel indices (as :class:`planessl.geometry.Line`).
"""

from __future__ import annotations

import numpy as np


def fit_line(heatmap: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0),
             threshold: float = 0.5) -> tuple[float, float, float] | None:
    """``(a, b, c)`` with ``a*i + b*j + c`` = signed distance in mm, or ``None`` when the
    heatmap has no positive ridge (or a ridge of fewer than 2 pixels)."""
    h = np.asarray(heatmap, dtype=np.float64)
    peak = float(h.max()) if h.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        return None
    ii, jj = np.nonzero(h >= threshold * peak)
    if len(ii) < 2:
        return None
    w = h[ii, jj]
    di, dj = spacing
    pts = np.stack([ii * di, jj * dj], axis=1)
    centre = (w[:, None] * pts).sum(0) / w.sum()
    d = pts - centre
    cov = (w[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0) / w.sum()
    _, vecs = np.linalg.eigh(cov)
    normal = vecs[:, 0]  # smallest variance: across the line
    # a*i*di + b*j*dj + c: in pixel indices the coefficients scale by the spacing.
    a_mm, b_mm = normal
    c = -float(normal @ centre)
    return float(a_mm * di), float(b_mm * dj), c


def line_in_mm(abc: tuple[float, float, float], spacing: tuple[float, float]) -> np.ndarray:
    """Line ``a*i + b*j + c = 0`` (pixel indices) as ``(n_i, n_j, c)`` in mm coordinates
    ``(x, y) = (i*di, j*dj)`` with unit normal."""
    a, b, c = (float(v) for v in abc)
    di, dj = spacing
    n = np.array([a / di, b / dj])
    norm = np.linalg.norm(n)
    return np.array([n[0] / norm, n[1] / norm, c / norm])


def line_errors(pred: tuple[float, float, float], true: tuple[float, float, float],
                shape: tuple[int, int], spacing: tuple[float, float]) -> tuple[float, float]:
    """``(angle error in degrees, distance error in mm at the image centre)``."""
    p, t = line_in_mm(pred, spacing), line_in_mm(true, spacing)
    cos = abs(float(p[:2] @ t[:2]))
    angle = float(np.degrees(np.arccos(min(1.0, cos))))
    centre = np.array([(shape[0] - 1) / 2 * spacing[0], (shape[1] - 1) / 2 * spacing[1]])
    foot = centre - (t[:2] @ centre + t[2]) * t[:2]  # closest point of the true line
    dist = abs(float(p[:2] @ foot + p[2]))
    return angle, dist


def batch_line_errors(pred: np.ndarray, true_abc: np.ndarray, mask: np.ndarray,
                      spacing: np.ndarray, threshold: float = 0.5) -> dict[str, list[float]]:
    """Errors over a batch: ``pred`` (B, C, H, W) heatmaps, ``true_abc`` (B, C, 3) (NaN:
    no single true line), ``mask`` (B, C), ``spacing`` (B, 2) mm.

    Returns lists ``angle_deg``, ``dist_mm`` (fitted lines) and ``failed`` (1.0 where no line
    could be extracted from the prediction, else 0.0)."""
    out: dict[str, list[float]] = {"angle_deg": [], "dist_mm": [], "failed": []}
    for b in range(pred.shape[0]):
        sp = (float(spacing[b, 0]), float(spacing[b, 1]))
        for c in range(pred.shape[1]):
            if mask[b, c] <= 0 or not np.all(np.isfinite(true_abc[b, c])):
                continue
            fit = fit_line(pred[b, c], sp, threshold)
            if fit is None:
                out["failed"].append(1.0)
                continue
            angle, dist = line_errors(fit, tuple(true_abc[b, c]), pred.shape[2:], sp)
            out["angle_deg"].append(angle)
            out["dist_mm"].append(dist)
            out["failed"].append(0.0)
    return out
