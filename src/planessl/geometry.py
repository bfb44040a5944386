"""Imaging-plane geometry: planes, their intersection lines, distances, slice positions.

Conventions (used everywhere in planessl; numpy only, no torch):

* World coordinates are DICOM patient coordinates, **LPS**, in **millimetres**
  (x to the patient's Left, y to Posterior, z to Superior). NIfTI affines (RAS) are
  converted once, in the readers, with :data:`RAS_TO_LPS`.
* A 2D image is ``pixels[i, j]``: ``i`` = row, ``j`` = column. Its :class:`Plane` holds the
  world position of the *centre* of pixel (0, 0), unit vectors ``row_dir`` (direction of
  increasing ``j``; DICOM ImageOrientationPatient[0:3]) and ``col_dir`` (direction of
  increasing ``i``; IOP[3:6]), the spacing ``(di, dj)`` in mm (= DICOM PixelSpacing: row
  spacing first), the shape ``(rows, cols)`` and the slice thickness in mm.
* Pixel ``(i, j)`` lies at ``origin + j*dj*row_dir + i*di*col_dir``. The field of view covers
  pixel-index coordinates ``[-0.5, rows - 0.5] x [-0.5, cols - 0.5]``.
* The line where plane B cuts plane A is, in A's pixel indices, ``a*i + b*j + c = 0`` with
  ``a = di_A (n_B . col_A)``, ``b = dj_A (n_B . row_A)``, ``c = n_B . (origin_A - origin_B)``,
  written here normalised so that ``a**2 + b**2 = 1``. It is closed form; this module
  solves nothing numerically and rasterises nothing.
* Every resampling, crop, pad, flip, rotation or zoom of an image is a new :class:`Plane`;
  targets are recomputed from it, so they stay exact under augmentation.

This geometry is written by hand because no maintained library models 2D DICOM planes
with these operations (nibabel and pydicom only carry the affines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from planessl.errors import GeometryError

#: Multiply a RAS vector (NIfTI) by this to get LPS (DICOM), and vice versa.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])

#: Direction of the cardiac long axis from base to apex in LPS: left, anterior, inferior.
CARDIAC_APEX_DIRECTION = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)

#: Planes whose normals differ by less than this angle are treated as parallel (degrees).
DEFAULT_PARALLEL_TOLERANCE_DEG = 1.0

#: Tolerance on |u| - 1 and u . v for direction cosines read from headers (DICOM decimal
#: strings carry about 6 significant digits in practice).
ORTHONORMAL_TOLERANCE = 1e-3


def _as_vec3(value: Iterable[float], name: str) -> np.ndarray:
    vec = np.asarray(value, dtype=np.float64).reshape(-1)
    if vec.shape != (3,) or not np.all(np.isfinite(vec)):
        raise GeometryError(f"{name} must be 3 finite numbers, got {value!r}")
    return vec


def orthonormalise(row_dir: Iterable[float], col_dir: Iterable[float],
                   tolerance: float = ORTHONORMAL_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Check that two direction cosines are unit and orthogonal within ``tolerance`` and
    remove the rounding left in them (symmetric Gram-Schmidt).

    Raises:
        GeometryError: when they are not orthonormal within the tolerance.
    """
    r = _as_vec3(row_dir, "row direction")
    c = _as_vec3(col_dir, "column direction")
    nr, nc, dot = np.linalg.norm(r), np.linalg.norm(c), float(r @ c)
    if abs(nr - 1) > tolerance or abs(nc - 1) > tolerance or abs(dot) > tolerance:
        raise GeometryError(
            "orientation is not orthonormal: |row|=%.6f |col|=%.6f row.col=%.6f"
            % (nr, nc, dot))
    r, c = r / nr, c / nc
    # Rotate both by half the residual angle so they become exactly orthogonal.
    d = float(r @ c)
    r2, c2 = r - 0.5 * d * c, c - 0.5 * d * r
    return r2 / np.linalg.norm(r2), c2 / np.linalg.norm(c2)


