"""Synthetic knee MR exams: sagittal, coronal and axial stacks with exact geometry and
study-level labels (abnormal, ACL tear, meniscal tear, effusion).

Anatomy (simple solids in a knee frame: ``u`` medial -> lateral, ``v`` posterior ->
anterior, ``w`` inferior -> superior, mm, origin on the joint line): subcutaneous fat and
muscle (cylinders along the leg), femur (shaft and two condyles, cortex and fatty marrow),
tibia (plateau and shaft), patella, fibula head, articular cartilage (femoral, tibial,
patellar), medial and lateral menisci (wedge-shaped rings in the joint space), cruciate
(ACL, PCL: capsules through the intercondylar notch) and collateral ligaments (MCL, LCL),
patellar tendon, Hoffa's fat pad and joint fluid (suprapatellar recess, a film around the
joint). The frame is turned by a random few degrees (leg rotation and flexion) and placed
in LPS with the lateral direction toward the patient's left (+x) for a left knee and right
(-x) for a right knee (:attr:`Study.laterality`).

Labels are rendered, not flags: an ACL tear removes the middle of the ligament and puts
fluid-bright oedema in the gap (and a wavy, thinner remnant); a meniscal tear is a
fluid-bright line through the posterior horn of one meniscus reaching its surface; an
effusion distends the suprapatellar recess and the fluid film. ``abnormal`` is any of them.

Contrast: proton density with fat suppression (the usual knee sequence): fluid bright,
cartilage intermediate, muscle and suppressed fat / marrow dark-grey, menisci, ligaments,
tendons and cortical bone near black. Noise, bias field, blur and texture as in the cardiac
phantom (:mod:`planessl.phantom.render`).

Planning: each stack is planned on the knee frame with its own errors (tilt, shift), field
of view, matrix, pixel spacing, slice gap and thickness; DICOM orientations as scanners
write them (sagittal rows anterior -> posterior across, inferior down; coronal right ->
left, inferior down; axial right -> left, anterior -> posterior down).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.spatial.transform import Rotation

from planessl.geometry import Plane
from planessl.phantom.planning import oriented_plane
from planessl.phantom.render import Contrast, bias_field, texture
from planessl.study import KNEE_VIEWS, Series, Study

#: Tissue codes of the knee phantom.
KNEE_TISSUES = ("air", "fat", "muscle", "cortex", "marrow", "cartilage", "fibro", "fluid")
T = {name: k for k, name in enumerate(KNEE_TISSUES)}
#: Relative intensity ranges (fluid = 1) of proton density, fat suppressed; "fibro":
#: menisci, ligaments, tendons.
KNEE_INTENSITY = {"air": (0.0, 0.0), "fat": (0.12, 0.3), "muscle": (0.25, 0.38),
                  "cortex": (0.02, 0.05), "marrow": (0.1, 0.22), "cartilage": (0.5, 0.65),
                  "fibro": (0.03, 0.08), "fluid": (1.0, 1.0)}
KNEE_TEXTURE = {"air": 0.0, "fat": 0.12, "muscle": 0.15, "cortex": 0.0, "marrow": 0.25,
                "cartilage": 0.06, "fibro": 0.05, "fluid": 0.03}
#: Study-level targets of the knee phantom.
KNEE_TARGETS = ("abnormal", "acl", "meniscus", "effusion")


@dataclass(frozen=True)
class KneeStackSettings:
    """Ranges the planner draws from for one stack (mm, pixels)."""

    fov: tuple[float, float]
    matrix: int
    slices: int
    gap: tuple[float, float]
    thickness_fraction: float = 0.9


@dataclass(frozen=True)
class KneePreset:
    stacks: dict
    angle_error_deg: float = 3.0
    offset_error_mm: float = 3.0


KNEE_PRESETS = {
    "small": KneePreset({"sagittal": KneeStackSettings((140, 160), 96, 16, (5.2, 6.0)),
                         "coronal": KneeStackSettings((140, 160), 96, 14, (5.0, 5.8)),
                         "axial": KneeStackSettings((125, 145), 96, 16, (5.5, 6.2))}),
    "full": KneePreset({"sagittal": KneeStackSettings((140, 160), 320, 30, (3.0, 3.6)),
                        "coronal": KneeStackSettings((140, 160), 320, 26, (3.0, 3.6)),
                        "axial": KneeStackSettings((130, 150), 288, 28, (3.3, 4.0))}),
}


@dataclass(frozen=True)
class KneeAnatomy:
    """One knee: its frame in LPS, size and pathology."""

    centre: np.ndarray          # joint centre, LPS mm
    axes: np.ndarray            # rows: u (lateral), v (anterior), w (superior) in LPS
    scale: float                # overall size factor
    laterality: str             # "left" / "right"
    acl_tear: bool
    meniscal_tear: str | None   # None, "medial" or "lateral"
    effusion: bool
    tear_height: float          # w of the meniscal tear line (mm, in the meniscus)
    acl_gap: tuple[float, float]  # fraction of the ACL length removed

    def local(self, pts: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> knee frame (N, 3) in mm of the unscaled knee."""
        return ((pts - self.centre) @ self.axes.T / self.scale).astype(np.float32)

    @property
    def targets(self) -> dict[str, int]:
        acl, men, eff = int(self.acl_tear), int(self.meniscal_tear is not None), int(self.effusion)
        return {"abnormal": int(acl or men or eff), "acl": acl, "meniscus": men, "effusion": eff}


