"""Lift 2D lines into 3D and fit the imaging plane that contains them.

A line ``a*i + b*j + c = 0`` in the pixel indices of an image is a line in space: the
image's :class:`~planessl.geometry.Plane` maps it to world coordinates (LPS, mm). The part
of it that the image shows is its *segment*: where it crosses the field of view
``[-0.5, rows-0.5] x [-0.5, cols-0.5]``. A target plane is fitted to the segments of at
least two lines.

Fit (total least squares over the segments). The plane minimises the mean squared distance
of the points of the segments, each segment weighted by its line's weight (1 by default)
whatever its length. The point set is continuous, so no sampling is needed: a segment from
``e0`` to ``e1`` has mean ``m = (e0 + e1) / 2`` and second moment ``(e1 - e0)(e1 - e0)^T / 12``
about it. With ``S`` the weighted scatter matrix of all segments about their weighted
centroid ``m̄``, the plane passes through ``m̄`` and its normal is the eigenvector of the
smallest eigenvalue of ``S``. The eigenvalues ``λ0 <= λ1 <= λ2`` give:

* ``λ0``: mean squared distance of the segments from the plane (``residual_rms_mm``, computed
  from the end points; 0 for exact, coplanar lines);
* ``spread_mm = sqrt(λ1)``: rms extent of the segments across their main direction within
  the plane. Lines that lie (nearly) on one line in space leave the plane free to turn
  about it: a fit with ``spread_mm < min_spread_mm`` is refused. Distinct parallel lines
  (the lines of one target on the slices of a SAX stack) do determine the plane; lines
  crossing at a small angle do not (spread ~ length x sin(angle) / 5).

Exact lines of one plane give it back to rounding error; noise in the lines moves the plane
smoothly (tilt ~ noise / spread).

Outliers (:func:`fit_plane_robust`). One grossly wrong line (a predicted line on the wrong
structure) spoils the least-squares plane of all. While the fit's residual exceeds
``outlier_rms_mm``, the line whose removal leaves the smallest residual is dropped (each
candidate is judged by the plane fitted *without* it, so an outlier cannot hide by pulling
the plane towards itself), as long as the remaining lines still determine a plane (at least
two, spread >= ``min_spread_mm``) and at most half the lines go (``max_dropped_fraction``:
when most lines disagree with each other there is no consensus to trust, and the refusal
rules decide). The dropped lines are reported with their distance from
the final plane; the refusal rules then apply to the lines kept.

Output: the plane as a :class:`~planessl.geometry.Plane` and as DICOM
ImagePositionPatient / ImageOrientationPatient. Its field-of-view centre is ``m̄`` (the
point of the plane closest to the centroid of the segments: the plane goes through it);
its row direction is a reference plane's row direction projected into the plane (the
normal's sign is chosen so the column direction also follows the reference's), so the
proposed image is displayed like the reference; shape and spacing default to the
reference's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from planessl.geometry import Line, Plane, line_endpoints

#: Minimum rms extent (mm) of the lines across their main direction for a plane to be fitted.
DEFAULT_MIN_SPREAD_MM = 10.0
#: Largest rms distance (mm) of the lines from the fitted plane that ``planessl plan`` accepts.
DEFAULT_MAX_RESIDUAL_RMS_MM = 10.0
#: Residual (rms, mm) above which :func:`fit_plane_robust` drops the worst line.
DEFAULT_OUTLIER_RMS_MM = 5.0


@dataclass(frozen=True, eq=False)
class Line3D:
    """A line in space with the segment of it that an image shows.

    Attributes:
        point: point of the line closest to the image's field-of-view centre (LPS, mm).
        direction: unit direction.
        segment: ``(e0, e1)`` world end points where the line crosses the image's field of
            view (mm).
        source: name of the image it was drawn on.
        weight: relative weight in the fit (> 0).
    """

    point: np.ndarray
    direction: np.ndarray
    segment: tuple[np.ndarray, np.ndarray]
    source: str = ""
    weight: float = 1.0

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(self.segment[1] - self.segment[0]))

    def distance_to(self, plane_point: np.ndarray, normal: np.ndarray) -> float:
        """Largest distance (mm) of the segment's end points from a plane."""
        return max(abs(float(normal @ (e - plane_point))) for e in self.segment)