@dataclass(frozen=True, eq=False)
class Plane:
    """The geometry of one 2D image in the world (LPS, mm).

    Attributes:
        origin: world position of the centre of pixel (0, 0), mm, shape (3,).
        row_dir: unit vector of increasing column index ``j`` (DICOM IOP[0:3]).
        col_dir: unit vector of increasing row index ``i`` (DICOM IOP[3:6]).
        spacing: ``(di, dj)`` mm between rows and between columns (DICOM PixelSpacing).
        shape: ``(rows, cols)`` in pixels.
        thickness: slice thickness in mm, or ``None`` when unknown.
    """

    origin: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    spacing: tuple[float, float]
    shape: tuple[int, int]
    thickness: float | None = None
    normal: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        origin = _as_vec3(self.origin, "origin")
        row, col = orthonormalise(self.row_dir, self.col_dir)
        spacing = tuple(float(s) for s in self.spacing)
        shape = tuple(int(s) for s in self.shape)
        if len(spacing) != 2 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise GeometryError(f"pixel spacing must be two positive numbers, got {self.spacing!r}")
        if len(shape) != 2 or min(shape) < 1:
            raise GeometryError(f"image shape must be two positive integers, got {self.shape!r}")
        thickness = None if self.thickness is None else float(self.thickness)
        if thickness is not None and not (np.isfinite(thickness) and thickness > 0):
            thickness = None
        for name, value in (("origin", origin), ("row_dir", row), ("col_dir", col)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "thickness", thickness)
        normal = np.cross(row, col)
        normal.setflags(write=False)
        object.__setattr__(self, "normal", normal)

    # ------------------------------------------------------------------ mapping
    def pixel_to_world(self, i: np.ndarray | float, j: np.ndarray | float) -> np.ndarray:
        """World positions (LPS, mm) of pixel-index coordinates; returns shape (..., 3)."""
        i = np.asarray(i, dtype=np.float64)[..., None]
        j = np.asarray(j, dtype=np.float64)[..., None]
        di, dj = self.spacing
        return self.origin + j * dj * self.row_dir + i * di * self.col_dir

    def world_to_pixel(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project world points (..., 3) onto the plane.

        Returns:
            ``(i, j, offset)``: pixel-index coordinates of the projection and the signed
            distance (mm) of each point from the plane along :attr:`normal`.
        """
        d = np.asarray(points, dtype=np.float64) - self.origin
        di, dj = self.spacing
        return d @ self.col_dir / di, d @ self.row_dir / dj, d @ self.normal

    def centre_world(self) -> np.ndarray:
        """World position (mm) of the centre of the field of view."""
        return self.pixel_to_world((self.shape[0] - 1) / 2, (self.shape[1] - 1) / 2)

    # ------------------------------------------------------------ transforms
    def _with(self, **changes) -> "Plane":
        values = dict(origin=self.origin, row_dir=self.row_dir, col_dir=self.col_dir,
                      spacing=self.spacing, shape=self.shape, thickness=self.thickness)
        values.update(changes)
        return Plane(**values)

    def crop(self, i0: int, j0: int, rows: int, cols: int) -> "Plane":
        """The plane of ``pixels[i0:i0+rows, j0:j0+cols]``; negative or overhanging
        bounds mean padding."""
        return self._with(origin=self.pixel_to_world(i0, j0), shape=(rows, cols))

    def centre_crop(self, rows: int, cols: int) -> "Plane":
        """Crop (or pad) symmetrically to ``(rows, cols)``; the extra pixel of an odd
        difference goes to the end, as :func:`planessl.geometry.centre_crop_offsets` says."""
        i0, j0 = centre_crop_offsets(self.shape, (rows, cols))
        return self.crop(i0, j0, rows, cols)

    def flip_rows(self) -> "Plane":
        """The plane of ``pixels[::-1, :]`` (upside down)."""
        return self._with(origin=self.pixel_to_world(self.shape[0] - 1, 0), col_dir=-self.col_dir)

    def flip_cols(self) -> "Plane":
        """The plane of ``pixels[:, ::-1]`` (left-right mirror)."""
        return self._with(origin=self.pixel_to_world(0, self.shape[1] - 1), row_dir=-self.row_dir)

    def transpose(self) -> "Plane":
        """The plane of ``pixels.T``."""
        return self._with(row_dir=self.col_dir, col_dir=self.row_dir,
                          spacing=self.spacing[::-1], shape=self.shape[::-1])

    def resample(self, spacing: tuple[float, float], shape: tuple[int, int] | None = None) -> "Plane":
        """Same field of view corner, new pixel spacing (mm).

        The outer corner of pixel (0, 0) stays fixed, as in ``torch.nn.functional.interpolate``
        with ``align_corners=False``. Without ``shape`` the new grid covers the same extent
        (rounded to whole pixels).
        """
        di, dj = self.spacing
        ni, nj = float(spacing[0]), float(spacing[1])
        if shape is None:
            shape = (max(1, int(round(self.shape[0] * di / ni))),
                     max(1, int(round(self.shape[1] * dj / nj))))
        corner = self.pixel_to_world(-0.5, -0.5)
        origin = corner + 0.5 * ni * self.col_dir + 0.5 * nj * self.row_dir
        return self._with(origin=origin, spacing=(ni, nj), shape=shape)

    def rotate(self, angle_deg: float, centre: tuple[float, float] | None = None) -> "Plane":
        """Rotate the pixel grid in-plane by ``angle_deg`` (degrees) about ``centre``
        (pixel indices; default the image centre), keeping spacing and shape.

        The new ``col_dir`` is ``cos(t) col + sin(t) row``: content appears rotated by
        ``-angle`` in the new image. The rotation acts in millimetres, so it is a true
        rotation for anisotropic pixels too.
        """
        if centre is None:
            centre = ((self.shape[0] - 1) / 2, (self.shape[1] - 1) / 2)
        t = np.deg2rad(angle_deg)
        col = np.cos(t) * self.col_dir + np.sin(t) * self.row_dir
        row = -np.sin(t) * self.col_dir + np.cos(t) * self.row_dir
        ci, cj = centre
        di, dj = self.spacing
        pivot = self.pixel_to_world(ci, cj)
        origin = pivot - ci * di * col - cj * dj * row
        return self._with(origin=origin, row_dir=row, col_dir=col)

    def zoom(self, factor: float, centre: tuple[float, float] | None = None) -> "Plane":
        """Magnify by ``factor`` (> 1 zooms in: smaller pixels) about ``centre`` (pixel
        indices; default the image centre), keeping the shape."""
        if not factor > 0:
            raise GeometryError(f"zoom factor must be positive, got {factor}")
        if centre is None:
            centre = ((self.shape[0] - 1) / 2, (self.shape[1] - 1) / 2)
        ci, cj = centre
        di, dj = self.spacing[0] / factor, self.spacing[1] / factor
        pivot = self.pixel_to_world(ci, cj)
        origin = pivot - ci * di * self.col_dir - cj * dj * self.row_dir
        return self._with(origin=origin, spacing=(di, dj))

    def to_dict(self) -> dict:
        """JSON-friendly form (lists of floats); inverse of :meth:`from_dict`."""
        return {"origin": [float(x) for x in self.origin],
                "row_dir": [float(x) for x in self.row_dir],
                "col_dir": [float(x) for x in self.col_dir],
                "spacing": list(self.spacing), "shape": list(self.shape),
                "thickness": self.thickness}

    @classmethod
    def from_dict(cls, d: dict) -> "Plane":
        return cls(origin=d["origin"], row_dir=d["row_dir"], col_dir=d["col_dir"],
                   spacing=tuple(d["spacing"]), shape=tuple(d["shape"]),
                   thickness=d.get("thickness"))

    def __repr__(self) -> str:
        f = lambda v: "(" + ", ".join("%.3f" % x for x in v) + ")"  # noqa: E731
        return (f"Plane(origin={f(self.origin)}, row_dir={f(self.row_dir)}, "
                f"col_dir={f(self.col_dir)}, spacing={self.spacing}, shape={self.shape}, "
                f"thickness={self.thickness})")


def centre_crop_offsets(shape: Sequence[int], out_shape: Sequence[int]) -> tuple[int, int]:
    """Start indices ``(i0, j0)`` of a centred crop (negative: padding) to ``out_shape``."""
    return ((int(shape[0]) - int(out_shape[0])) // 2, (int(shape[1]) - int(out_shape[1])) // 2)


def planes_from_affine(affine: np.ndarray, shape: Sequence[int], ras: bool = True,
                       thickness: float | None = None) -> list[Plane]:
    """One :class:`Plane` per slice ``k`` of a 3D volume with a 4x4 voxel-to-world affine.

    Pixel ``(i, j)`` of slice ``k`` is voxel ``(i, j, k)`` of the array (as nibabel loads
    it). ``ras=True`` for NIfTI affines (converted to LPS here). ``thickness`` defaults to
    the length of the affine's third column (the slice spacing, mm).

    Raises:
        GeometryError: for a singular, sheared or non-finite affine.
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise GeometryError("affine must be a finite 4x4 matrix")
    m = a[:3, :3]
    if ras:
        m = RAS_TO_LPS @ m
        t = RAS_TO_LPS @ a[:3, 3]
    else:
        t = a[:3, 3]
    di, dj, dk = np.linalg.norm(m, axis=0)
    if min(di, dj) <= 0:
        raise GeometryError("affine has a zero-length in-plane axis")
    col, row = m[:, 0] / di, m[:, 1] / dj
    if abs(col @ row) > ORTHONORMAL_TOLERANCE:
        raise GeometryError("affine is sheared: in-plane axes are not orthogonal "
                            "(cos = %.4f)" % (col @ row))
    shape = tuple(int(s) for s in shape)
    nk = shape[2] if len(shape) > 2 else 1
    if thickness is None and dk > 0:
        thickness = float(dk)
    return [Plane(origin=t + k * m[:, 2], row_dir=row, col_dir=col, spacing=(di, dj),
                  shape=shape[:2], thickness=thickness) for k in range(nk)]


def affine_from_planes(planes: Sequence[Plane], ras: bool = True) -> np.ndarray:
    """4x4 voxel-to-world affine of a stack whose voxel ``(i, j, k)`` is pixel ``(i, j)`` of
    ``planes[k]``: the inverse of :func:`planes_from_affine`.

    The planes must be parallel and evenly spaced (the third column is the mean step from
    the first to the last origin, mm); for one plane it is normal x thickness (1 mm when
    unknown). ``ras=True`` gives a NIfTI (RAS) affine, ``False`` an LPS one.
    """
    p0 = planes[0]
    out = np.eye(4)
    out[:3, 0] = p0.col_dir * p0.spacing[0]
    out[:3, 1] = p0.row_dir * p0.spacing[1]
    if len(planes) > 1:
        out[:3, 2] = (planes[-1].origin - p0.origin) / (len(planes) - 1)
    else:
        out[:3, 2] = p0.normal * (p0.thickness or 1.0)
    out[:3, 3] = p0.origin
    if ras:
        out[:3] = RAS_TO_LPS @ out[:3]  # the same diagonal flip maps LPS to RAS
    return out


# --------------------------------------------------------------------------- lines
@dataclass(frozen=True)
class Line:
    """A line in a plane's pixel indices: ``a*i + b*j + c = 0`` with ``a**2 + b**2 = 1``.

    ``a*i + b*j + c`` is the signed distance in *pixel-index units*, positive on the side
    of the cutting plane's normal. ``mm_per_unit`` converts the signed distance to mm
    when the spacing is isotropic; use :func:`distance_map_mm` in general.
    """

    a: float
    b: float
    c: float
    angle_deg: float  # angle between the two planes, degrees in (0, 90]

    def signed_distance(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return self.a * np.asarray(i) + self.b * np.asarray(j) + self.c


def _dot(u: list[float], v: list[float]) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _angle_deg(na: list[float], nb: list[float]) -> float:
    cx = na[1] * nb[2] - na[2] * nb[1]
    cy = na[2] * nb[0] - na[0] * nb[2]
    cz = na[0] * nb[1] - na[1] * nb[0]
    return math.degrees(math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), abs(_dot(na, nb))))


