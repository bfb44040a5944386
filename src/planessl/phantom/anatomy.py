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


@dataclass(frozen=True)
class Anatomy:
    """One subject: heart and body."""

    heart: Heart
    body: Body


# ----------------------------------------------------------------------------- sampling
def sample_anatomy(rng: np.random.Generator, category: int | None = None) -> Anatomy:
    """A random subject. ``category`` (index in :data:`CLASS_NAMES`) picks the LV phenotype;
    ``None`` draws it uniformly."""
    if category is None:
        category = int(rng.integers(len(CLASS_NAMES)))
    cat = CLASS_NAMES[category]
    # Long axis within the normal range: about 45 deg from each body axis, randomised.
    u = _unit(np.array([1.0, -1.0, -1.0]) / np.sqrt(3) + rng.normal(0, 0.12, 3))
    # The RV lies right-anterior of the LV: start from (-1, -1, 0) projected off u.
    s0 = np.array([-1.0, -1.0, 0.0])
    s0 = s0 - (s0 @ u) * u
    s = rotation(u, np.deg2rad(rng.normal(0, 8))) @ _unit(s0)
    w = np.cross(u, s)
    if cat == "normal":
        ri, wall, li = rng.uniform(22, 27), rng.uniform(7, 10), rng.uniform(75, 88)
        k_r, descent = rng.uniform(0.28, 0.34), rng.uniform(10, 15)
    elif cat == "hypertrophy":
        ri, wall, li = rng.uniform(19, 24), rng.uniform(13, 17), rng.uniform(70, 82)
        k_r, descent = rng.uniform(0.33, 0.40), rng.uniform(8, 12)
    else:  # dilation
        ri, wall, li = rng.uniform(30, 36), rng.uniform(6, 8), rng.uniform(90, 104)
        k_r, descent = rng.uniform(0.08, 0.14), rng.uniform(4, 7)
    apex = np.array([rng.uniform(55, 80), rng.uniform(-70, -55), 0.0])
    base = apex - li * u
    heart = Heart(
        base=base, u=u, s=s, w=w, aortic_angle_deg=float(rng.uniform(35, 55)),
        lv_radius=float(ri), lv_ellipticity=float(rng.uniform(0.92, 1.04)),
        lv_length=float(li), wall=float(wall), apex_wall=float(wall * rng.uniform(0.6, 0.8)),
        radial_shortening=float(k_r), descent=float(descent),
        rv_width=float(rng.uniform(1.2, 1.4)), rv_depth=float(rng.uniform(1.35, 1.55)),
        rv_length=float(rng.uniform(0.75, 0.85)), rv_shortening=float(rng.uniform(0.15, 0.25)),
        rv_wall=float(rng.uniform(2.5, 3.5)), la_radius=float(rng.uniform(20, 25)),
        la_length=float(rng.uniform(20, 26)), ra_radius=float(rng.uniform(20, 25)),
        ra_length=float(rng.uniform(22, 28)), aorta_radius=float(rng.uniform(12, 15)),
        fat=float(rng.uniform(2, 5)), papillary_radius=float(rng.uniform(3.0, 4.5)),
        category=category)
    half_width = rng.uniform(150, 185)
    half_depth = rng.uniform(100, 125)
    centre = np.array([rng.uniform(-5, 5), rng.uniform(-5, 10) - 10])
    zc = base[2]
    body = Body(
        centre=centre, half_width=float(half_width), half_depth=float(half_depth),
        fat=float(rng.uniform(6, 18)), chest_wall=float(rng.uniform(10, 16)),
        lungs=((np.array([base[0] + 60, 10.0, zc + 30]), np.array([78.0, 100.0, 140.0])),
               (np.array([-80.0, 10.0, zc + 30]), np.array([78.0, 100.0, 150.0]))),
        liver=(np.array([-45.0, 5.0, apex[2] - 85 + rng.uniform(-10, 10)]),
               np.array([125.0, 95.0, 80.0])),
        spine=np.array([centre[0], centre[1] + half_depth - 50]),
        spine_radius=float(rng.uniform(16, 20)),
        descending_aorta=np.array([centre[0] + 28, centre[1] + half_depth - 82]),
        descending_aorta_radius=float(rng.uniform(10, 13)))
    return Anatomy(heart=heart, body=body)