def _as_abc(line: Line | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(line, Line):
        return float(line.a), float(line.b), float(line.c)
    a, b, c = (float(v) for v in line)
    return a, b, c


def lift_line(plane: Plane, line: Line | Sequence[float], source: str = "",
              weight: float = 1.0) -> Line3D | None:
    """The 3D line of ``a*i + b*j + c = 0`` (``plane``'s pixel indices; any scale of
    ``a, b, c``), or ``None`` when it misses the field of view or is not a line."""
    a, b, c = _as_abc(line)
    norm = math.hypot(a, b)
    if not (np.isfinite(norm) and np.isfinite(c)) or norm < 1e-12:
        return None
    ends = line_endpoints(Line(a / norm, b / norm, c / norm, 90.0), plane.shape)
    if ends is None:
        return None
    e0 = plane.pixel_to_world(*ends[0])
    e1 = plane.pixel_to_world(*ends[1])
    length = float(np.linalg.norm(e1 - e0))
    if length < 1e-9:
        return None
    d = (e1 - e0) / length
    centre = plane.centre_world()
    point = e0 + float((centre - e0) @ d) * d
    return Line3D(point=point, direction=d, segment=(e0, e1), source=source, weight=float(weight))


def line_in_pixels(line: Line3D, plane: Plane) -> tuple[float, float, float]:
    """``(a, b, c)`` (``a**2 + b**2 = 1``) of a 3D line in the pixel indices of a plane that
    contains it (the line is projected onto the plane)."""
    i0, j0, _ = plane.world_to_pixel(line.point)
    i1, j1, _ = plane.world_to_pixel(line.point + 100.0 * line.direction)
    ti, tj = float(i1 - i0), float(j1 - j0)
    n = math.hypot(ti, tj)
    a, b = -tj / n, ti / n
    return a, b, -(a * float(i0) + b * float(j0))


def _angle_between_lines_deg(u: np.ndarray, v: np.ndarray) -> float:
    return math.degrees(math.atan2(float(np.linalg.norm(np.cross(u, v))), abs(float(u @ v))))


@dataclass
class PlaneFit:
    """A fitted target plane, or why none was fitted.

    Attributes:
        ok: a plane was fitted.
        reason: why not (``None`` when ``ok``).
        n_lines: lines used.
        sources: names of the images the lines come from.
        plane: the proposed plane (centre of its field of view at ``centre``); also set,
            with ``ok`` false, for a plane rejected for its residual.
        normal, centre: unit normal and centre point (LPS, mm).
        residual_rms_mm: rms distance of the line segments from the plane.
        max_residual_mm: largest distance of a segment end point from the plane.
        spread_mm: rms extent of the segments across their main direction (see the module).
        max_line_angle_deg: largest angle between two of the lines (0 for parallel lines).
        dropped: names of the images whose lines were dropped as outliers
            (:func:`fit_plane_robust`), in the order they were dropped.
        dropped_residual_mm: rms distance (mm) of each dropped line from the final plane.
    """

    ok: bool
    reason: str | None = None
    n_lines: int = 0
    sources: list[str] = field(default_factory=list)
    plane: Plane | None = None
    normal: np.ndarray | None = None
    centre: np.ndarray | None = None
    residual_rms_mm: float | None = None
    max_residual_mm: float | None = None
    spread_mm: float | None = None
    max_line_angle_deg: float | None = None
    dropped: list[str] = field(default_factory=list)
    dropped_residual_mm: list[float] = field(default_factory=list)

    @property
    def image_position(self) -> list[float] | None:
        """DICOM ImagePositionPatient: centre of the proposed plane's first pixel (mm);
        ``None`` unless ``ok``."""
        return None if not self.ok or self.plane is None else [float(x) for x in self.plane.origin]

    @property
    def image_orientation(self) -> list[float] | None:
        """DICOM ImageOrientationPatient: row direction, then column direction; ``None``
        unless ``ok``."""
        if not self.ok or self.plane is None:
            return None
        return [float(x) for x in self.plane.row_dir] + [float(x) for x in self.plane.col_dir]

    def to_dict(self) -> dict:
        f = lambda v: None if v is None else [float(x) for x in v]  # noqa: E731
        out = {"ok": self.ok, "reason": self.reason, "n_lines": self.n_lines,
               "sources": list(self.sources),
               "residual_rms_mm": self.residual_rms_mm, "max_residual_mm": self.max_residual_mm,
               "spread_mm": self.spread_mm, "max_line_angle_deg": self.max_line_angle_deg,
               "dropped": [{"image": name, "residual_rms_mm": float(r)} for name, r
                           in zip(self.dropped, self.dropped_residual_mm)],
               "normal": f(self.normal), "centre": f(self.centre),
               "ImagePositionPatient": self.image_position,
               "ImageOrientationPatient": self.image_orientation}
        if self.plane is not None:
            out["PixelSpacing"] = list(self.plane.spacing)
            out["Rows"], out["Columns"] = self.plane.shape
        return out


def _in_plane_axes(normal: np.ndarray, reference: Plane | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, col, normal)``: right-handed (row x col = normal), row following the
    reference's row direction (its column direction when the row is along the normal)."""
    n = normal / np.linalg.norm(normal)
    if reference is not None:
        r = reference.row_dir - (reference.row_dir @ n) * n
        if np.linalg.norm(r) > 0.2:
            row = r / np.linalg.norm(r)
        else:  # the reference's row is nearly along the normal: follow its column instead
            cc = reference.col_dir - (reference.col_dir @ n) * n
            row = np.cross(cc / np.linalg.norm(cc), n)
        col = np.cross(n, row)
        if col @ reference.col_dir < 0:  # flip the normal so that the column follows too
            n, col = -n, -col
        return row, col, n
    axis = np.eye(3)[int(np.argmin(np.abs(n)))]
    row = axis - (axis @ n) * n
    row /= np.linalg.norm(row)
    return row, np.cross(n, row), n


def fit_plane(lines: Sequence[Line3D | None], reference: Plane | None = None,
              min_spread_mm: float = DEFAULT_MIN_SPREAD_MM,
              max_residual_rms_mm: float | None = None,
              shape: tuple[int, int] | None = None,
              spacing: tuple[float, float] | None = None) -> PlaneFit:
    """Fit the plane that contains ``lines`` (see the module for the method).

    Args:
        lines: 3D lines (``None`` entries, lines that could not be lifted, are ignored).
        reference: plane whose row direction (and column sense), shape and spacing the
            proposed plane follows; ``None``: row along the world axis most perpendicular
            to the normal, 256 x 256 pixels of 1 mm.
        min_spread_mm: refuse lines whose segments span less than this (rms, mm) across
            their main direction.
        max_residual_rms_mm: refuse lines farther than this (rms, mm) from the best plane:
            they do not lie in one plane (``None``: no limit).
        shape, spacing: of the proposed plane (default: the reference's).

    Returns:
        A :class:`PlaneFit`; ``ok`` is ``False`` with a ``reason`` when fewer than two lines
        are given, they do not determine a plane, or they do not lie in one (then the
        rejected plane is still given, for inspection).
    """
    usable = [ln for ln in lines if ln is not None]
    sources = [ln.source for ln in usable]
    n = len(usable)
    if n < 2:
        return PlaneFit(ok=False, n_lines=n, sources=sources,
                        reason=f"needs at least 2 lines, got {n}")
    w = np.array([max(float(ln.weight), 0.0) for ln in usable])
    if not w.sum() > 0:
        return PlaneFit(ok=False, n_lines=n, sources=sources, reason="all line weights are 0")
    w = w / w.sum()
    mids = np.stack([(ln.segment[0] + ln.segment[1]) / 2 for ln in usable])
    deltas = np.stack([ln.segment[1] - ln.segment[0] for ln in usable])
    centre = w @ mids
    dm = mids - centre
    scatter = (np.einsum("k,ki,kj->ij", w, dm, dm)
               + np.einsum("k,ki,kj->ij", w, deltas, deltas) / 12.0)
    evals, evecs = np.linalg.eigh(scatter)
    evals = np.clip(evals, 0.0, None)
    residual, spread = float(np.sqrt(evals[0])), float(np.sqrt(evals[1]))
    dirs = [ln.direction for ln in usable]
    max_angle = max(_angle_between_lines_deg(dirs[a], dirs[b])
                    for a in range(n) for b in range(a + 1, n))
    stats = dict(n_lines=n, sources=sources, residual_rms_mm=residual, spread_mm=spread,
                 max_line_angle_deg=max_angle)
    if spread < min_spread_mm:
        what = ("nearly parallel in space (largest angle between them %.2f deg)" % max_angle
                if max_angle < 20 else "largest angle between them %.1f deg" % max_angle)
        return PlaneFit(ok=False, reason=(
            f"the {n} lines do not determine a plane: they are {what} and lie within "
            f"{spread:.1f} mm (rms) of one line (needs >= {min_spread_mm:g} mm)"), **stats)
    row, col, normal = _in_plane_axes(evecs[:, 0], reference)
    if shape is None:
        shape = reference.shape if reference is not None else (256, 256)
    if spacing is None:
        spacing = reference.spacing if reference is not None else (1.0, 1.0)
    rows, cols = int(shape[0]), int(shape[1])
    di, dj = float(spacing[0]), float(spacing[1])
    origin = centre - (rows - 1) / 2 * di * col - (cols - 1) / 2 * dj * row
    plane = Plane(origin=origin, row_dir=row, col_dir=col, spacing=(di, dj), shape=(rows, cols),
                  thickness=reference.thickness if reference is not None else None)
    # Residuals from the end points' distances (sqrt of the eigenvalue would lose half the
    # digits): the mean square over a segment with end distances s0, s1 is
    # (s0^2 + s0 s1 + s1^2) / 3.
    s0 = np.array([float(plane.normal @ (ln.segment[0] - centre)) for ln in usable])
    s1 = np.array([float(plane.normal @ (ln.segment[1] - centre)) for ln in usable])
    stats["residual_rms_mm"] = float(np.sqrt(max(0.0, w @ ((s0 * s0 + s0 * s1 + s1 * s1) / 3))))
    max_res = float(np.max(np.maximum(np.abs(s0), np.abs(s1))))
    if max_residual_rms_mm is not None and stats["residual_rms_mm"] > max_residual_rms_mm:
        return PlaneFit(ok=False, reason=(
            f"the {n} lines do not lie in one plane: {stats['residual_rms_mm']:.1f} mm (rms) "
            f"from the best one (accepts <= {max_residual_rms_mm:g} mm)"),
            plane=plane, normal=np.array(plane.normal), centre=centre, max_residual_mm=max_res,
            **stats)
    return PlaneFit(ok=True, plane=plane, normal=np.array(plane.normal), centre=centre,
                    max_residual_mm=max_res, **stats)


def line_residual_mm(line: Line3D, point: np.ndarray, normal: np.ndarray) -> float:
    """Rms distance (mm) of a line's segment from the plane through ``point`` with unit
    ``normal`` (end-point distances s0, s1: sqrt((s0^2 + s0 s1 + s1^2) / 3))."""
    s0 = float(normal @ (line.segment[0] - point))
    s1 = float(normal @ (line.segment[1] - point))
    return math.sqrt(max(0.0, (s0 * s0 + s0 * s1 + s1 * s1) / 3.0))


def fit_plane_robust(lines: Sequence[Line3D | None], reference: Plane | None = None,
                     min_spread_mm: float = DEFAULT_MIN_SPREAD_MM,
                     max_residual_rms_mm: float | None = None,
                     outlier_rms_mm: float | None = DEFAULT_OUTLIER_RMS_MM,
                     max_dropped_fraction: float = 0.5,
                     shape: tuple[int, int] | None = None,
                     spacing: tuple[float, float] | None = None) -> PlaneFit:
    """:func:`fit_plane` after dropping outlier lines (see the module).

    Args:
        outlier_rms_mm: while the residual (rms, mm) of the lines kept exceeds this, drop
            the line whose removal leaves the smallest residual, as long as the rest still
            determine a plane; ``None`` or 0: keep every line (plain :func:`fit_plane`).
        max_dropped_fraction: drop at most this fraction of the lines (rounded down).
        others: as :func:`fit_plane` (``max_residual_rms_mm`` applies to the lines kept).

    Returns:
        The :class:`PlaneFit` of the lines kept, with ``dropped`` / ``dropped_residual_mm``
        naming the dropped lines and their distance from its plane.
    """
    kw = dict(reference=reference, min_spread_mm=min_spread_mm, shape=shape, spacing=spacing)
    kept = [ln for ln in lines if ln is not None]
    dropped: list[Line3D] = []
    budget = int(math.floor(max_dropped_fraction * len(kept) + 1e-9))
    if outlier_rms_mm:
        fit = fit_plane(kept, **kw)
        while (fit.ok and fit.residual_rms_mm is not None
               and fit.residual_rms_mm > outlier_rms_mm and len(kept) > 2
               and len(dropped) < budget):
            best = None
            for k in range(len(kept)):
                trial = fit_plane(kept[:k] + kept[k + 1:], **kw)
                if trial.ok and (best is None or trial.residual_rms_mm < best[1].residual_rms_mm):
                    best = (k, trial)
            if best is None:  # no line can go without losing the plane
                break
            dropped.append(kept.pop(best[0]))
            fit = best[1]
    fit = fit_plane(kept, max_residual_rms_mm=max_residual_rms_mm, **kw)
    fit.dropped = [ln.source for ln in dropped]
    if fit.plane is not None:
        fit.dropped_residual_mm = [line_residual_mm(ln, fit.centre, fit.normal)
                                   for ln in dropped]
    else:
        fit.dropped_residual_mm = [float("nan")] * len(dropped)
    return fit


def plane_errors(proposed: Plane | PlaneFit, acquired: Plane) -> tuple[float, float]:
    """``(angle between the normals in degrees [0, 90], distance in mm from the acquired
    plane's field-of-view centre to the proposed plane)``."""
    if isinstance(proposed, PlaneFit):
        if proposed.plane is None:
            raise ValueError("the fit has no plane")
        proposed = proposed.plane
    n = proposed.normal
    angle = math.degrees(math.atan2(float(np.linalg.norm(np.cross(n, acquired.normal))),
                                    abs(float(n @ acquired.normal))))
    dist = abs(float(n @ (acquired.centre_world() - proposed.centre_world())))
    return angle, dist