# The two functions below run once per target channel per training sample, so they work on
# Python floats: numpy's per-call overhead on 3-vectors was 20x their arithmetic.
def plane_angle_deg(a: Plane, b: Plane) -> float:
    """Angle between two planes in degrees, in [0, 90]."""
    return _angle_deg(a.normal.tolist(), b.normal.tolist())


def intersection_line(a: Plane, b: Plane,
                      tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG) -> Line | None:
    """The line where plane ``b`` cuts plane ``a``, in ``a``'s pixel indices, or ``None``
    when the planes are parallel within ``tolerance_deg`` (never a line at infinity)."""
    n = b.normal.tolist()
    angle = _angle_deg(a.normal.tolist(), n)
    if angle < tolerance_deg:
        return None
    di, dj = a.spacing
    coef_i = di * _dot(n, a.col_dir.tolist())
    coef_j = dj * _dot(n, a.row_dir.tolist())
    oa, ob = a.origin.tolist(), b.origin.tolist()
    const = _dot(n, [oa[0] - ob[0], oa[1] - ob[1], oa[2] - ob[2]])
    norm = math.hypot(coef_i, coef_j)
    return Line(coef_i / norm, coef_j / norm, const / norm, angle)


def _pixel_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return (np.arange(shape[0], dtype=np.float64)[:, None],
            np.arange(shape[1], dtype=np.float64)[None, :])


