"""Which view is which: view types from series names and from plane geometry.

Names (SeriesDescription, ProtocolName, folder names such as the Kaggle DSB ``sax_12``,
``2ch_3``, ``4ch_7``) are lower-cased and split into words first. Geometry decides when the
name says nothing: a SAX stack is >= 3 parallel slices whose normal is within
:data:`SAX_MAX_ANGLE_DEG` of the typical cardiac long axis; a long-axis view is a plane that
contains the long axis of the study's SAX stack (the stack normal through its centre); which
chamber view it is comes from its rotation about that axis (a heuristic, said so in the
reason). Every decision returns the reason, which ingest records.

Localizers (scouts) are told from the cine views they resemble (a pseudo-2CH localizer and a
2CH cine share a view type) by :func:`localizer_evidence`: a series description or ImageType
that says localizer decides; otherwise a single-frame series in an exam that has cines is a
localizer when its slices are thicker than the cines' (by :data:`LOCALIZER_THICKER_MM`) or
when a cine of the same view is also in the exam. Localizers of the 2CH, 4CH and SAX views
become ``loc_2ch``, ``loc_4ch`` and ``loc_sax`` (:data:`planessl.study.LOCALIZER_OF`).
"""

from __future__ import annotations

import re

import numpy as np

from planessl.geometry import CARDIAC_APEX_DIRECTION, Plane

#: A stack whose normal is further than this from the typical long axis is not called SAX
#: from geometry alone (degrees).
SAX_MAX_ANGLE_DEG = 60.0
#: A long-axis plane contains the SAX stack's axis within this angle (degrees) ...
LAX_MAX_AXIS_ANGLE_DEG = 30.0
#: ... and passes within this distance of the stack centre (mm).
LAX_MAX_CENTRE_DISTANCE_MM = 30.0

_NAME_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("3ch", re.compile(r"\b(3 ?ch|3 ?chamber|three ?chamber|3 ?cv|lvot|3ch\d*)\b")),
    ("2ch", re.compile(r"\b(2 ?ch|2 ?chamber|two ?chamber|2 ?cv|vla|2ch\d*)\b")),
    ("4ch", re.compile(r"\b(4 ?ch|4 ?chamber|four ?chamber|4 ?cv|hla|4ch\d*)\b")),
    ("sax", re.compile(r"\b(sax|sa|sa ?stack|short ?axis|shortaxis|sht ?ax|sa ?cine|sax\d+)\b")),
    ("sagittal", re.compile(r"\b(sag|sagittal)\b")),
    ("coronal", re.compile(r"\b(cor|coronal)\b")),
    ("axial", re.compile(r"\b(ax|axial|tra|transverse|transversal)\b")),
]
_LAX = re.compile(r"\b(lax|long ?axis)\b")
_LOCALIZER = re.compile(r"\b(loc|localizer|localiser|scout|survey|tri ?pilot|pilot|3 ?plane)\b")


def normalise_name(text: str) -> str:
    """Lower-case words separated by single spaces (``"CINE_sax-5"`` -> ``"cine sax 5"``)."""
    return " ".join(re.split(r"[^a-z0-9]+", text.lower())).strip()


def view_from_name(text: str, knee: bool = False) -> tuple[str | None, str]:
    """The view a series name states, and the word that says so (``(None, "")`` if none)."""
    name = normalise_name(text)
    for view, pattern in _NAME_PATTERNS:
        if view in ("sagittal", "coronal", "axial") and not knee:
            continue
        m = pattern.search(name)
        if m:
            return view, m.group(0)
    m = _LAX.search(name)
    if m:
        return "lax", m.group(0)
    return None, ""


def is_localizer_name(text: str) -> bool:
    return bool(_LOCALIZER.search(normalise_name(text)))


#: A single-frame series whose slices are at least this much thicker than the exam's cines'
#: is a localizer (mm).
LOCALIZER_THICKER_MM = 1.0


def localizer_word(text: str) -> str:
    """The word of a series name that says localizer (``""`` if none)."""
    m = _LOCALIZER.search(normalise_name(text))
    return m.group(0) if m else ""


