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


def _exp_arg_limit(dtype: type) -> float:
    """An ``x`` just below the largest with ``exp(-x)`` a normal number of ``dtype`` (87.2 for
    float32; the margin keeps rounding of ``x`` itself from crossing the limit).

    ``exp`` takes a ~13x slower path for results in the subnormal range, so heatmap values
    below about the smallest normal number (1.3e-38 in float32) are raised to it: the
    error is at most that number, far below any tolerance, and no value of a present channel
    is ever 0.
    """
    return float(-np.log(np.finfo(dtype).tiny)) - 0.1


def line_heatmap(plane: Plane, other: Plane | Sequence[Plane], *, sigma_mm: float | None = None,
                 sigma_px: float | None = None,
                 tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG,
                 dtype: type = np.float32, out: np.ndarray | None = None) -> np.ndarray | None:
    """Heatmap on ``plane``'s pixel grid peaking (value 1) on its intersection with ``other``.

    ``other`` may be one plane or several (e.g. every slice of a SAX stack cutting a
    long-axis view): the heatmap is then the maximum over their lines.
    ``sigma_mm`` is the Gaussian width in mm of in-plane distance (exact for anisotropic
    pixels too); ``sigma_px`` in pixel-index units. ``out`` (``plane.shape``, ``dtype``)
    receives the result when given (it is left untouched when every plane is parallel).

    Returns:
        float array of ``plane.shape``, or ``None`` when every plane is parallel to ``plane``.
    """
    others = [other] if isinstance(other, Plane) else list(other)
    if (sigma_mm is None) == (sigma_px is None):
        raise ValueError("give exactly one of sigma_mm and sigma_px")
    sigma = float(sigma_mm if sigma_mm is not None else sigma_px)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    dtype = np.dtype(dtype).type
    di, dj = plane.spacing
    rows, cols = plane.shape
    if out is not None and (out.shape != (rows, cols) or out.dtype != dtype):
        raise ValueError(f"out must be {dtype.__name__} of shape {(rows, cols)}")
    ceiling = dtype(_exp_arg_limit(dtype))
    half = np.sqrt(0.5)
    # Pixel indices relative to the centre: the two terms of z stay small near the line,
    # so their float32 sum loses little to cancellation (max error ~1e-6 vs float64).
    ic, jc = (rows - 1) / 2, (cols - 1) / 2
    ii = np.arange(rows, dtype=np.float64) - ic
    jj = np.arange(cols, dtype=np.float64) - jc
    result: np.ndarray | None = None
    scratch: np.ndarray | None = None
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
        k *= half  # exp(-z**2 / 2) = exp(-(z / sqrt 2)**2)
        # z is separable: a row term plus a column term (each computed in float64).
        centre = line.a * ic + line.b * jc + line.c
        col_term = ((line.a * k) * ii + centre * k).astype(dtype)[:, None]
        row_term = ((line.b * k) * jj).astype(dtype)[None, :]
        if result is None:
            buf = out if out is not None else np.empty((rows, cols), dtype)
        else:
            if scratch is None:
                scratch = np.empty((rows, cols), dtype)
            buf = scratch
        np.copyto(buf, row_term)  # then add the column term: 2x faster than one broadcast add
        np.add(buf, col_term, out=buf)
        np.square(buf, out=buf)
        np.minimum(buf, ceiling, out=buf)
        np.negative(buf, out=buf)
        np.exp(buf, out=buf)
        if result is None:
            result = buf
        else:
            np.maximum(result, buf, out=result)
    return result


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
                         tolerance_deg=tolerance_deg, out=heat[c])
        present[c] = h is not None
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
