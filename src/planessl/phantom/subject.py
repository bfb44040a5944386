"""One synthetic cine CMR study: anatomy + cycle + planning + rendering -> :class:`Study`.

``make_study(seed, index)`` is deterministic: its random generator is seeded from
``(seed, index)`` only, so subject ``index`` is the same whichever other subjects are made
and in whatever process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planessl.geometry import Plane
from planessl.phantom.anatomy import (Anatomy, CLASS_NAMES, LocalPoints, body_tissue,
                                      heart_box, paint_heart, sample_anatomy)
from planessl.phantom.cycle import CardiacCycle, make_cycle
from planessl.phantom.planning import (LocalizerSettings, PlanningSettings, plan_localizers,
                                      plan_views)
from planessl.phantom.render import bias_field, render, sample_contrast, texture
from planessl.study import Series, Study


@dataclass(frozen=True)
class Preset:
    """Size of a generated study."""

    frames: int
    planning: PlanningSettings
    localizer: LocalizerSettings = LocalizerSettings()


#: ``small``: 128 x 128 matrices and 8 frames, for tests and CPU demos (a fraction of a second
#: per subject); ``full``: realistic cine (25 frames, scanner-like FOV and matrices).
PRESETS = {
    "small": Preset(frames=8, planning=PlanningSettings(spacing=(1.8, 2.0), matrix=128),
                    localizer=LocalizerSettings(spacing=(2.2, 2.8), matrix=128)),
    "full": Preset(frames=25, planning=PlanningSettings()),
}

VIEW_ORDER = ("sax", "2ch", "3ch", "4ch")
#: Localizer series that ``make_study(..., localizers=True)`` appends after the cines.
LOCALIZER_ORDER = ("loc_2ch", "loc_4ch", "loc_sax")


def subject_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of subject ``index`` of a run with ``seed``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0x9E37])


def localizer_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of the subject's localizers: a stream of its own, so that asking for
    localizers leaves every cine of the subject unchanged."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0x10C2])


def study_id(seed: int, index: int) -> str:
    return f"phantom-{int(seed)}-{int(index):05d}"


def _plane_points(plane: Plane) -> np.ndarray:
    i, j = np.meshgrid(np.arange(plane.shape[0]), np.arange(plane.shape[1]), indexing="ij")
    return plane.pixel_to_world(i, j).reshape(-1, 3)


def sample_slice(anatomy: Anatomy, plane: Plane, contraction: np.ndarray,
                 shift: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tissue codes and labels ``(F, H, W)`` of one plane at each contraction value.

    ``shift`` (mm, LPS) moves the anatomy (a breath-hold position differing from the
    planning scan's).
    """
    pts = _plane_points(plane)
    if shift is not None:
        pts = pts - shift
    pts = pts.astype(np.float32)
    tissue0, label0 = body_tissue(pts, anatomy.body)
    heart = anatomy.heart
    loc = LocalPoints.from_world(pts, heart)
    (a_lo, a_hi), x_max, y_max = heart_box(heart)
    near = ((loc.a > a_lo) & (loc.a < a_hi) & (np.abs(loc.x) < x_max)
            & (np.abs(loc.y) < y_max))
    loc = loc.subset(near)
    frames = len(contraction)
    tissue = np.repeat(tissue0[None], frames, axis=0)
    label = np.repeat(label0[None], frames, axis=0)
    if near.any():
        states = {}
        for f, c in enumerate(contraction):
            key = float(c)
            if key not in states:
                t_sub, l_sub = tissue0[near].copy(), label0[near].copy()
                paint_heart(loc, heart.state(key), t_sub, l_sub)
                states[key] = (t_sub, l_sub)
            tissue[f, near], label[f, near] = states[key]
    shape = (frames,) + plane.shape
    return tissue.reshape(shape), label.reshape(shape)