def sample_knee(rng: np.random.Generator, acl: bool | None = None,
                meniscus: bool | None = None, effusion: bool | None = None,
                laterality: str | None = None) -> KneeAnatomy:
    """A random knee; each pathology random (ACL 30 %, meniscus 35 %, effusion 25 %, or
    70 % with an ACL tear) unless given."""
    # every draw is made whatever is given, so that fixing a label leaves the rest alike
    draws = rng.random(5)
    side = laterality or ("left" if draws[0] < 0.5 else "right")
    acl_tear = bool(draws[1] < 0.3) if acl is None else bool(acl)
    men = bool(draws[2] < 0.35) if meniscus is None else bool(meniscus)
    eff = bool(draws[3] < (0.7 if acl_tear else 0.25)) if effusion is None else bool(effusion)
    lateral = np.array([1.0, 0, 0]) if side == "left" else np.array([-1.0, 0, 0])
    axes = np.stack([lateral, np.array([0, -1.0, 0]), np.array([0, 0, 1.0])])
    turn = Rotation.from_rotvec(rng.normal(0, np.deg2rad(4.0), 3)).as_matrix()
    axes = axes @ turn.T
    return KneeAnatomy(centre=rng.normal(0, 15, 3), axes=axes, scale=float(rng.uniform(0.9, 1.1)),
                       laterality=side, acl_tear=acl_tear,
                       meniscal_tear=("medial" if draws[4] < 0.65 else "lateral") if men else None,
                       effusion=eff, tear_height=float(rng.uniform(-0.2, 1.6)),
                       acl_gap=(float(rng.uniform(0.3, 0.4)), float(rng.uniform(0.6, 0.7))))


# ----------------------------------------------------------------------------- shapes
def _ellipsoid(p: np.ndarray, c, r) -> np.ndarray:
    d = (p - np.asarray(c, np.float32)) / np.asarray(r, np.float32)
    return (d * d).sum(1)


