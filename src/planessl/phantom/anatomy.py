"""Analytic anatomy of the cardiac phantom, in patient coordinates (LPS, mm).

No voxel volume exists: every structure is a closed-form solid (truncated ellipsoids,
capsules, elliptic cylinders) evaluated directly at the world positions of the pixels of any
imaging plane, so every view of a subject samples one and the same 3D anatomy.

The heart has its own orthonormal frame at the centre of the mitral annulus ``base``:

* ``u`` - the LV long axis from base to apex (left, anterior, inferior),
* ``s`` - perpendicular to ``u``, from the LV axis toward the RV (the 4CH plane holds u, s),
* ``w = u x s`` (the 2CH plane holds u, w),
* ``t`` - toward the aortic root, ``s`` turned about ``u`` toward anterior (the 3CH plane
  holds u, t).

Local coordinates of a point p are ``a = (p - base).u`` (0 on the mitral plane, growing
toward the apex), ``x = (p - base).s`` and ``y = (p - base).w``. The base moves toward the
apex during systole (``descent``); the apex stays put.

Outputs per point: a tissue code (:data:`TISSUES`, drives the intensities in
:mod:`planessl.phantom.render`) and a label (0 background, 1 RV, 2 myocardium, 3 LV cavity
with papillary muscles, 4 LA, 5 RA, 6 aorta; see :mod:`planessl.study`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

#: Tissue codes (index into the intensity table of the renderer).
TISSUES = ("air", "fat", "muscle", "lung", "liver", "blood", "myocardium", "marrow",
           "fluid", "cortex")
AIR, FAT, MUSCLE, LUNG, LIVER, BLOOD, MYO, MARROW, FLUID, CORTEX = range(len(TISSUES))

#: Label values (ACDC convention plus the extras of :data:`planessl.study.EXTRA_LABEL_NAMES`).
BG, RV, MYO_LABEL, LV, LA, RA, AORTA = 0, 1, 2, 3, 4, 5, 6

#: Study-level categories driven by the LV anatomy (``Study.targets["class"]``).
CLASS_NAMES = ("normal", "hypertrophy", "dilation")


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def rotation(axis, angle_rad: float) -> np.ndarray:
    """3x3 rotation matrix about ``axis`` by ``angle_rad`` (right hand)."""
    k = _unit(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * kx + (1 - np.cos(angle_rad)) * (kx @ kx)


@dataclass(frozen=True)
class Heart:
    """End-diastolic heart shape and its motion (all lengths mm).

    ``lv_radius`` and ``lv_length`` are the endocardial (cavity) semi-axes at ED; the
    epicardium is the cavity grown by ``wall`` (and ``apex_wall`` at the apex). During
    systole the cavity radius shrinks by ``radial_shortening`` (fraction), the base descends
    by ``descent`` mm, and the wall thickens so that the myocardial volume is conserved.
    """

    base: np.ndarray
    u: np.ndarray
    s: np.ndarray
    w: np.ndarray
    aortic_angle_deg: float
    lv_radius: float
    lv_ellipticity: float
    lv_length: float
    wall: float
    apex_wall: float
    radial_shortening: float
    descent: float
    rv_width: float        # RV semi-axis along s, as a fraction of the ED epicardial radius
    rv_depth: float        # RV semi-axis along w, fraction of the ED epicardial radius
    rv_length: float       # RV long semi-axis, fraction of the LV cavity length
    rv_shortening: float
    rv_wall: float
    la_radius: float
    la_length: float
    ra_radius: float
    ra_length: float
    aorta_radius: float
    fat: float             # epicardial fat thickness, mm
    papillary_radius: float
    category: int = 0
    rv_offset: float = 0.8  # RV centre along s, fraction of the ED epicardial radius
    #: Angles (rad, from s about u) of the two papillary muscles, and their distance from
    #: the LV axis as a fraction of the cavity radius.
    papillary_angles: tuple = (np.pi - 0.85, np.pi + 0.85)
    papillary_offset: float = 0.68
    #: Trabeculation: depth of the trabeculated layer (fraction of the cavity radius; 0 =
    #: smooth endocardium), fraction of that layer filled with muscle, and the pattern's
    #: angular frequencies (per turn), pitches along u (rad/mm) and phases.
    trabeculation: float = 0.0
    trabecular_fill: float = 0.3
    trabecular_waves: tuple = ((7.0, 0.05, 0.0), (11.0, -0.08, 1.0), (17.0, 0.12, 2.0))
    #: Epicardial fat is patchy: kept where ``cos(2 phi + p0) + cos(3 phi + p1) > fat_patch``
    #: (phi: angle about u from s); -2 gives a complete layer.
    fat_patch: float = -2.0
    fat_phases: tuple = (0.0, 0.0)

    @property
    def t(self) -> np.ndarray:
        """Unit vector from the LV axis toward the aortic root (in the 3CH plane)."""
        ang = np.deg2rad(self.aortic_angle_deg)
        return np.cos(ang) * self.s - np.sin(ang) * self.w

    @property
    def apex(self) -> np.ndarray:
        """Endocardial apex (fixed over the cycle)."""
        return self.base + self.lv_length * self.u

    def myocardial_volume_ml(self) -> float:
        st = self.state(0.0)
        return st.myo_volume_ml

    def state(self, c: float) -> "HeartState":
        """Geometry at contraction ``c`` (0 = ED, 1 = ES)."""
        e = self.lv_ellipticity
        ri_ed, li_ed = self.lv_radius, self.lv_length
        ro_ed, lo_ed = ri_ed + self.wall, li_ed + self.apex_wall
        ri = ri_ed * (1 - self.radial_shortening * c)
        descent = self.descent * c
        li = li_ed - descent
        lo = li + self.apex_wall * (1 + 0.3 * c)
        # Conserve myocardial volume (half-ellipsoid shells): ro^2 lo - ri^2 li is constant.
        ro = float(np.sqrt((ro_ed ** 2 * lo_ed - ri_ed ** 2 * li_ed + ri ** 2 * li) / lo))
        myo = (2 / 3) * np.pi * e * (ro ** 2 * lo - ri ** 2 * li) / 1000.0
        return HeartState(heart=self, c=float(c), descent=descent, ri=ri, li=li, ro=ro, lo=lo,
                          myo_volume_ml=float(myo),
                          lv_volume_ml=float((2 / 3) * np.pi * e * ri ** 2 * li / 1000.0))


@dataclass(frozen=True)
class HeartState:
    """The heart at one instant of the cycle (derived from :class:`Heart`)."""

    heart: Heart
    c: float
    descent: float
    ri: float
    li: float
    ro: float
    lo: float
    myo_volume_ml: float
    lv_volume_ml: float


@dataclass(frozen=True)
class Body:
    """Static surroundings: thorax, fat, chest wall, lungs, liver, spine, descending aorta."""

    centre: np.ndarray      # (x, y) of the thorax ellipse axis, mm
    half_width: float       # left-right semi-axis, mm
    half_depth: float       # anterior-posterior semi-axis, mm
    fat: float              # subcutaneous fat, mm
    chest_wall: float       # muscle under the fat, mm
    lungs: tuple            # ((centre xyz), (radii xyz)) x 2
    liver: tuple            # (centre xyz, radii xyz)
    spine: np.ndarray       # (x, y) of the vertebral body axis
    spine_radius: float
    descending_aorta: np.ndarray  # (x, y)
    descending_aorta_radius: float
    #: Mediastinal/abdominal clutter inside the chest wall: a smooth random 3D field
    #: (wave vectors (K, 3) rad/mm and phases) thresholded into fat (field > clutter_fat),
    #: fluid-filled bowel/stomach (< -clutter_fluid) and solid organs (just above that).
    clutter_waves: np.ndarray | None = None
    clutter_phases: np.ndarray | None = None
    clutter_fat: float = 1.0
    clutter_fluid: float = 1.5
    #: Above ``diaphragm_z`` (mm, z of LPS) the clutter is the mediastinum: fat where the
    #: field exceeds ``mediastinal_fat``, grey soft tissue elsewhere.
    diaphragm_z: float | None = None
    mediastinal_fat: float = 0.0


@dataclass(frozen=True)
class Anatomy:
    """One subject: heart and body."""

    heart: Heart
    body: Body


# ----------------------------------------------------------------------------- sampling
def sample_anatomy(rng: np.random.Generator, category: int | None = None) -> Anatomy:
    """A random subject. ``category`` (index in :data:`CLASS_NAMES`) picks the LV phenotype;
    ``None`` draws it uniformly.

    Inter-subject variability (all from ``rng``): long-axis direction (up to 32 deg from
    the mean left-anterior-inferior axis), RV side about the long axis (sd 12 deg, within
    25 deg of its mean), overall heart size (x0.88-1.32, i.e. 1.1 +-20 %, on top of the
    phenotype's ranges, which alone give hearts smaller than ACDC's; x0.9-1.1 for
    dilation), heart position in the chest, RV crescent (offset, thickness, extent around
    the LV, length, wall), papillary muscles (position, size), trabeculation depth and
    density, patchy epicardial fat, subcutaneous fat, chest wall, thorax size, lungs and
    diaphragm level, liver, mediastinal/abdominal clutter, spine and descending aorta.
    """
    if category is None:
        category = int(rng.integers(len(CLASS_NAMES)))
    cat = CLASS_NAMES[category]
    # Long axis about 45 deg from each body axis, randomised (rejection keeps it left,
    # anterior and inferior and within 32 deg of the mean direction).
    mean_u = np.array([1.0, -1.0, -1.0]) / np.sqrt(3)
    while True:
        u = _unit(mean_u + rng.normal(0, 0.2, 3))
        if u[0] > 0.1 and u[1] < -0.1 and u[2] < -0.1 and u @ mean_u > np.cos(np.deg2rad(32)):
            break
    # The RV lies right-anterior of the LV: start from (-1, -1, 0) projected off u, turned
    # 25 deg (+-25) about u toward the patient's right, so that a SAX slice in the standard
    # display shows the RV on the left, a little above the LV (as real SAX images do).
    s0 = np.array([-1.0, -1.0, 0.0])
    s0 = s0 - (s0 @ u) * u
    s = rotation(u, np.deg2rad(25 + np.clip(rng.normal(0, 12), -25, 25))) @ _unit(s0)
    w = np.cross(u, s)
    if cat == "normal":
        ri, wall, li = rng.uniform(22, 27), rng.uniform(7, 10), rng.uniform(75, 88)
        k_r, descent = rng.uniform(0.28, 0.34), rng.uniform(10, 15)
        scale = rng.uniform(0.88, 1.32)
    elif cat == "hypertrophy":
        ri, wall, li = rng.uniform(19, 24), rng.uniform(13, 17), rng.uniform(70, 82)
        k_r, descent = rng.uniform(0.33, 0.40), rng.uniform(8, 12)
        scale = rng.uniform(0.88, 1.32)
    else:  # dilation
        ri, wall, li = rng.uniform(30, 36), rng.uniform(6, 8), rng.uniform(90, 104)
        k_r, descent = rng.uniform(0.08, 0.14), rng.uniform(4, 7)
        scale = rng.uniform(0.9, 1.1)
    # Whole-heart size: lengths scale linearly, the wall with the square root.
    ri, li, wall = ri * scale, li * scale, wall * np.sqrt(scale)
    apex = np.array([rng.uniform(45, 90), rng.uniform(-85, -45), 0.0])
    base = apex - li * u
    # RV crescent: centre offset k and semi-axis along s (both x the epicardial radius) from
    # the free-wall-to-epicardium thickness k + width - 1 (0.5-1.05); k - width >= -0.6
    # keeps the RV from wrapping behind the LV.
    rv_offset = rng.uniform(0.55, 0.95)
    rv_thick = min(rng.uniform(0.5, 1.05), 2 * rv_offset - 0.4)
    rv_width = rv_thick + 1 - rv_offset
    pap = rng.uniform(0.5, 1.1, 2)
    heart = Heart(
        base=base, u=u, s=s, w=w, aortic_angle_deg=float(rng.uniform(35, 55)),
        lv_radius=float(ri), lv_ellipticity=float(rng.uniform(0.9, 1.06)),
        lv_length=float(li), wall=float(wall), apex_wall=float(wall * rng.uniform(0.55, 0.85)),
        radial_shortening=float(k_r), descent=float(descent),
        rv_width=float(rv_width), rv_depth=float(rng.uniform(0.95, 1.4)),
        rv_length=float(rng.uniform(0.68, 0.9)), rv_shortening=float(rng.uniform(0.12, 0.3)),
        rv_wall=float(rng.uniform(2.0, 4.5)), la_radius=float(rng.uniform(18, 26) * scale),
        la_length=float(rng.uniform(18, 27) * scale), ra_radius=float(rng.uniform(18, 26) * scale),
        ra_length=float(rng.uniform(20, 29) * scale),
        aorta_radius=float(rng.uniform(11, 16) * scale),
        fat=float(rng.uniform(1.5, 8)), papillary_radius=float(rng.uniform(2.5, 4.5) * scale),
        category=category, rv_offset=float(rv_offset),
        papillary_angles=(float(np.pi - pap[0]), float(np.pi + pap[1])),
        papillary_offset=float(rng.uniform(0.55, 0.78)),
        fat_patch=float(rng.uniform(-1.2, 0.8)),
        fat_phases=(float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi))),
        trabeculation=float(rng.uniform(0.0, 0.25)),
        trabecular_fill=float(rng.uniform(0.15, 0.45)),
        trabecular_waves=tuple((float(rng.integers(5, 21)), float(rng.uniform(-0.15, 0.15)),
                                float(rng.uniform(0, 2 * np.pi))) for _ in range(3)))
    half_width = rng.uniform(140, 195)
    half_depth = rng.uniform(95, 135)
    centre = np.array([rng.uniform(-8, 8), rng.uniform(-5, 10) - 10])
    lung_scale = rng.uniform(0.85, 1.15, 2)
    # Lung bases (diaphragm) near the level of the apex: the abdomen lies under the heart.
    lung_z = apex[2] + rng.uniform(-25, 5, 2) + 150 * lung_scale
    body = Body(
        centre=centre, half_width=float(half_width), half_depth=float(half_depth),
        fat=float(rng.uniform(4, 28)), chest_wall=float(rng.uniform(8, 20)),
        lungs=((np.array([base[0] + 45 + rng.uniform(-12, 12), 15.0 + rng.uniform(-12, 12),
                          lung_z[0]]), np.array([95.0, 110.0, 150.0]) * lung_scale[0]),
               (np.array([-70.0 + rng.uniform(-12, 12), 15.0 + rng.uniform(-12, 12),
                          lung_z[1]]), np.array([95.0, 110.0, 150.0]) * lung_scale[1])),
        liver=(np.array([-45.0 + rng.uniform(-15, 15), 5.0 + rng.uniform(-10, 10),
                         apex[2] - 85 + rng.uniform(-25, 25)]),
               np.array([125.0, 95.0, 80.0]) * rng.uniform(0.85, 1.15)),
        spine=np.array([centre[0] + rng.uniform(-6, 6), centre[1] + half_depth - 50]),
        spine_radius=float(rng.uniform(15, 21)),
        descending_aorta=np.array([centre[0] + 28 + rng.uniform(-8, 8),
                                   centre[1] + half_depth - 82 + rng.uniform(-6, 6)]),
        descending_aorta_radius=float(rng.uniform(9, 14)),
        clutter_waves=_random_waves(rng, 10, (25.0, 80.0)),
        clutter_phases=rng.uniform(0, 2 * np.pi, 10),
        clutter_fat=float(rng.uniform(0.3, 1.2)), clutter_fluid=float(rng.uniform(1.0, 1.8)),
        diaphragm_z=float(apex[2] + rng.uniform(-15, 10)),
        mediastinal_fat=float(rng.uniform(-0.9, 0.6)))
    return Anatomy(heart=heart, body=body)


def _random_waves(rng: np.random.Generator, count: int, wavelength_mm: tuple) -> np.ndarray:
    direction = rng.normal(size=(count, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * (2 * np.pi / rng.uniform(*wavelength_mm, count))[:, None]


# ------------------------------------------------------------------------- evaluation
def _ellipsoid(p: np.ndarray, centre, radii) -> np.ndarray:
    """Level ``sum(((p - centre) / radii)**2)`` (< 1 inside); p is (N, 3)."""
    q = (p[:, 0] - centre[0]) / radii[0]
    out = q * q
    for k in (1, 2):
        q = (p[:, k] - centre[k]) / radii[k]
        out += q * q
    return out


def _capsule_dist2(a: np.ndarray, x: np.ndarray, y: np.ndarray, p0: np.ndarray,
                   p1: np.ndarray) -> np.ndarray:
    """Squared distance (mm^2) of local points (a, x, y) from the segment p0-p1."""
    d = np.asarray(p1, np.float64) - p0
    dd = float(d @ d)
    ra, rx, ry = a - np.float32(p0[0]), x - np.float32(p0[1]), y - np.float32(p0[2])
    h = np.clip((ra * np.float32(d[0] / dd) + rx * np.float32(d[1] / dd)
                 + ry * np.float32(d[2] / dd)), 0, 1)
    ra -= h * np.float32(d[0])
    rx -= h * np.float32(d[1])
    ry -= h * np.float32(d[2])
    return ra * ra + rx * rx + ry * ry


def body_tissue(points: np.ndarray, body: Body) -> tuple[np.ndarray, np.ndarray]:
    """Tissue codes and labels of the static surroundings at world points (N, 3) mm."""
    p = points
    x = p[:, 0] - body.centre[0]
    y = p[:, 1] - body.centre[1]
    # A rounded-rectangle (superellipse) cross-section: flatter back and sides than an
    # ellipse, as a supine chest.
    r = (np.abs(x / body.half_width) ** 2.6 + np.abs(y / body.half_depth) ** 2.6) ** (1 / 2.6)
    # Depth under the skin, mm (exact on the axes, close elsewhere).
    depth = (1 - r) * np.sqrt(body.half_width * body.half_depth)
    tissue = np.full(len(p), AIR, np.uint8)
    label = np.zeros(len(p), np.uint8)
    tissue[depth > 0] = FAT
    tissue[depth > body.fat] = MUSCLE
    inner = depth > body.fat + body.chest_wall
    if body.clutter_waves is not None and inner.any():
        idx = np.flatnonzero(inner)
        arg = (p[idx].astype(np.float32) @ body.clutter_waves.T.astype(np.float32)
               + body.clutter_phases.astype(np.float32))
        f = np.cos(arg).sum(axis=1) * np.float32(np.sqrt(2.0 / len(body.clutter_phases)))
        chest = (np.zeros(len(idx), bool) if body.diaphragm_z is None
                 else p[idx, 2] > body.diaphragm_z)
        tissue[idx[~chest & (f > body.clutter_fat)]] = FAT
        tissue[idx[~chest & (f < -body.clutter_fluid + 0.5)]] = LIVER
        tissue[idx[~chest & (f < -body.clutter_fluid)]] = FLUID
        tissue[idx[chest & (f > body.mediastinal_fat)]] = FAT
    for centre, radii in body.lungs:
        tissue[inner & (_ellipsoid(p, centre, radii) < 1)] = LUNG
    tissue[inner & (_ellipsoid(p, *body.liver) < 1)] = LIVER
    sx, sy = p[:, 0] - body.spine[0], p[:, 1] - body.spine[1]
    rs = np.sqrt(sx * sx + sy * sy)
    tissue[rs < body.spine_radius + 2] = CORTEX
    tissue[rs < body.spine_radius] = MARROW
    rc = np.sqrt(sx * sx + (sy - body.spine_radius - 9) ** 2)
    tissue[rc < 9] = CORTEX
    tissue[rc < 7] = FLUID
    ax, ay = p[:, 0] - body.descending_aorta[0], p[:, 1] - body.descending_aorta[1]
    in_aorta = ax * ax + ay * ay < body.descending_aorta_radius ** 2
    tissue[in_aorta] = BLOOD
    label[in_aorta] = AORTA
    return tissue, label


@dataclass
class LocalPoints:
    """World points in the heart's ED frame: ``a`` along u (from the ED base), x, y."""

    a: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def from_world(cls, points: np.ndarray, heart: Heart) -> "LocalPoints":
        d = points - heart.base.astype(points.dtype)
        frame = np.stack([heart.u, heart.s, heart.w], axis=1).astype(points.dtype)
        loc = d @ frame
        return cls(loc[:, 0].copy(), loc[:, 1].copy(), loc[:, 2].copy())

    def subset(self, mask: np.ndarray) -> "LocalPoints":
        return LocalPoints(self.a[mask], self.x[mask], self.y[mask])


