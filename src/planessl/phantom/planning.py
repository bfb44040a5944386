"""Scanner-like planning of the cardiac views on the phantom's end-diastolic anatomy.

As an operator does: the SAX stack is perpendicular to the LV long axis and runs from the
mitral plane to beyond the apex; the 2CH, 3CH (LVOT) and 4CH views contain the long axis
and pass through the LV and, respectively, the anterior/inferior walls, the aortic root and
the RV. Each view has its own field of view, matrix and pixel spacing, and small planning
errors (degrees, mm). Display orientation: SAX from the usual convention (anterior up, the
patient's left on the image right, so the RV is on the upper left) turned in-plane by up to
+-30 deg and, half of the time, mirrored upside down (RV on the lower left, as most ACDC
volumes are stored), with the heart up to 28 mm off the centre of the field of view;
long-axis views with the apex up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planessl.geometry import Plane
from planessl.phantom.anatomy import Anatomy, rotation


@dataclass(frozen=True)
class PlanningSettings:
    """Ranges the planner draws from (mm, degrees, pixels)."""

    spacing: tuple[float, float] = (1.2, 2.0)       # in-plane pixel spacing, mm
    matrix: int | None = None                         # fixed square matrix, or None: from FOV
    fov: tuple[float, float] = (300.0, 380.0)         # read-out field of view, mm
    phase_fov: tuple[float, float] = (0.75, 0.9)      # phase / read-out FOV ratio
    sax_gap: tuple[float, float] = (8.0, 10.0)        # slice spacing of the SAX stack, mm
    sax_thickness: tuple[float, float] = (6.0, 8.0)
    lax_thickness: tuple[float, float] = (6.0, 8.0)
    sax_slices: tuple[int, int] = (8, 14)
    angle_error_deg: float = 2.0                      # sd of the plane tilt error
    offset_error_mm: float = 1.5                      # sd of the plane shift error
    fov_offset_mm: float = 12.0                       # sd of the LAX FOV centre offset
    sax_offset_mm: float = 28.0                       # SAX: heart up to this far off-centre
    sax_rotation_deg: float = 30.0                    # SAX: in-plane rotation, uniform +-
    sax_mirror: float = 0.5                           # SAX: probability of a mirrored display


@dataclass(frozen=True)
class LocalizerSettings:
    """Ranges the planner draws the localizers from (mm, degrees, pixels).

    Localizers are planned by eye, before the cines, so their planes are further from the
    ideal anatomical planes: each is tilted by an angle drawn uniformly from ``angle_deg``
    (about a random axis) and shifted along its normal by ``offset_error_mm`` (sd); they
    have thicker slices and a larger field of view of their own.
    """

    spacing: tuple[float, float] = (1.6, 2.4)
    matrix: int | None = None
    fov: tuple[float, float] = (340.0, 420.0)
    phase_fov: tuple[float, float] = (0.8, 1.0)
    thickness: tuple[float, float] = (8.0, 10.0)
    angle_deg: tuple[float, float] = (8.0, 15.0)      # tilt from the ideal plane, uniform
    offset_error_mm: float = 4.0                      # sd of the shift along the normal
    fov_offset_mm: float = 15.0                       # sd of the FOV centre offset (in-plane)
    sax_slices: tuple[int, int] = (3, 5)              # slices of the SAX localizer stack
    sax_cover: float = 0.8                            # the stack spans this share of the LV


def _perpendicular(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r = rng.normal(size=3)
    r -= (r @ v) * v
    return r / np.linalg.norm(r)


def _tilt(v: np.ndarray, rng: np.random.Generator, sd_deg: float) -> np.ndarray:
    """``v`` turned by a random small angle (sd ``sd_deg``) about a random perpendicular."""
    axis = _perpendicular(v, rng)
    return rotation(axis, np.deg2rad(rng.normal(0, sd_deg))) @ v


def _tilt_by(v: np.ndarray, rng: np.random.Generator, angle_deg: float) -> np.ndarray:
    """``v`` turned by exactly ``angle_deg`` about a random perpendicular axis."""
    axis = _perpendicular(v, rng)
    return rotation(axis, np.deg2rad(angle_deg)) @ v


def _matrix(rng: np.random.Generator, st: PlanningSettings | LocalizerSettings) -> tuple[tuple[int, int], float]:
    spacing = float(np.round(rng.uniform(*st.spacing), 4))
    if st.matrix is not None:
        return (st.matrix, st.matrix), spacing
    cols = int(round(rng.uniform(*st.fov) / spacing / 8)) * 8
    rows = int(round(cols * rng.uniform(*st.phase_fov) / 8)) * 8
    return (rows, cols), spacing


def oriented_plane(centre: np.ndarray, normal: np.ndarray, down: np.ndarray,
                   spacing: float, shape: tuple[int, int], thickness: float,
                   right_hint: np.ndarray = np.array([1.0, -0.3, 0.1])) -> Plane:
    """A plane whose field of view is centred on ``centre``, with image rows running along
    ``down`` (projected into the plane) and columns toward ``right_hint`` (the normal's
    sign is chosen for that)."""
    n = normal / np.linalg.norm(normal)
    col = down - (down @ n) * n
    col /= np.linalg.norm(col)
    row = np.cross(col, n)
    if row @ right_hint < 0:
        row = -row  # equivalent to flipping the normal
    rows, cols = shape
    origin = centre - (rows - 1) / 2 * spacing * col - (cols - 1) / 2 * spacing * row
    return Plane(origin=origin, row_dir=row, col_dir=col, spacing=(spacing, spacing),
                 shape=shape, thickness=thickness)


def plan_views(anatomy: Anatomy, rng: np.random.Generator,
               settings: PlanningSettings = PlanningSettings()) -> dict[str, list[Plane]]:
    """Planes of each view: ``{"sax": [base..apex], "2ch": [p], "3ch": [p], "4ch": [p]}``."""
    h = anatomy.heart
    st = settings
    u, s, w, t = h.u, h.s, h.w, h.t
    out: dict[str, list[Plane]] = {}

    # SAX stack: normal along the (slightly mis-planned) long axis, base to apex.
    n = _tilt(u, rng, st.angle_error_deg)
    gap = float(np.round(rng.uniform(*st.sax_gap), 2))
    thick = float(np.round(rng.uniform(*st.sax_thickness), 2))
    outer = h.lv_length + h.apex_wall
    start = -rng.uniform(0, 0.5) * gap  # first slice at or just above the mitral plane
    count = int(np.clip(int(np.ceil((outer + 4 - start) / gap)) + 1, *st.sax_slices))
    shape, spacing = _matrix(rng, st)
    # Field of view: the heart anywhere within sax_offset_mm of its centre (uniform on a
    # disc perpendicular to the stack).
    off_dir = _perpendicular(n, rng)
    off = st.sax_offset_mm * np.sqrt(rng.uniform()) * off_dir
    centre0 = h.base + 0.4 * h.lv_length * u + off + rng.normal(0, st.offset_error_mm) * n
    centre0 = centre0 - ((centre0 - h.base) @ n) * n + start * n  # on the first slice
    # Display: anterior up and the patient's left on the right, then turned in-plane and
    # (as stored by some archives) mirrored upside down.
    down = np.array([0.0, 1.0, 0.0]) - n[1] * n
    down /= np.linalg.norm(down)
    right = np.cross(down, n)
    if right[0] < 0:
        right = -right
    turn = rotation(n, np.deg2rad(rng.uniform(-st.sax_rotation_deg, st.sax_rotation_deg)))
    down, right = turn @ down, turn @ right
    if rng.uniform() < st.sax_mirror:
        down = -down  # upside down: the RV at the lower left, as most ACDC volumes are stored
    out["sax"] = [oriented_plane(centre0 + k * gap * n, n, down, spacing, shape, thick,
                                 right_hint=right)
                  for k in range(count)]

    # Long-axis views: each contains the long axis and one in-plane direction.
    mid = h.base + 0.4 * h.lv_length * u
    for name, side in (("2ch", w), ("3ch", t), ("4ch", s)):
        axis = _tilt(u, rng, st.angle_error_deg)
        side2 = _tilt(side, rng, st.angle_error_deg)
        normal = np.cross(axis, side2)
        normal /= np.linalg.norm(normal)
        shape, spacing = _matrix(rng, st)
        thick = float(np.round(rng.uniform(*st.lax_thickness), 2))
        fov_shift = rng.normal(0, st.fov_offset_mm, 3)
        fov_shift -= (fov_shift @ normal) * normal
        centre = mid + fov_shift + rng.normal(0, st.offset_error_mm) * normal
        out[name] = [oriented_plane(centre, normal, -axis, spacing, shape, thick)]
    return out


def ideal_planes(anatomy: Anatomy) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{view: (point, unit normal)}`` of the error-free planes of the anatomy: the SAX
    plane through the mid-ventricle (perpendicular to the long axis), and the 2CH, 3CH and
    4CH planes containing the long axis."""
    h = anatomy.heart
    mid = h.base + 0.4 * h.lv_length * h.u
    out = {"sax": (mid, h.u / np.linalg.norm(h.u))}
    for name, side in (("2ch", h.w), ("3ch", h.t), ("4ch", h.s)):
        n = np.cross(h.u, side)
        out[name] = (mid, n / np.linalg.norm(n))
    return out