# ------------------------------------------------------------------------- evaluation
def _ellipsoid(p: np.ndarray, centre, radii) -> np.ndarray:
    """Level ``sum(((p - centre) / radii)**2)`` (< 1 inside); p is (N, 3)."""
    q = (p[:, 0] - centre[0]) / radii[0]
    out = q * q
    for k in (1, 2):
        q = (p[:, k] - centre[k]) / radii[k]
        out += q * q
    return out


def _capsule_dist(p: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance (mm) of points (N, 3) from the segment p0-p1."""
    d = (p1 - p0).astype(p.dtype)
    rel = p - p0.astype(p.dtype)
    h = np.clip(rel @ d / float(d @ d), 0.0, 1.0)
    return np.linalg.norm(rel - h[:, None] * d, axis=1)


def body_tissue(points: np.ndarray, body: Body) -> tuple[np.ndarray, np.ndarray]:
    """Tissue codes and labels of the static surroundings at world points (N, 3) mm."""
    p = points
    x = p[:, 0] - body.centre[0]
    y = p[:, 1] - body.centre[1]
    r = np.sqrt((x / body.half_width) ** 2 + (y / body.half_depth) ** 2)
    # Depth under the skin, mm (exact on the axes, close elsewhere).
    depth = (1 - r) * np.sqrt(body.half_width * body.half_depth)
    tissue = np.full(len(p), AIR, np.uint8)
    label = np.zeros(len(p), np.uint8)
    tissue[depth > 0] = FAT
    tissue[depth > body.fat] = MUSCLE
    inner = depth > body.fat + body.chest_wall
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


def heart_extent(heart: Heart) -> float:
    """Radius (mm) about the ED base beyond which no heart structure reaches."""
    return float(heart.lv_length + heart.apex_wall * 1.3 + heart.wall * 2 + 20)


def paint_heart(loc: LocalPoints, st: HeartState, tissue: np.ndarray, label: np.ndarray) -> None:
    """Overwrite ``tissue`` and ``label`` (1D, aligned with ``loc``) with the heart at the
    instant ``st``. Later structures override earlier ones."""
    h = st.heart
    e = h.lv_ellipticity
    a = loc.a - np.float32(st.descent)  # a relative to the moving base
    x, y = loc.x, loc.y
    ro_ed = h.lv_radius + h.wall
    # --- RV: an ellipsoid beside the LV whose septal part the LV epicardium takes away.
    rv_cx = 0.7 * ro_ed
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
    root2 = root1 + 45.0 * up / np.linalg.norm(up)
    pts = np.stack([a, x, y], axis=1)
    ao_d = np.minimum(_capsule_dist(pts, root0, root1), _capsule_dist(pts, root1, root2))
    in_ao = ao_d < r_ao
    # Paint, back to front.
    in_fat = (fat_q < 1) & (a >= -6)
    in_fat |= (rv_qw < 1.15) & (a >= -6)
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
    ao_wall = (ao_d < r_ao + 2) & above & ~in_ao
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
    # Papillary muscles: two columns in the cavity (labelled LV cavity, as in ACDC).
    pr = h.papillary_radius * (1 + 0.3 * st.c)
    for ang in (-2.3, 2.3):
        d2 = np.array([0.0, -np.cos(ang) * 0.62, np.sin(ang) * 0.62 * e]) * st.ri
        p0 = d2 + np.array([0.38 * st.li, 0, 0])
        p1 = d2 * 0.8 + np.array([0.72 * st.li, 0, 0])
        pm = (_capsule_dist(pts, p0, p1) < pr) & lv
        tissue[pm] = MYO