def localizer_evidence(text: str, image_type_localizer: bool, n_frames: int,
                       thickness: float | None, cine_frames: int,
                       cine_thickness: float | None, cine_of_same_view: bool
                       ) -> tuple[bool, str]:
    """Whether a series is a localizer rather than a (cine) view, and why.

    Args:
        text: the series' name (description, protocol, folder).
        image_type_localizer: its ImageType holds ``LOCALIZER``.
        n_frames: its frames per slice position.
        thickness: its slice thickness (mm), or ``None``.
        cine_frames: the most frames of any series of the exam (1: the exam has no cine).
        cine_thickness: the median slice thickness of the exam's cines (mm), or ``None``.
        cine_of_same_view: a cine (multi-frame, not named a localizer) of the view type the
            series' name states is in the exam.

    Returns:
        ``(is_localizer, reason)``; the reason is ``""`` when nothing points to a localizer.
    """
    named = []
    if image_type_localizer:
        named.append("ImageType says LOCALIZER")
    word = localizer_word(text)
    if word:
        named.append(f"series description says '{word}'")
    other = []
    single = n_frames == 1 and cine_frames > 1
    if single:
        other.append(f"single frame (the exam's cines have {cine_frames})")
    thicker = (single and thickness is not None and cine_thickness is not None
               and thickness >= cine_thickness + LOCALIZER_THICKER_MM)
    if thicker:
        other.append(f"{thickness:.1f} mm slices (cines {cine_thickness:.1f} mm)")
    if single and cine_of_same_view:
        other.append("a cine of the same view is in the exam")
    if named:
        return True, "localizer: " + "; ".join(named + other)
    if single and (thicker or cine_of_same_view):
        return True, "localizer: " + "; ".join(other)
    if single:
        return False, ("not a localizer: " + "; ".join(other) + ", but neither named a "
                       "localizer nor thicker than the cines nor beside a cine of its view")
    return False, ""


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between two lines (direction sign ignored), degrees in [0, 90]."""
    c = abs(float(np.dot(u, v)) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return float(np.degrees(np.arccos(min(1.0, c))))


def sax_from_geometry(planes: list[Plane]) -> tuple[bool, str]:
    """Whether parallel planes form a SAX stack by geometry, and why (not)."""
    n = len(planes)
    ang = angle_deg(planes[0].normal, CARDIAC_APEX_DIRECTION)
    if n < 3:
        return False, f"{n} parallel slice(s): a SAX stack needs >= 3"
    if ang > SAX_MAX_ANGLE_DEG:
        return False, (f"stack of {n} parallel slices, normal {ang:.0f} deg from the typical "
                       f"cardiac long axis (> {SAX_MAX_ANGLE_DEG:.0f}): not a SAX stack")
    return True, (f"stack of {n} parallel slices, normal {ang:.0f} deg from the typical cardiac "
                  f"long axis")


def long_axis_of(stack: list[Plane]) -> tuple[np.ndarray, np.ndarray]:
    """``(point, direction)`` of the LV long axis estimated from a SAX stack: the stack normal
    through the mean centre of its slices."""
    centre = np.mean([p.centre_world() for p in stack], axis=0)
    return centre, np.asarray(stack[0].normal)


def lax_from_geometry(plane: Plane, sax_stack: list[Plane] | None) -> tuple[str | None, str]:
    """Chamber view of a single plane from geometry: ``(view or None, reason)``.

    The plane must contain the SAX stack's long axis. Rotation about that axis decides:
    the 4CH (horizontal long axis) plane's normal points roughly superior-inferior, the
    2CH (vertical long axis) normal roughly left-right, the 3CH (LVOT) lies between. This
    is a heuristic for unnamed series; named series never depend on it.
    """
    if not sax_stack:
        return None, "no SAX stack in the study to relate the plane to"
    point, axis = long_axis_of(sax_stack)
    tilt = 90.0 - angle_deg(plane.normal, axis)  # angle between the axis and the plane
    dist = abs(float(np.dot(point - plane.origin, plane.normal)))
    if tilt > LAX_MAX_AXIS_ANGLE_DEG or dist > LAX_MAX_CENTRE_DISTANCE_MM:
        return None, (f"does not contain the SAX stack's long axis (axis {tilt:.0f} deg out of "
                      f"the plane, stack centre {dist:.0f} mm away)")
    m = np.asarray(plane.normal) - np.dot(plane.normal, axis) * axis
    sup = np.array([0.0, 0.0, 1.0]) - axis[2] * axis
    if np.linalg.norm(m) < 1e-6 or np.linalg.norm(sup) < 1e-6:
        return None, "long axis is vertical: chamber view cannot be told from geometry"
    phi = angle_deg(m, sup)
    view = "4ch" if phi < 30 else ("2ch" if phi > 60 else "3ch")
    return view, (f"by geometry (heuristic): contains the SAX long axis (within {tilt:.0f} deg, "
                  f"{dist:.0f} mm), normal {phi:.0f} deg from superior about the axis")


def knee_view_from_geometry(plane: Plane) -> tuple[str, str]:
    """Sagittal / coronal / axial from the dominant axis of the normal (LPS)."""
    k = int(np.argmax(np.abs(plane.normal)))
    view = ("sagittal", "coronal", "axial")[k]
    return view, f"normal closest to the patient's {'LR AP SI'.split()[k]} axis"
