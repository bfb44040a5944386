"""Which view is which: view types from series names and from plane geometry.

Names (SeriesDescription, ProtocolName, folder names such as the Kaggle DSB ``sax_12``,
``2ch_3``, ``4ch_7``) are lower-cased and split into words first. Geometry decides when the
name says nothing: a SAX stack is >= 3 parallel slices whose normal is within
:data:`SAX_MAX_MEASURED_ANGLE_DEG` of the exam's measured long axis (without one, within
:data:`SAX_MAX_ANGLE_DEG` of the typical cardiac long axis); a long-axis view is a plane that
contains the exam's long axis; which chamber view it is comes from its rotation about that
axis (a heuristic, said so in the reason). Every decision returns the reason, which ingest
records.

Localizers (scouts) are told from the cine views they resemble by
:mod:`planessl.io.localizers`. A named view is checked against the exam's long axis when one
is known (:func:`exam_long_axis`: the cine SAX stack's normal, else the line where the 2CH
and 4CH planes cut each other, else the SAX localizer's normal): a plane named as a long-axis
view must not be perpendicular to it, a single slice named SAX must be; a one-slice cine that
no name places and that is perpendicular to the long axis is ``sax`` (one slice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from planessl.geometry import CARDIAC_APEX_DIRECTION, Plane

#: A stack whose normal is further than this from the typical long axis is not called SAX
#: from geometry alone (degrees).
SAX_MAX_ANGLE_DEG = 60.0
#: A long-axis plane contains the SAX stack's axis within this angle (degrees) ...
LAX_MAX_AXIS_ANGLE_DEG = 30.0
#: ... and passes within this distance of the stack centre (mm).
LAX_MAX_CENTRE_DISTANCE_MM = 30.0

#: View names as scanners and people write them, matched as whole words of the normalised
#: name (so ``sa`` never matches inside ``sag`` or ``psa``): ``2C``/``2CH``/``2-chamber``/
#: ``VLA``, ``3C``/``3-ch``/``LVOT``, ``4C``/``4CH``/``HLA``, ``SAX``/``SA``/``SAO`` (short
#: axis oblique)/``short-axis``. Checked in this order: ``LVOT 2CH`` is a 3CH.
_NAME_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("3ch", re.compile(r"\b(3 ?ch|3c|3 ?chamber|three ?chamber|3 ?cv|lvot|3ch\d*)\b")),
    ("2ch", re.compile(r"\b(2 ?ch|2c|2 ?chamber|two ?chamber|2 ?cv|vla|2ch\d*)\b")),
    ("4ch", re.compile(r"\b(4 ?ch|4c|4 ?chamber|four ?chamber|4 ?cv|hla|4ch\d*)\b")),
    ("sax", re.compile(r"\b(sax|sa|sao|sa ?stack|short ?axis|shortaxis|sht ?ax|sa ?cine|"
                       r"sax\d+)\b")),
    ("sagittal", re.compile(r"\b(sag|sagittal)\b")),
    ("coronal", re.compile(r"\b(cor|coronal)\b")),
    ("axial", re.compile(r"\b(ax|axial|tra|transverse|transversal)\b")),
]
_LAX = re.compile(r"\b(lax|long ?axis)\b")


def normalise_name(text: str) -> str:
    """Lower-case words separated by single spaces (``"CINE_sax-5"`` -> ``"cine sax 5"``)."""
    return " ".join(re.split(r"[^a-z0-9]+", text.lower())).strip()


def view_from_name(text: str, knee: bool = False) -> tuple[str | None, str]:
    """The view a series name states, and the word that says so (``(None, "")`` if none).

    >>> view_from_name("TF Cine Retro_iPAT 4C")
    ('4ch', '4c')
    >>> view_from_name("trufi_short-axis")
    ('sax', 'short axis')
    >>> view_from_name("PSA flow")
    (None, '')
    """
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


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between two lines (direction sign ignored), degrees in [0, 90]."""
    c = abs(float(np.dot(u, v)) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return float(np.degrees(np.arccos(min(1.0, c))))


#: With a long axis measured in the exam (:func:`exam_long_axis`) a SAX plane's normal lies
#: within this angle of it (degrees); a tighter test than :data:`SAX_MAX_ANGLE_DEG`, which
#: only knows the typical axis (a transversal stack lies within 60 deg of that).
SAX_MAX_MEASURED_ANGLE_DEG = 30.0


@dataclass(frozen=True)
class LongAxis:
    """The LV long axis of an exam: a point on it and its direction (LPS, mm), and what
    gave it (for reasons)."""

    point: np.ndarray
    direction: np.ndarray
    source: str


def sax_from_geometry(planes: list[Plane], axis: LongAxis | None = None
                      ) -> tuple[bool, str]:
    """Whether parallel planes form a SAX stack by geometry, and why (not): >= 3 slices
    whose normal lies within :data:`SAX_MAX_MEASURED_ANGLE_DEG` of the exam's measured long
    axis, or without one within :data:`SAX_MAX_ANGLE_DEG` of the typical cardiac axis."""
    n = len(planes)
    if axis is None:
        ang, limit, what = (angle_deg(planes[0].normal, CARDIAC_APEX_DIRECTION),
                            SAX_MAX_ANGLE_DEG, "the typical cardiac long axis")
    else:
        ang, limit, what = (angle_deg(planes[0].normal, axis.direction),
                            SAX_MAX_MEASURED_ANGLE_DEG, f"the long axis ({axis.source})")
    if n < 3:
        return False, f"{n} parallel slice(s): a SAX stack needs >= 3"
    if ang > limit:
        return False, (f"stack of {n} parallel slices, normal {ang:.0f} deg from {what} "
                       f"(> {limit:.0f}): not a SAX stack")
    return True, f"stack of {n} parallel slices, normal {ang:.0f} deg from {what}"


def long_axis_of(stack: list[Plane]) -> tuple[np.ndarray, np.ndarray]:
    """``(point, direction)`` of the LV long axis estimated from a SAX stack: the stack normal
    through the mean centre of its slices."""
    centre = np.mean([p.centre_world() for p in stack], axis=0)
    return centre, np.asarray(stack[0].normal)


#: Two long-axis planes closer than this angle (degrees) give no long axis by intersection.
MIN_LAX_PAIR_ANGLE_DEG = 20.0


def axis_from_planes(a: Plane, b: Plane) -> tuple[np.ndarray, np.ndarray] | None:
    """``(point, direction)`` of the line where two planes cut each other (the point nearest
    to the midpoint of their centres), or ``None`` when they are within
    :data:`MIN_LAX_PAIR_ANGLE_DEG` of parallel."""
    na, nb = np.asarray(a.normal, float), np.asarray(b.normal, float)
    if angle_deg(na, nb) < MIN_LAX_PAIR_ANGLE_DEG:
        return None
    d = np.cross(na, nb)
    d /= np.linalg.norm(d)
    # the point of both planes nearest to m: minimise |x - m|^2 s.t. na.x = ca, nb.x = cb
    m = (a.centre_world() + b.centre_world()) / 2.0
    ca, cb = float(na @ np.asarray(a.origin)), float(nb @ np.asarray(b.origin))
    mat = np.array([[na @ na, na @ nb], [nb @ na, nb @ nb]])
    lam = np.linalg.solve(mat, [ca - na @ m, cb - nb @ m])
    point = m + lam[0] * na + lam[1] * nb
    if d @ CARDIAC_APEX_DIRECTION < 0:
        d = -d
    return point, d


def exam_long_axis(sax_stacks: list[list[Plane]], lax_pairs: list[tuple[str, Plane, Plane]],
                   loc_sax: list[list[Plane]]) -> LongAxis | None:
    """The exam's LV long axis from the best evidence it has: the largest cine SAX stack
    (its normal through its centre), else the first pair of 2CH and 4CH planes that are not
    near parallel (``(what, 2CH plane, 4CH plane)``, cines before localizers; their line
    of intersection), else the largest SAX localizer stack; ``None`` without any."""
    stacks = [st for st in sax_stacks if len(st) >= 2]
    if stacks:
        point, d = long_axis_of(max(stacks, key=len))
        return LongAxis(point, d, "normal of the SAX stack")
    for what, a, b in lax_pairs:
        got = axis_from_planes(a, b)
        if got is not None:
            return LongAxis(got[0], got[1], f"where the {what} 2CH and 4CH planes cut")
    stacks = [st for st in loc_sax if len(st) >= 2]
    if stacks:
        point, d = long_axis_of(max(stacks, key=len))
        return LongAxis(point, d, "normal of the SAX localizer")
    return None


def axis_check(view: str, plane: Plane, axis: LongAxis | None) -> tuple[bool | None, str]:
    """Does the geometry of one plane agree with the view its name states?

    A long-axis view (2CH, 3CH, 4CH) contains the long axis: its normal is more than
    ``90 - SAX_MAX_MEASURED_ANGLE_DEG`` degrees from it; a SAX slice is perpendicular to
    it: its normal within :data:`SAX_MAX_MEASURED_ANGLE_DEG`. Returns ``(True, why)`` when
    it agrees, ``(False, why)`` when the plane is clearly the other kind, ``(None, "")``
    without an axis or for other views.
    """
    if axis is None or view not in ("2ch", "3ch", "4ch", "sax"):
        return None, ""
    ang = angle_deg(plane.normal, axis.direction)
    if view == "sax":
        if ang <= SAX_MAX_MEASURED_ANGLE_DEG:
            return True, (f"geometry agrees: perpendicular to the long axis (normal {ang:.0f} "
                          f"deg from it; {axis.source})")
        if ang >= 90.0 - SAX_MAX_MEASURED_ANGLE_DEG:
            return False, (f"but the plane contains the long axis (normal {ang:.0f} deg from "
                           f"it; {axis.source})")
        return True, (f"geometry undecided: normal {ang:.0f} deg from the long axis "
                      f"({axis.source})")
    if ang >= 90.0 - SAX_MAX_MEASURED_ANGLE_DEG:
        return True, (f"geometry agrees: contains the long axis (within {90 - ang:.0f} deg; "
                      f"{axis.source})")
    if ang <= SAX_MAX_MEASURED_ANGLE_DEG:
        return False, (f"but the plane is perpendicular to the long axis (normal {ang:.0f} "
                       f"deg from it; {axis.source})")
    return True, (f"geometry undecided: normal {ang:.0f} deg from the long axis "
                  f"({axis.source})")


def lax_from_geometry(plane: Plane, sax_stack: list[Plane] | None,
                      axis: LongAxis | None = None) -> tuple[str | None, str]:
    """Chamber view of a single plane from geometry: ``(view or None, reason)``.

    The plane must contain the long axis (``axis``, else the SAX stack's). Rotation about
    that axis decides: the 4CH (horizontal long axis) plane's normal points roughly
    superior-inferior, the 2CH (vertical long axis) normal roughly left-right, the 3CH
    (LVOT) lies between. This is a heuristic for unnamed series; named series never depend
    on it.
    """
    if axis is not None:
        point, direction, what = axis.point, np.asarray(axis.direction), axis.source
    elif sax_stack:
        (point, direction), what = long_axis_of(sax_stack), "normal of the SAX stack"
    else:
        return None, "no SAX stack in the study to relate the plane to"
    tilt = 90.0 - angle_deg(plane.normal, direction)  # angle between the axis and the plane
    dist = abs(float(np.dot(point - plane.origin, plane.normal)))
    if tilt > LAX_MAX_AXIS_ANGLE_DEG or dist > LAX_MAX_CENTRE_DISTANCE_MM:
        return None, (f"does not contain the long axis ({what}; axis {tilt:.0f} deg out of "
                      f"the plane, {dist:.0f} mm away)")
    m = np.asarray(plane.normal) - np.dot(plane.normal, direction) * direction
    sup = np.array([0.0, 0.0, 1.0]) - direction[2] * direction
    if np.linalg.norm(m) < 1e-6 or np.linalg.norm(sup) < 1e-6:
        return None, "long axis is vertical: chamber view cannot be told from geometry"
    phi = angle_deg(m, sup)
    view = "4ch" if phi < 30 else ("2ch" if phi > 60 else "3ch")
    return view, (f"by geometry (heuristic): contains the long axis ({what}; within "
                  f"{tilt:.0f} deg, {dist:.0f} mm), normal {phi:.0f} deg from superior about "
                  f"the axis")


def sax_slice_from_geometry(plane: Plane, axis: LongAxis | None) -> tuple[bool, str]:
    """Whether a single plane is a short-axis slice: its normal within
    :data:`SAX_MAX_MEASURED_ANGLE_DEG` of the exam's measured long axis."""
    if axis is None:
        return False, ""
    ang = angle_deg(plane.normal, axis.direction)
    if ang > SAX_MAX_MEASURED_ANGLE_DEG:
        return False, ""
    return True, (f"by geometry: one slice perpendicular to the long axis (normal {ang:.0f} "
                  f"deg from it; {axis.source})")


def knee_view_from_geometry(plane: Plane) -> tuple[str, str]:
    """Sagittal / coronal / axial from the dominant axis of the normal (LPS)."""
    k = int(np.argmax(np.abs(plane.normal)))
    view = ("sagittal", "coronal", "axial")[k]
    return view, f"normal closest to the patient's {'LR AP SI'.split()[k]} axis"