def make_study(seed: int, index: int, preset: str = "small", *, frames: int | None = None,
               breath_hold_mm: float = 0.0, noise: bool = True,
               category: int | None = None, localizers: bool = False) -> Study:
    """A synthetic multi-view cine CMR study.

    Args:
        seed, index: the run's seed and the subject's index (together they fix everything).
        preset: ``"small"`` (fast, 128 px, 8 frames) or ``"full"`` (realistic cine).
        frames: cardiac phases per R-R interval (default from the preset).
        breath_hold_mm: sd (mm, mostly head-foot) of the anatomy's shift between series and
            between SAX slices, as from separate breath-holds; 0 keeps all views aligned.
        noise: add Rician noise.
        category: LV phenotype index in :data:`CLASS_NAMES` (default: random).
        localizers: also acquire, as a technologist does first, the localizers ``loc_2ch``,
            ``loc_4ch`` (pseudo-2CH / 4CH single slices) and ``loc_sax`` (a stack of 3-5
            thick slices): single frame (the ED phase), thicker slices, their own field of
            view, planned with larger errors (tilted 8-15 deg from the ideal planes, shifted
            a few mm; see :func:`planessl.phantom.planning.plan_localizers`). Drawn from a
            generator of their own (:func:`localizer_rng`): the cines are the same with or
            without them. The cines (SAX stack, 2CH, 3CH, 4CH) are the targets a planner
            prescribes from the localizers; :meth:`Study.target_planes` gives their planes.

    Returns:
        A :class:`Study` with series ``sax`` (base to apex), ``2ch``, ``3ch``, ``4ch`` (then
        ``loc_2ch``, ``loc_4ch``, ``loc_sax`` with ``localizers``); labels for every frame;
        ``targets = {"class": k}``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown phantom preset {preset!r}; known: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    n_frames = int(frames if frames is not None else p.frames)
    if n_frames < 2:
        raise ValueError(f"a cine needs at least 2 frames, got {n_frames}")
    rng = subject_rng(seed, index)
    anatomy = sample_anatomy(rng, category)
    cycle: CardiacCycle = make_cycle(rng, n_frames)
    views = plan_views(anatomy, rng, p.planning)
    contrast = sample_contrast(rng, anatomy.heart.base)
    contraction = cycle.contraction()
    series = []
    for view in VIEW_ORDER:
        planes = views[view]
        series_shift = (rng.normal(0, breath_hold_mm, 3) * np.array([0.3, 0.3, 1.0])
                        if breath_hold_mm > 0 else None)
        if breath_hold_mm > 0 and view == "sax":  # one breath-hold per SAX slice
            shifts = [rng.normal(0, breath_hold_mm, 3) * np.array([0.3, 0.3, 1.0])
                      for _ in planes]
        else:
            shifts = [series_shift] * len(planes)
        pixels, labels = _render_planes(anatomy, planes, contraction, contrast, rng, shifts, noise)
        series.append(Series(
            name=view, view=view, planes=planes, pixels=pixels, labels=labels,
            labelled_frames=list(range(n_frames)), frame_times=cycle.frame_times(),
            ed_frame=cycle.ed_frame, es_frame=cycle.es_frame, spacing_known=True,
            view_reason="phantom: planned view"))
    if localizers:
        series.extend(_localizer_series(anatomy, cycle, contrast, seed, index, p.localizer,
                                        breath_hold_mm, noise))
    return Study(id=study_id(seed, index), series=series,
                 targets={"class": int(anatomy.heart.category)}, group="cardiac")


def _render_planes(anatomy: Anatomy, planes: list[Plane], contraction: np.ndarray, contrast,
                   rng: np.random.Generator, shifts: list, noise: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels, labels)`` of one series: each plane sampled through the cycle with its
    breath-hold shift (mm, or ``None``), then rendered with bias field and texture."""
    tissues, labels, biases, textures = [], [], [], []
    for plane, shift in zip(planes, shifts):
        t, lab = sample_slice(anatomy, plane, contraction, shift)
        tissues.append(t)
        labels.append(lab)
        pts = _plane_points(plane)
        biases.append(bias_field(pts, contrast).reshape(plane.shape))
        textures.append(texture(pts if shift is None else pts - shift, contrast)
                        .reshape(plane.shape))
    pixels = render(np.stack(tissues), np.stack(biases)[:, None], contrast, rng, noise=noise,
                    tex=np.stack(textures)[:, None])
    return pixels, np.stack(labels)


def _localizer_series(anatomy: Anatomy, cycle: CardiacCycle, contrast, seed: int, index: int,
                      settings: LocalizerSettings, breath_hold_mm: float, noise: bool
                      ) -> list[Series]:
    """The localizer series of a subject (single frame at ED), from :func:`localizer_rng`."""
    rng = localizer_rng(seed, index)
    planned, tilts = plan_localizers(anatomy, rng, settings)
    ed = int(cycle.ed_frame)
    contraction = cycle.contraction()[ed:ed + 1]
    out = []
    for view in LOCALIZER_ORDER:
        planes = planned[view]
        shift = (rng.normal(0, breath_hold_mm, 3) * np.array([0.3, 0.3, 1.0])
                 if breath_hold_mm > 0 else None)  # one breath-hold per localizer
        pixels, labels = _render_planes(anatomy, planes, contraction, contrast, rng,
                                        [shift] * len(planes), noise)
        out.append(Series(
            name=view, view=view, planes=planes, pixels=pixels, labels=labels,
            labelled_frames=[0], frame_times=None, ed_frame=None, es_frame=None,
            spacing_known=True,
            view_reason=f"phantom: localizer, tilted {tilts[view]:.1f} deg from the ideal plane"))
    return out


def make_anatomy(seed: int, index: int, preset: str = "small", frames: int | None = None,
                 category: int | None = None
                 ) -> tuple[Anatomy, CardiacCycle, dict[str, list[Plane]]]:
    """The anatomy, cycle and planes that :func:`make_study` uses for this subject
    (drawn in the same order from the same generator)."""
    p = PRESETS[preset]
    rng = subject_rng(seed, index)
    anatomy = sample_anatomy(rng, category)
    cycle = make_cycle(rng, int(frames if frames is not None else p.frames))
    return anatomy, cycle, plan_views(anatomy, rng, p.planning)


def subject_info(seed: int, index: int) -> dict[str, float]:
    """Height (cm) and weight (kg) of a subject, for layouts that record them (ACDC); drawn
    from their own stream so they do not change the images."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0xB0D7])
    height = float(np.round(rng.uniform(155, 195), 1))
    bmi = rng.uniform(19, 32)
    return {"height_cm": height, "weight_kg": float(np.round(bmi * (height / 100) ** 2, 1))}