def plan_localizers(anatomy: Anatomy, rng: np.random.Generator,
                    settings: LocalizerSettings = LocalizerSettings()
                    ) -> tuple[dict[str, list[Plane]], dict[str, float]]:
    """Planes of the localizers a technologist acquires before the cines, and their tilts.

    Returns:
        ``({"loc_2ch": [p], "loc_4ch": [p], "loc_sax": [base..apex]}, tilts)``: a pseudo-2CH
        and a pseudo-4CH single slice, tilted from the ideal 2CH / 4CH planes
        (:func:`ideal_planes`) by ``tilts[view]`` degrees about a random axis and shifted
        along their normal; a SAX stack of ``settings.sax_slices`` thick slices spanning
        ``settings.sax_cover`` of the LV, tilted likewise from the long axis.
    """
    h = anatomy.heart
    st = settings
    ideal = ideal_planes(anatomy)
    mid = ideal["sax"][0]
    out: dict[str, list[Plane]] = {}
    tilts: dict[str, float] = {}
    for name, view in (("loc_2ch", "2ch"), ("loc_4ch", "4ch")):
        angle = float(rng.uniform(*st.angle_deg))
        normal = _tilt_by(ideal[view][1], rng, angle)
        shape, spacing = _matrix(rng, st)
        thick = float(np.round(rng.uniform(*st.thickness), 2))
        fov_shift = rng.normal(0, st.fov_offset_mm, 3)
        fov_shift -= (fov_shift @ normal) * normal
        centre = mid + fov_shift + rng.normal(0, st.offset_error_mm) * normal
        axis = h.u - (h.u @ normal) * normal  # apex up: the long axis as seen in the plane
        out[name] = [oriented_plane(centre, normal, -axis, spacing, shape, thick)]
        tilts[name] = angle

    angle = float(rng.uniform(*st.angle_deg))
    n = _tilt_by(h.u / np.linalg.norm(h.u), rng, angle)
    count = int(rng.integers(st.sax_slices[0], st.sax_slices[1] + 1))
    span = st.sax_cover * h.lv_length
    gap = float(np.round(span / max(count - 1, 1), 2))
    shape, spacing = _matrix(rng, st)
    thick = float(np.round(rng.uniform(*st.thickness), 2))
    fov_shift = rng.normal(0, st.fov_offset_mm, 3)
    fov_shift -= (fov_shift @ n) * n
    centre = mid + fov_shift + rng.normal(0, st.offset_error_mm) * n
    down = np.array([0.0, 1.0, 0.0]) - n[1] * n  # anterior up
    down /= np.linalg.norm(down)
    right = np.cross(down, n)
    if right[0] < 0:
        right = -right
    first = centre - 0.5 * (count - 1) * gap * n
    out["loc_sax"] = [oriented_plane(first + k * gap * n, n, down, spacing, shape, thick,
                                     right_hint=right) for k in range(count)]
    tilts["loc_sax"] = angle
    return out, tilts