def _capsule(p: np.ndarray, a, b, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(inside mask, position t in [0, 1] along the axis) of a capsule from a to b."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    ab = b - a
    t = np.clip(((p - a) @ ab) / float(ab @ ab), 0, 1)
    d = p - (a + t[:, None] * ab)
    return (d * d).sum(1) <= radius * radius, t


CONDYLE = {"medial": (-21.0, 0.0, 20.0), "lateral": (21.0, -1.0, 20.0)}
CONDYLE_R = (16.0, 27.0, 20.0)
MENISCUS = {"medial": (-20.0, -2.0), "lateral": (20.0, -2.0)}


def knee_tissue(p: np.ndarray, k: KneeAnatomy) -> np.ndarray:
    """Tissue code (uint8) of points in the knee frame ``p`` (N, 3)."""
    u, v, w = p[:, 0], p[:, 1], p[:, 2]
    out = np.zeros(len(p), np.uint8)
    rr = (u / 62.0) ** 2 + ((v - 2) / 55.0) ** 2
    out[rr <= 1] = T["fat"]
    muscle = ((u / 54.0) ** 2 + ((v + 4) / 47.0) ** 2 <= 1) & ~((v > 15) & (np.abs(w) < 60))
    out[muscle] = T["muscle"]
    # joint fluid: suprapatellar recess and a film around the joint (effusion: distended)
    if k.effusion:
        fluid = _ellipsoid(p, (0, 28, 42), (30, 7, 28)) <= 1
        fluid |= _ellipsoid(p, (0, -2, 5), (48, 36, 13)) <= 1
    else:
        fluid = _ellipsoid(p, (0, 25, 40), (22, 1.5, 16)) <= 1
        fluid |= _ellipsoid(p, (0, -2, 3), (40, 28, 5)) <= 1
    out[fluid & (rr <= 1)] = T["fluid"]
    out[_ellipsoid(p, (0, 26, -2), (19, 9, 11)) <= 1] = T["fat"]  # Hoffa's fat pad
    # menisci: wedge rings in the joint space (painted before the bones and cartilage)
    for side, (cu, cv) in MENISCUS.items():
        rho = np.sqrt(((u - cu) / 1.0) ** 2 + ((v - cv) / 1.25) ** 2)
        ring = (rho >= 9.5) & (rho <= 17.5) & (w >= -2.5) & (w <= -2.5 + 0.75 * (rho - 9.5))
        out[ring] = T["fibro"]
        if k.meniscal_tear == side:
            line = ring & (np.abs(w - k.tear_height) < 0.9) & (v - cv < -4)
            out[line] = T["fluid"]
    # cartilage shells, then bone
    fem_cart = np.zeros(len(p), bool)
    fem_bone = np.zeros(len(p), bool)
    for cu, cv, cw in CONDYLE.values():
        e = _ellipsoid(p, (cu, cv, cw), CONDYLE_R)
        fem_bone |= e <= 1
        fem_cart |= (_ellipsoid(p, (cu, cv, cw), np.add(CONDYLE_R, 2.5)) <= 1) & (w < cw + 8)
    shaft = (u / 17.0) ** 2 + ((v + 2) / 16.0) ** 2 <= 1
    fem_bone |= shaft & (w > 20)
    fem_bone |= (_ellipsoid(p, (0, -2, 26), (36, 24, 14)) <= 1) & (w > 18)  # metaphysis
    tib_bone = (_ellipsoid(p, (0, -2, -24), (40, 29, 21)) <= 1) & (w < -4)
    tib_bone |= ((u / 17.0) ** 2 + ((v + 1) / 15.0) ** 2 <= 1) & (w < -20)
    tib_cart = (_ellipsoid(p, (0, -2, -24), (40, 29, 23.5)) <= 1) & (w >= -4) & (w < -1.5)
    tib_cart &= ~(np.abs(u) < 6)  # intercondylar eminence: bare
    pat = _ellipsoid(p, (0, 40, 26), (21, 8, 17))
    pat_cart = (_ellipsoid(p, (0, 38.5, 26), (19, 8, 15)) <= 1) & (v < 40)
    out[fem_cart | tib_cart | pat_cart] = T["cartilage"]
    # ligaments and tendons
    acl, t = _capsule(p, (7, -12, 16), (3, 9, -2), 3.6)
    if k.acl_tear:
        lo, hi = k.acl_gap
        out[_capsule(p, (7, -12, 16), (3, 9, -2), 5.5)[0] & (t > lo) & (t < hi)] = T["fluid"]
        acl &= (t <= lo) | (t >= hi)
        acl &= _capsule(p, (7, -12, 16), (3, 9, -2), 2.4)[0] | (t < lo - 0.15)
    out[acl] = T["fibro"]
    out[_capsule(p, (-6, 3, 15), (-1, -19, -8), 4.5)[0]] = T["fibro"]       # PCL
    out[_capsule(p, (-39, -2, 35), (-37, -2, -45), 2.3)[0]] = T["fibro"]    # MCL
    out[_capsule(p, (39, -6, 28), (34, -20, -30), 2.3)[0]] = T["fibro"]     # LCL
    out[_capsule(p, (0, 45, 8), (0, 32, -38), 3.5)[0]] = T["fibro"]         # patellar tendon
    out[_capsule(p, (0, 36, 45), (0, 30, 80), 4.0)[0]] = T["fibro"]         # quadriceps tendon
    fib = (_ellipsoid(p, (30, -18, -36), (10, 10, 11)) <= 1)
    fib |= ((u - 30) ** 2 + (v + 18) ** 2 <= 36) & (w < -36)
    out[fem_bone | tib_bone | (pat <= 1) | fib] = T["marrow"]  # cortex: see _cortex
    return out


def _cortex(tissue: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Give bones a dark ~1.5 mm cortical rim in each 2D image (marrow eroded)."""
    from scipy.ndimage import binary_erosion

    out = tissue.copy()
    marrow = tissue == T["marrow"]
    px = max(1, int(round(1.5 / min(spacing))))
    inner = binary_erosion(marrow, iterations=px, border_value=1)
    out[marrow & ~inner] = T["cortex"]
    return out


def sample_knee_contrast(rng: np.random.Generator, centre: np.ndarray) -> Contrast:
    gain = rng.uniform(300, 1200)
    table = np.array([rng.uniform(*KNEE_INTENSITY[t]) for t in KNEE_TISSUES]) * gain
    amp = np.array([KNEE_TEXTURE[t] for t in KNEE_TISSUES]) * rng.uniform(0.6, 1.5, len(KNEE_TISSUES))
    direction = rng.normal(size=(12, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    waves = direction * (2 * np.pi / rng.uniform(4.0, 20.0, 12))[:, None]
    return Contrast(table=table.astype(np.float32), snr=float(rng.uniform(15, 40)),
                    bias_coef=rng.normal(0, 1, 6) * np.array([0.4, 0.4, 0.4, 0.2, 0.2, 0.2]),
                    bias_centre=np.asarray(centre, np.float64) + rng.normal(0, 30, 3),
                    blur_px=float(rng.uniform(0.3, 0.9)), waves=waves,
                    phases=rng.uniform(0, 2 * np.pi, 12), texture_amp=amp.astype(np.float32))


def render_knee(tissue: np.ndarray, bias: np.ndarray, tex: np.ndarray, contrast: Contrast,
                rng: np.random.Generator, noise: bool = True) -> np.ndarray:
    img = contrast.table[tissue] * np.clip(1 + contrast.texture_amp[tissue] * tex, 0.2, None)
    img = gaussian_filter(img, sigma=[0.0] * (img.ndim - 2) + [contrast.blur_px] * 2,
                          mode="nearest") * bias
    if noise:
        sd = np.float32(contrast.table.max() / contrast.snr)
        re = img + rng.standard_normal(img.shape, dtype=np.float32) * sd
        im = rng.standard_normal(img.shape, dtype=np.float32) * sd
        img = np.sqrt(re * re + im * im)
    return img.astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- planning
#: Per view: (normal axis, image-down axis, image-right hint axis) in the knee frame /
#: LPS; the normal is the knee frame's axis, the display follows scanner conventions.
def plan_knee(k: KneeAnatomy, rng: np.random.Generator, preset: KneePreset
              ) -> dict[str, list[Plane]]:
    """The planes of the three stacks (slices in acquisition order, along +normal)."""
    u, v, w = k.axes
    sup = w
    specs = {"sagittal": (u, -sup, np.array([0.0, 1.0, 0.0])),     # rows: A -> P across
             "coronal": (v, -sup, np.array([1.0, 0.0, 0.0])),      # rows: R -> L across
             "axial": (w, np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))}
    out = {}
    for view in KNEE_VIEWS:
        st = preset.stacks[view]
        normal, down, right = specs[view]
        turn = Rotation.from_rotvec(rng.normal(0, np.deg2rad(preset.angle_error_deg), 3)).as_matrix()
        normal = turn @ normal
        spacing = float(np.round(rng.uniform(*st.fov) / st.matrix, 4))
        gap = float(np.round(rng.uniform(*st.gap), 3))
        centre = k.centre + rng.normal(0, preset.offset_error_mm, 3)
        if view == "axial":
            centre = centre + 8 * k.scale * w  # axials centred a little above the joint line
        shape = (st.matrix, st.matrix)
        base = oriented_plane(centre, normal, down, spacing, shape, gap * st.thickness_fraction,
                              right_hint=right)
        n = np.asarray(base.normal)
        out[view] = [Plane(base.origin + (j - (st.slices - 1) / 2) * gap * n, base.row_dir,
                           base.col_dir, base.spacing, base.shape, base.thickness)
                     for j in range(st.slices)]
    return out


def knee_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0x4B4E])


def knee_study_id(seed: int, index: int) -> str:
    return f"knee-{int(seed)}-{int(index):05d}"


def _points(plane: Plane) -> np.ndarray:
    i, j = np.meshgrid(np.arange(plane.shape[0]), np.arange(plane.shape[1]), indexing="ij")
    return plane.pixel_to_world(i, j).reshape(-1, 3)


def make_knee_anatomy(seed: int, index: int, preset: str = "small", **labels
                      ) -> tuple[KneeAnatomy, dict[str, list[Plane]]]:
    """The anatomy and planes :func:`make_knee_study` uses (same draws)."""
    rng = knee_rng(seed, index)
    k = sample_knee(rng, **labels)
    return k, plan_knee(k, rng, KNEE_PRESETS[preset])


def make_knee_study(seed: int, index: int, preset: str = "small", *, noise: bool = True,
                    acl: bool | None = None, meniscus: bool | None = None,
                    effusion: bool | None = None, laterality: str | None = None) -> Study:
    """A synthetic knee exam: series ``sagittal``, ``coronal``, ``axial`` (single frame,
    slices along each stack's normal), ``group="knee"``, ``laterality``, targets
    ``abnormal``, ``acl``, ``meniscus``, ``effusion``. Deterministic in ``(seed, index)``
    (and the given labels); ``preset`` ``small`` (96 px, 14-16 slices, < 1 s) or ``full``."""
    if preset not in KNEE_PRESETS:
        raise ValueError(f"unknown knee phantom preset {preset!r}; known: {', '.join(KNEE_PRESETS)}")
    rng = knee_rng(seed, index)
    k = sample_knee(rng, acl, meniscus, effusion, laterality)
    planes_by_view = plan_knee(k, rng, KNEE_PRESETS[preset])
    contrast = sample_knee_contrast(rng, k.centre)
    series = []
    for view in KNEE_VIEWS:
        planes = planes_by_view[view]
        pts = np.concatenate([_points(p) for p in planes])
        shape = (len(planes), 1) + planes[0].shape
        tissue = knee_tissue(k.local(pts), k).reshape(len(planes), *planes[0].shape)
        tissue = np.stack([_cortex(t, planes[0].spacing) for t in tissue])[:, None]
        bias = bias_field(pts, contrast).reshape(shape)
        tex = texture(pts, contrast).reshape(shape)
        pixels = render_knee(tissue, bias, tex, contrast, rng, noise)
        series.append(Series(name=view, view=view, planes=planes, pixels=pixels,
                             spacing_known=True, view_reason="phantom: planned knee stack"))
    return Study(id=knee_study_id(seed, index), series=series, targets=k.targets, group="knee",
                 laterality=k.laterality)