def distance_map_mm(a: Plane, b: Plane,
                    tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG) -> np.ndarray | None:
    """In-plane distance (mm) from every pixel centre of ``a`` to the line ``a`` ∩ ``b``,
    shape ``a.shape``; ``None`` when parallel."""
    if intersection_line(a, b, tolerance_deg) is None:
        return None
    n_in = b.normal - (b.normal @ a.normal) * a.normal  # b's normal projected into a
    i, j = _pixel_grid(a.shape)
    di, dj = a.spacing
    off = float(b.normal @ (a.origin - b.origin))
    signed = (i * di * float(b.normal @ a.col_dir) + j * dj * float(b.normal @ a.row_dir) + off)
    return np.abs(signed) / np.linalg.norm(n_in)


def distance_map_px(a: Plane, b: Plane,
                    tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG) -> np.ndarray | None:
    """Distance in pixel-index units from every pixel of ``a`` to the line ``a`` ∩ ``b``
    (equal to mm / spacing for isotropic pixels); ``None`` when parallel."""
    line = intersection_line(a, b, tolerance_deg)
    if line is None:
        return None
    i, j = _pixel_grid(a.shape)
    return np.abs(line.a * i + line.b * j + line.c)


def line_endpoints(line: Line, shape: tuple[int, int]) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The two points ``((i0, j0), (i1, j1))`` where the line crosses the border of the
    field of view ``[-0.5, rows-0.5] x [-0.5, cols-0.5]``, or ``None`` if it misses it."""
    lo_i, hi_i = -0.5, shape[0] - 0.5
    lo_j, hi_j = -0.5, shape[1] - 0.5
    pts: list[tuple[float, float]] = []
    eps = 1e-9
    if abs(line.b) > eps:  # crossings with the top and bottom edges (i fixed)
        for i in (lo_i, hi_i):
            j = -(line.a * i + line.c) / line.b
            if lo_j - eps <= j <= hi_j + eps:
                pts.append((i, j))
    if abs(line.a) > eps:  # crossings with the left and right edges (j fixed)
        for j in (lo_j, hi_j):
            i = -(line.b * j + line.c) / line.a
            if lo_i - eps <= i <= hi_i + eps:
                pts.append((i, j))
    unique: list[tuple[float, float]] = []
    for p in pts:
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) > 1e-6 for q in unique):
            unique.append(p)
    if len(unique) < 2:
        return None
    # The two farthest apart (a line through a corner gives duplicates).
    best = max(((p, q) for k, p in enumerate(unique) for q in unique[k + 1:]),
               key=lambda pq: np.hypot(pq[0][0] - pq[1][0], pq[0][1] - pq[1][1]))
    return best


def intersection_line_world(a: Plane, b: Plane,
                            tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG
                            ) -> tuple[np.ndarray, np.ndarray] | None:
    """The 3D line of two planes as ``(point, unit direction)`` in LPS mm; ``None`` when
    parallel. The point is the one closest to ``a``'s field-of-view centre."""
    if plane_angle_deg(a, b) < tolerance_deg:
        return None
    direction = np.cross(a.normal, b.normal)
    direction /= np.linalg.norm(direction)
    # Solve for the point on both planes nearest to a's centre (3 linear equations).
    p0 = a.centre_world()
    m = np.stack([a.normal, b.normal, direction])
    rhs = np.array([a.normal @ a.origin, b.normal @ b.origin, direction @ p0])
    return np.linalg.solve(m, rhs), direction


