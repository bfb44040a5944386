"""The in-memory model of a study that every part of planessl speaks.

Readers (``planessl.io``) and the phantom produce :class:`Study` objects; the cache
(``planessl.cache``) stores and returns them (pixel arrays then memory-mapped); datasets
and tasks consume them. Nothing here holds PHI: ids are opaque.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from planessl.geometry import Plane

#: View types planessl knows. Cardiac: short-axis stack and 2-, 3- (LVOT) and 4-chamber
#: long-axis views; knee: the three orthogonal planes; anything else is "other".
CARDIAC_VIEWS = ("sax", "2ch", "3ch", "4ch")
#: Cardiac localizers (scouts) a technologist acquires first to plan the views: a pseudo-2CH
#: and a pseudo-4CH single slice and a few thick SAX slices; single frame, thicker slices and
#: larger planning errors than the cines. Kept apart from the cine views they resemble.
LOCALIZER_VIEWS = ("loc_2ch", "loc_4ch", "loc_sax")
#: The cine view a localizer view resembles.
LOCALIZER_OF = {"2ch": "loc_2ch", "4ch": "loc_4ch", "sax": "loc_sax"}
#: Stacks of parallel slices (ordered base -> apex).
STACK_VIEWS = ("sax", "loc_sax")
KNEE_VIEWS = ("sagittal", "coronal", "axial")
#: Views whose multi-slice series carry a slice-location target (0 and 1 at anatomically
#: defined ends, see :func:`slice_direction`).
SLICE_LOCATION_VIEWS = ("sax",) + KNEE_VIEWS
#: Knee side assumed when a knee study does not say which knee it is (``laterality``
#: unknown): medial -> lateral of a sagittal stack then runs toward the patient's right.
DEFAULT_KNEE_LATERALITY = "right"
LATERALITIES = ("left", "right")
VIEW_TYPES = CARDIAC_VIEWS + LOCALIZER_VIEWS + KNEE_VIEWS + ("other",)

#: ACDC label convention used for every cardiac label map in planessl.
LABEL_NAMES = {0: "background", 1: "RV", 2: "myocardium", 3: "LV"}
#: Extra cardiac labels that a view may carry beyond the ACDC set (atria, aorta).
EXTRA_LABEL_NAMES = {4: "LA", 5: "RA", 6: "aorta"}


@dataclass
class Series:
    """One view of a study: ``S`` parallel slices x ``F`` frames of ``H x W`` images.

    Attributes:
        name: unique within the study, e.g. ``"sax"``, ``"4ch"``, ``"2ch_2"``.
        view: one of :data:`VIEW_TYPES`.
        planes: one :class:`Plane` per slice (for stacks ordered base → apex).
        pixels: ``(S, F, H, W)`` float32 intensities (may be a read-only memmap).
        labels: ``(S, F, H, W)`` uint8 label maps, or ``None``; valid only for
            ``labelled_frames``.
        labelled_frames: frame indices whose label maps are valid (e.g. ED and ES).
        frame_times: trigger time of each frame in ms, or ``None``.
        ed_frame, es_frame: end-diastolic / end-systolic frame indices, or ``None``.
        spacing_known: ``False`` when the source carries no pixel spacing (e.g. ACDC HDF5):
            the planes then hold a nominal 1 mm spacing that must not be used as mm.
        view_reason: why the series got its view type (for the ingest report).
    """

    name: str
    view: str
    planes: list[Plane]
    pixels: np.ndarray
    labels: np.ndarray | None = None
    labelled_frames: list[int] = field(default_factory=list)
    frame_times: list[float] | None = None
    ed_frame: int | None = None
    es_frame: int | None = None
    spacing_known: bool = True
    view_reason: str = ""

    def __post_init__(self) -> None:
        if self.view not in VIEW_TYPES:
            raise ValueError(f"unknown view type {self.view!r}; known: {', '.join(VIEW_TYPES)}")
        if self.pixels.ndim != 4:
            raise ValueError(f"series {self.name}: pixels must be (S, F, H, W), got {self.pixels.shape}")
        if len(self.planes) != self.pixels.shape[0]:
            raise ValueError(f"series {self.name}: {len(self.planes)} planes for "
                             f"{self.pixels.shape[0]} slices")
        if self.labels is not None and self.labels.shape != self.pixels.shape:
            raise ValueError(f"series {self.name}: labels {self.labels.shape} != pixels "
                             f"{self.pixels.shape}")

    @property
    def n_slices(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def image_shape(self) -> tuple[int, int]:
        return int(self.pixels.shape[2]), int(self.pixels.shape[3])


@dataclass
class Study:
    """All series of one examination of one subject.

    Attributes:
        id: opaque identifier (no PHI).
        series: the views of the study.
        targets: study-level labels for classification, e.g. ``{"class": 2}`` or
            ``{"abnormal": 1, "acl": 0, "meniscus": 1}``.
        group: ``"cardiac"`` or ``"knee"``.
        laterality: which knee a knee study images, ``"left"``, ``"right"`` or ``None``
            (unknown: :data:`DEFAULT_KNEE_LATERALITY` or a configured default is assumed
            where medial/lateral matters).
    """

    id: str
    series: list[Series]
    targets: dict[str, int] = field(default_factory=dict)
    group: str = "cardiac"
    laterality: str | None = None

    def views(self, view: str) -> list[Series]:
        """All series of one view type (in order)."""
        return [s for s in self.series if s.view == view]

    def planes_by_view(self, views: Sequence[str] | None = None) -> dict[str, list[Plane]]:
        """Every plane of each view type, e.g. for line targets."""
        out: dict[str, list[Plane]] = {}
        for s in self.series:
            if views is None or s.view in views:
                out.setdefault(s.view, []).extend(s.planes)
        return out

    def target_planes(self, views: Sequence[str] = CARDIAC_VIEWS) -> dict[str, Plane]:
        """One reference plane per view type present: a single-slice view's plane, a stack's
        middle slice (:func:`mid_slice_index`; for SAX the mid-ventricular slice); the first
        series of a view type when there are several. E.g. the true planes of the views a
        planner should prescribe from localizers."""
        out: dict[str, Plane] = {}
        for s in self.series:
            if s.view in views and s.view not in out and s.planes:
                out[s.view] = s.planes[mid_slice_index(s.planes)]
        return out

    @property
    def has_labels(self) -> bool:
        return any(s.labels is not None and s.labelled_frames for s in self.series)


def mid_slice_index(planes: Sequence[Plane]) -> int:
    """Index of the middle slice of a stack: the slice nearest the midpoint between the first
    and the last slice along the stack normal (for a regular stack of ``n`` slices,
    ``(n - 1) // 2``: with an even count, the more basal of the two middle slices of a
    base -> apex stack). For a SAX stack that runs from the mitral plane to the apex, this is
    the mid-ventricular slice."""
    if not planes:
        raise ValueError("an empty stack has no middle slice")
    normal = np.asarray(planes[0].normal, dtype=np.float64)
    pos = np.array([float(normal @ np.asarray(p.origin, dtype=np.float64)) for p in planes])
    mid = 0.5 * (pos[0] + pos[-1])
    dist = np.abs(pos - mid)
    return int(np.flatnonzero(dist <= dist.min() + 1e-6)[0])


def normalise_laterality(text: str | None) -> str | None:
    """``"left"`` / ``"right"`` from a DICOM Laterality / ImageLaterality value (``L``,
    ``R``) or free text that names one side (``"LEFT KNEE"``, ``"knee_rt"``); ``None`` when
    it names neither or both (``B``: bilateral)."""
    if not text:
        return None
    words = set(re.split(r"[^a-z]+", str(text).lower()))
    left = bool(words & {"l", "left", "lt", "links", "gauche", "sinister"})
    right = bool(words & {"r", "right", "rt", "rechts", "droit", "droite", "dexter"})
    if left == right:
        return None
    return "left" if left else "right"


def slice_direction(view: str, laterality: str | None = None) -> np.ndarray | None:
    """Unit LPS direction from relative slice location 0 to 1 for a stack of ``view``.

    Cardiac SAX: base -> apex (:data:`planessl.geometry.CARDIAC_APEX_DIRECTION`). Knee
    (LPS: +x patient left, +y posterior, +z superior): ``sagittal`` medial -> lateral, i.e.
    toward the patient's right (-x) for a right knee and left (+x) for a left knee
    (``laterality`` ``None``: :data:`DEFAULT_KNEE_LATERALITY`); ``coronal`` posterior ->
    anterior (-y); ``axial`` inferior -> superior (+z). ``None`` for other views.
    """
    from planessl.geometry import CARDIAC_APEX_DIRECTION

    if view in ("sax", "loc_sax"):
        return np.asarray(CARDIAC_APEX_DIRECTION, dtype=np.float64)
    if view == "sagittal":
        side = laterality or DEFAULT_KNEE_LATERALITY
        if side not in LATERALITIES:
            raise ValueError(f"laterality must be one of {', '.join(LATERALITIES)}, got {side!r}")
        return np.array([-1.0, 0.0, 0.0]) if side == "right" else np.array([1.0, 0.0, 0.0])
    if view == "coronal":
        return np.array([0.0, -1.0, 0.0])
    if view == "axial":
        return np.array([0.0, 0.0, 1.0])
    return None