def heart_box(heart: Heart) -> tuple[tuple[float, float], float, float]:
    """Bounds of every heart structure over the cycle in the ED local frame:
    ``((a_min, a_max), x_max, y_max)`` with ``|x| <= x_max`` and ``|y| <= y_max`` (mm)."""
    ro = heart.lv_radius + heart.wall + 10
    a_max = heart.lv_length + heart.apex_wall * 1.3 + heart.fat + 10
    a_min = -(28 + 45 + heart.aorta_radius + 2 + 10)
    k = heart.rv_offset
    side = max(k * ro + heart.rv_width * ro + heart.rv_wall,
               k * ro + 0.35 * heart.rv_width * ro + heart.ra_radius,
               heart.lv_radius + 60) + 10
    deep = max(heart.rv_depth * ro, heart.la_radius * 1.1 + 15, 60.0) + 10
    return (a_min, a_max), side, deep


def paint_heart(loc: LocalPoints, st: HeartState, tissue: np.ndarray, label: np.ndarray) -> None:
    """Overwrite ``tissue`` and ``label`` (1D, aligned with ``loc``) with the heart at the
    instant ``st``. Later structures override earlier ones."""
    h = st.heart
    e = h.lv_ellipticity
    a = loc.a - np.float32(st.descent)  # a relative to the moving base
    x, y = loc.x, loc.y
    ro_ed = h.lv_radius + h.wall
    # --- RV: an ellipsoid beside the LV whose septal part the LV epicardium takes away.
    rv_cx = h.rv_offset * ro_ed
    shrink = 1 - h.rv_shortening * st.c
    rv_rx = h.rv_width * ro_ed * shrink
    rv_ry = h.rv_depth * ro_ed * (1 - 0.5 * h.rv_shortening * st.c)
    rv_len = h.rv_length * st.li
    rv_q = ((a / rv_len) ** 2 + ((x - rv_cx) / rv_rx) ** 2 + (y / rv_ry) ** 2)
    rvw = h.rv_wall
    rv_qw = ((a / (rv_len + rvw)) ** 2 + ((x - rv_cx) / (rv_rx + rvw)) ** 2
             + (y / (rv_ry + rvw)) ** 2)
    # --- LV cavity and epicardium (truncated at the mitral plane a = 0).
    lv_q = (a / st.li) ** 2 + (x / st.ri) ** 2 + (y / (st.ri * e)) ** 2
    epi_q = (a / st.lo) ** 2 + (x / st.ro) ** 2 + (y / (st.ro * e)) ** 2
    fat = h.fat
    fat_q = ((a / (st.lo + fat)) ** 2 + (x / (st.ro + fat)) ** 2
             + (y / ((st.ro + fat) * e)) ** 2)
    below = a >= 0
    # --- Atria: ellipsoids above the base whose roofs stay put while the base descends.
    la_len = h.la_length + st.descent / 1.7
    la_ca = -0.7 * la_len
    t_loc = np.array([0.0, np.cos(np.deg2rad(h.aortic_angle_deg)),
                      -np.sin(np.deg2rad(h.aortic_angle_deg))])
    la_c = -0.35 * h.la_radius * t_loc
    la_q = (((a - la_ca) / la_len) ** 2 + ((x - la_c[1]) / h.la_radius) ** 2
            + ((y - la_c[2]) / (h.la_radius * 1.1)) ** 2)
    la_qw = (((a - la_ca) / (la_len + 2)) ** 2 + ((x - la_c[1]) / (h.la_radius + 2)) ** 2
             + ((y - la_c[2]) / (h.la_radius * 1.1 + 2)) ** 2)
    ra_len = h.ra_length + st.descent / 1.7
    ra_ca = -0.7 * ra_len
    ra_cx = rv_cx + 0.35 * h.rv_width * ro_ed
    ra_q = (((a - ra_ca) / ra_len) ** 2 + ((x - ra_cx) / h.ra_radius) ** 2
            + (y / (h.ra_radius * 1.1)) ** 2)
    ra_qw = (((a - ra_ca) / (ra_len + 2)) ** 2 + ((x - ra_cx) / (h.ra_radius + 2)) ** 2
             + (y / (h.ra_radius * 1.1 + 2)) ** 2)
    above = ~below
    # --- Aorta: root just above the LV outflow tract, then the ascending aorta.
    r_ao = h.aorta_radius
    off = max(st.ri - 0.55 * r_ao, 0.3 * st.ri)
    root0 = np.array([8.0, 0, 0]) + off * t_loc
    root1 = np.array([-28.0, 0, 0]) + (off + 6) * t_loc
    up = np.array([-0.8, 0, 0]) + 0.35 * t_loc
    root2 = root1 + 22.0 * up / np.linalg.norm(up)
    ao_d = np.full(a.shape, np.float32(1e6))
    near = a < 20
    ao_d[near] = np.minimum(_capsule_dist2(a[near], x[near], y[near], root0, root1),
                            _capsule_dist2(a[near], x[near], y[near], root1, root2))
    in_ao = ao_d < r_ao * r_ao
    # Paint, back to front.
    in_fat = (fat_q < 1) & (a >= -6)
    in_fat |= (rv_qw < 1.15) & (a >= -6)
    if h.fat_patch > -2:
        idx = np.flatnonzero(in_fat)
        phi = np.arctan2(y[idx], x[idx])
        keep = (np.cos(2 * phi + np.float32(h.fat_phases[0]))
                + np.cos(3 * phi + np.float32(h.fat_phases[1]))) > h.fat_patch
        in_fat[idx[~keep]] = False
    tissue[in_fat] = FAT
    label[in_fat] = BG
    walls = ((la_qw < 1) | (ra_qw < 1)) & above
    walls |= (rv_qw < 1) & (a >= 0)
    tissue[walls] = MUSCLE
    label[walls] = BG
    m = (ra_q < 1) & above
    tissue[m] = BLOOD
    label[m] = RA
    m = (la_q < 1) & above
    tissue[m] = BLOOD
    label[m] = LA
    m = (rv_q < 1) & (a >= 0) & (epi_q >= 1)
    tissue[m] = BLOOD
    label[m] = RV
    ao_wall = (ao_d < (r_ao + 2) ** 2) & above & ~in_ao
    tissue[ao_wall] = MUSCLE
    label[ao_wall] = BG
    m = in_ao & above
    tissue[m] = BLOOD
    label[m] = AORTA
    m = (epi_q < 1) & below
    tissue[m] = MYO
    label[m] = MYO_LABEL
    lv = ((lv_q < 1) & below) | (in_ao & below & (a < 12))
    tissue[lv] = BLOOD
    label[lv] = LV
    # Papillary muscles: two columns off the lateral wall (labelled LV cavity, as in ACDC).
    pr = h.papillary_radius * (1 + 0.3 * st.c)
    idx = np.flatnonzero(lv & (a > 0.3 * st.li))
    la_, lx, ly = a[idx], x[idx], y[idx]
    for ang in h.papillary_angles:
        d2 = np.array([0.0, np.cos(ang), np.sin(ang) * e]) * h.papillary_offset * st.ri
        p0 = d2 + np.array([0.38 * st.li, 0, 0])
        p1 = d2 * 0.8 + np.array([0.72 * st.li, 0, 0])
        tissue[idx[_capsule_dist2(la_, lx, ly, p0, p1) < pr * pr]] = MYO
    # Trabeculation: muscle ridges in a layer inside the endocardium (label stays LV).
    if h.trabeculation > 0:
        r_in = 1.0 - h.trabeculation
        idx = np.flatnonzero(lv & (lv_q > r_in * r_in) & (lv_q < 1) & (a > 0.15 * st.li))
        if idx.size:
            ta = a[idx]
            phi = np.arctan2(y[idx] / np.float32(e), x[idx])
            f = np.zeros(idx.size, np.float32)
            for n_ang, pitch, phase in h.trabecular_waves:
                f += np.cos(np.float32(n_ang) * phi + np.float32(pitch) * ta + np.float32(phase))
            f *= np.float32(np.sqrt(2.0 / len(h.trabecular_waves)))
            depth = (np.sqrt(lv_q[idx]) - r_in) / h.trabeculation  # 0 inner edge, 1 wall
            thr = 1.2 * (1 - 2 * h.trabecular_fill) + 1.5 * (1 - depth)
            tissue[idx[f > thr]] = MYO