# --------------------------------------------------------------------------- stacks
@dataclass(frozen=True)
class StackGeometry:
    """Positions of the slices of a parallel stack along its (anatomically oriented) normal.

    Attributes:
        normal: unit stack normal (LPS), oriented toward the anatomical reference direction.
        positions: per input slice, ``normal . origin`` in mm (input order).
        order: indices that sort the slices from first (base) to last (apex).
        relative: per input slice, ``(s - min s) / (max s - min s)`` in [0, 1]; ``None`` for
            a stack of one slice.
        spacing: median gap between neighbouring slices in mm (``None`` for one slice).
        problems: human-readable reasons the stack is irregular (empty when regular).
    """

    normal: np.ndarray
    positions: np.ndarray
    order: np.ndarray
    relative: np.ndarray | None
    spacing: float | None
    problems: tuple[str, ...]

    @property
    def is_regular(self) -> bool:
        return not self.problems


def stack_geometry(planes: Sequence[Plane],
                   toward: np.ndarray | None = CARDIAC_APEX_DIRECTION,
                   tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG,
                   spacing_tolerance: float = 0.1) -> StackGeometry:
    """Slice positions of a stack and its anatomical orientation.

    The stack normal is oriented so that it points along ``toward`` (default: the cardiac
    long axis from base to apex, left-anterior-inferior), so relative position 0 is the
    base and 1 the apex, whatever the scanner's slice order or normal sign. With
    ``toward=None`` the first slice's normal is kept.

    Raises:
        GeometryError: when the slices are not parallel within ``tolerance_deg``.
    """
    if len(planes) == 0:
        raise GeometryError("a stack needs at least one slice")
    normal = np.array(planes[0].normal, dtype=np.float64)
    for k, p in enumerate(planes[1:], start=1):
        ang = plane_angle_deg(planes[0], p)
        if ang >= tolerance_deg:
            raise GeometryError(f"stack is not parallel: slice {k} is tilted {ang:.2f} deg "
                                f"from slice 0")
    problems: list[str] = []
    if toward is not None:
        toward = np.asarray(toward, dtype=np.float64)
        toward = toward / np.linalg.norm(toward)
        cos = float(normal @ toward)
        if cos < 0:
            normal = -normal
        if abs(cos) < 0.2:
            problems.append("stack normal is nearly perpendicular to the reference direction "
                            f"(cos = {cos:.2f}): base/apex order is ambiguous")
    positions = np.array([float(normal @ p.origin) for p in planes])
    order = np.argsort(positions, kind="stable")
    if len(planes) == 1:
        return StackGeometry(normal, positions, order, None, None, tuple(problems))
    gaps = np.diff(positions[order])
    spacing = float(np.median(gaps))
    if np.any(gaps < 1e-3):
        problems.append("duplicate slice positions")
    elif np.max(np.abs(gaps - spacing)) > spacing_tolerance + 0.05 * spacing:
        problems.append("uneven slice spacing: gaps %s mm" %
                        ", ".join("%.2f" % g for g in gaps))
    # In-plane offsets between slices (a stack whose slices do not line up).
    span = positions.max() - positions.min()
    relative = (positions - positions.min()) / span if span > 1e-6 else None
    if relative is None:
        problems.append("all slices at the same position")
    return StackGeometry(normal, positions, order, relative, spacing, tuple(problems))
