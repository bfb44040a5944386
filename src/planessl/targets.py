"""Pretext targets computed from plane geometry (numpy only).

* Line heatmaps: ``exp(-d**2 / (2 sigma**2))`` with ``d`` the in-plane distance of each pixel
  centre of the input image from the line where another view's plane cuts it; the peak is
  exactly 1 on the line. One channel per target view type, with a presence mask: a view the
  study lacks (or one parallel to the input) is masked out of the loss, never a zero target.
* Slice-location targets: relative position of each slice of a parallel stack, 0 at the
  base and 1 at the apex (see :func:`planessl.geometry.stack_geometry`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from planessl.geometry import (DEFAULT_PARALLEL_TOLERANCE_DEG, Plane, intersection_line,
                               stack_geometry, CARDIAC_APEX_DIRECTION)


def line_heatmap(plane: Plane, other: Plane | Sequence[Plane], *, sigma_mm: float | None = None,
                 sigma_px: float | None = None,
                 tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG,
                 dtype: type = np.float32) -> np.ndarray | None:
    """Heatmap on ``plane``'s pixel grid peaking (value 1) on its intersection with ``other``.

    ``other`` may be one plane or several (e.g. every slice of a SAX stack cutting a
    long-axis view): the heatmap is then the maximum over their lines.
    ``sigma_mm`` is the Gaussian width in mm of in-plane distance (exact for anisotropic
    pixels too); ``sigma_px`` in pixel-index units.

    Returns:
        float array of ``plane.shape``, or ``None`` when every plane is parallel to ``plane``.
    """
    others = [other] if isinstance(other, Plane) else list(other)
    if (sigma_mm is None) == (sigma_px is None):
        raise ValueError("give exactly one of sigma_mm and sigma_px")
    sigma = float(sigma_mm if sigma_mm is not None else sigma_px)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    di, dj = plane.spacing
    rows, cols = plane.shape
    out: np.ndarray | None = None
    ii = np.arange(rows, dtype=dtype)[:, None]
    jj = np.arange(cols, dtype=dtype)[None, :]
    for b in others:
        line = intersection_line(plane, b, tolerance_deg)
        if line is None:
            continue
        # z = d / sigma. a*i + b*j + c is the distance in pixel-index units; in mm it is
        # (a*i + b*j + c) / hypot(a/di, b/dj), exact for anisotropic pixels too.
        if sigma_mm is not None:
            k = 1.0 / (sigma * np.hypot(line.a / di, line.b / dj))
        else:
            k = 1.0 / sigma
        z = np.asarray(line.a * k, dtype) * ii + (np.asarray(line.c * k, dtype)
                                                 + np.asarray(line.b * k, dtype) * jj)
        np.square(z, out=z)
        z *= dtype(-0.5)
        np.exp(z, out=z)
        out = z if out is None else np.maximum(out, z, out=out)
    return out


def line_targets(plane: Plane, views: Mapping[str, Plane | Sequence[Plane] | None],
                 channels: Sequence[str], *, sigma_mm: float | None = None,
                 sigma_px: float | None = None,
                 tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Multi-channel line heatmaps for one input image.

    Args:
        plane: the input image's plane.
        views: per view type (e.g. ``"2ch"``), the plane(s) of that view in the same study;
            missing or ``None`` when the study lacks it.
        channels: the view types, one output channel each, in order.

    Returns:
        ``(heatmaps, present)``: float32 ``(C, rows, cols)`` and bool ``(C,)``; a channel
        whose view is missing or parallel to the input is all zeros with ``present=False``.
    """
    heat = np.zeros((len(channels),) + tuple(plane.shape), dtype=np.float32)
    present = np.zeros(len(channels), dtype=bool)
    for c, name in enumerate(channels):
        other = views.get(name)
        if other is None or (not isinstance(other, Plane) and len(other) == 0):
            continue
        h = line_heatmap(plane, other, sigma_mm=sigma_mm, sigma_px=sigma_px,
                         tolerance_deg=tolerance_deg)
        if h is not None:
            heat[c] = h
            present[c] = True
    return heat, present


def sigma_from_thickness(plane: Plane, other: Plane, factor: float = 0.5) -> float:
    """The view-planning convention: sigma = factor x (other view's slice thickness), in mm.

    Divide by the pixel spacing for sigma in pixels. Raises when the thickness is unknown.
    """
    if other.thickness is None:
        raise ValueError("the other view's slice thickness is unknown")
    return factor * other.thickness


def slice_location_targets(planes: Sequence[Plane],
                           toward: np.ndarray | None = CARDIAC_APEX_DIRECTION) -> np.ndarray | None:
    """Relative location in [0, 1] of each slice of a parallel stack (input order):
    0 at the base, 1 at the apex. ``None`` for a stack of one slice (no target)."""
    if len(planes) < 2:
        return None
    geo = stack_geometry(planes, toward=toward)
    return None if geo.relative is None else geo.relative.astype(np.float32)
