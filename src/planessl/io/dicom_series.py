"""Stacks and cines from the 2D images of one DICOM study.

Images are grouped by series, then split by frame of reference, orientation, image size and
pixel spacing (a series that mixes them becomes several groups; a minority size or spacing
within one orientation is skipped with its reason). Within a group, images at the same
position are the frames of a cine, ordered by trigger time; distinct positions are slices.
Single-slice groups of a SAX series (one series per slice, as in the Kaggle DSB layout or
many scanner exports) are merged into one stack. Stacks are ordered base -> apex with
:func:`planessl.geometry.stack_geometry`; views are named by :mod:`planessl.io.views`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from planessl.errors import GeometryError
from planessl.geometry import CARDIAC_APEX_DIRECTION, Plane, plane_angle_deg, stack_geometry
from planessl.io.dicom_records import ImageRecord
from planessl.io.sources import Skipped
from planessl.io.localizers import (SeriesFacts, is_localizer_name, localizer_evidence,
                                    named_localizer)
from planessl.io.views import (axis_check, exam_long_axis, knee_view_from_geometry,
                               lax_from_geometry, sax_from_geometry, sax_slice_from_geometry,
                               view_from_name)
from planessl.study import CARDIAC_VIEWS, KNEE_VIEWS, LOCALIZER_OF, Series, Study

Image = tuple[ImageRecord, np.ndarray]
#: Orientation tolerance for images to share a group (degrees).
ORIENTATION_TOLERANCE_DEG = 1.0
#: Images whose origins are closer than this share a slice position (mm).
POSITION_TOLERANCE_MM = 0.01
#: Cine frames closer in trigger time than this are duplicates (ms).
TRIGGER_TOLERANCE_MS = 1e-3


@dataclass
class _Stack:
    series_number: int
    text: str
    frame_of_reference: str
    localizer: bool
    slices: list[list[Image]]          # per position, frames in time order
    merged: int = 1
    notes: list[str] = field(default_factory=list)
    image_type: str = ""
    sequence_name: str = ""

    @property
    def acquisition_time(self) -> float | None:
        """The earliest AcquisitionTime (else SeriesTime) of its images (s after midnight)."""
        times = [r.acquisition_time for sl in self.slices for r, _ in sl
                 if r.acquisition_time is not None]
        return min(times) if times else None

    def facts(self) -> SeriesFacts:
        """What the localizer rule reads (:mod:`planessl.io.localizers`)."""
        return SeriesFacts(text=self.text, image_type=self.image_type,
                           sequence_name=self.sequence_name, n_frames=self.n_frames,
                           thickness=self.planes[0].thickness,
                           series_number=self.series_number,
                           acquisition_time=self.acquisition_time)

    @property
    def planes(self) -> list[Plane]:
        return [sl[0][0].plane for sl in self.slices]

    @property
    def n_frames(self) -> int:
        return len(self.slices[0])

    def files(self) -> list[str]:
        return sorted({r.path for sl in self.slices for r, _ in sl})


_COS_TOLERANCE = float(np.cos(np.radians(ORIENTATION_TOLERANCE_DEG)))


def _same_orientation(a: Plane, b: Plane) -> bool:
    if a is b:  # frames of one slice share their Plane object (scan caches)
        return True
    return float(a.row_dir @ b.row_dir) > _COS_TOLERANCE and \
        float(a.col_dir @ b.col_dir) > _COS_TOLERANCE


def _same_frame(a: str, b: str) -> bool:
    """Frames of reference that may be related: equal, or one is unknown (blank UID: the
    images' geometry is then the only evidence, see :func:`_frame_warning`)."""
    return a == b or not a or not b


def _same_grid(a: Plane, b: Plane) -> bool:
    # np.allclose's rule (|a - b| <= atol + rtol |b|) in plain Python: called once per image
    return a is b or (a.shape == b.shape and all(
        abs(x - y) <= 1e-4 + 1e-3 * abs(y) for x, y in zip(a.spacing, b.spacing)))


def _skip_group(images: list[Image], reason: str, skipped: list[Skipped]) -> None:
    files = sorted({r.path for r, _ in images})
    more = f" (and {len(files) - 1} more file(s) of the series)" if len(files) > 1 else ""
    skipped.append(Skipped(files[0], reason + more))


def _split_series(images: list[Image], skipped: list[Skipped]) -> list[list[Image]]:
    """Groups of one orientation and grid; minority sizes/spacings of an orientation skipped."""
    by_orientation: list[list[Image]] = []
    for im in images:
        for g in by_orientation:
            if (_same_frame(g[0][0].frame_of_reference, im[0].frame_of_reference)
                    and _same_orientation(g[0][0].plane, im[0].plane)):
                g.append(im)
                break
        else:
            by_orientation.append([im])
    groups = []
    for g in by_orientation:
        grids: list[list[Image]] = []
        for im in g:
            for gg in grids:
                if _same_grid(gg[0][0].plane, im[0].plane):
                    gg.append(im)
                    break
            else:
                grids.append([im])
        grids.sort(key=len, reverse=True)
        main = grids[0][0][0].plane
        for other in grids[1:]:
            p = other[0][0].plane
            what = (f"image size {p.shape[0]}x{p.shape[1]} differs from the "
                    f"{main.shape[0]}x{main.shape[1]}" if p.shape != main.shape else
                    f"pixel spacing {p.spacing[0]:.4g}x{p.spacing[1]:.4g} mm differs from the "
                    f"{main.spacing[0]:.4g}x{main.spacing[1]:.4g} mm")
            for r, _ in other:
                skipped.append(Skipped(r.path, f"{what} of the rest of its series (same "
                                               f"orientation); image not cached"))
        groups.append(grids[0])
    return groups


def _positions(group: list[Image], skipped: list[Skipped]) -> list[list[Image]]:
    """Images per slice position, frames ordered by trigger time; duplicates skipped."""
    normal = group[0][0].plane.normal
    by_pos: dict[tuple, list[Image]] = {}
    for im in group:
        key = tuple(np.round(np.asarray(im[0].plane.origin) / POSITION_TOLERANCE_MM).astype(np.int64))
        by_pos.setdefault(key, []).append(im)
    slices = []
    for ims in by_pos.values():
        ims.sort(key=lambda im: (im[0].trigger_time is None, im[0].trigger_time or 0.0,
                                 im[0].instance_number, im[0].path, im[0].frame))
        kept: list[Image] = [ims[0]]
        for im in ims[1:]:
            prev = kept[-1][0].trigger_time
            tt = im[0].trigger_time
            if tt is None or prev is None or abs(tt - prev) < TRIGGER_TOLERANCE_MS:
                why = "no trigger time to order it as a cine frame" if tt is None or prev is None \
                    else f"same trigger time {tt:g} ms"
                skipped.append(Skipped(im[0].path, f"duplicate slice position: same position "
                                                   f"as the image of InstanceNumber "
                                                   f"{kept[0][0].instance_number} and {why}; "
                                                   f"image not cached"))
                continue
            kept.append(im)
        slices.append(kept)
    slices.sort(key=lambda sl: float(normal @ sl[0][0].plane.origin))
    counts = Counter(len(sl) for sl in slices)
    n_frames = max(counts, key=lambda n: (counts[n], n))
    out = []
    for sl in slices:
        if len(sl) != n_frames:
            _skip_group(sl, f"{len(sl)} frame(s) at this slice position where the other "
                            f"slices of the series have {n_frames}; slice not cached", skipped)
            continue
        out.append(sl)
    return out


def _one_acquisition(a: _Stack, b: _Stack) -> bool:
    """Series of one acquisition: the same view named (or none) and the same localizer word
    (or none) in their names (the folder names of one-slice series differ: ``sax_5``,
    ``sax_6``), sequence, image type, frame of reference, grid and orientation."""
    return (view_from_name(a.text)[0] == view_from_name(b.text)[0]
            and is_localizer_name(a.text) == is_localizer_name(b.text)
            and a.sequence_name == b.sequence_name
            and a.image_type == b.image_type
            and _same_frame(a.frame_of_reference, b.frame_of_reference)
            and _same_grid(a.planes[0], b.planes[0])
            and plane_angle_deg(a.planes[0], b.planes[0]) < ORIENTATION_TOLERANCE_DEG)


def _drop_slices_that_lost_frames(stacks: list[_Stack], skipped: list[Skipped]
                                  ) -> list[_Stack]:
    """One-slice series of a cine acquisition (one series per slice) with fewer frames than
    most of its slices are slices that lost frames (a damaged or missing file): like a slice
    of one series with fewer frames (:func:`_positions`), they are not cached, with one line
    naming the slice's first file. Kept, they would be merged with nothing (their frame count
    differs), and a slice left with one frame would pass for a localizer."""
    groups: list[list[_Stack]] = []
    for s in stacks:
        for g in groups:
            if _one_acquisition(g[0], s):
                g.append(s)
                break
        else:
            groups.append([s])
    dropped: set[int] = set()
    for g in groups:
        counts = Counter()
        for s in g:
            counts[s.n_frames] += len(s.slices)
        usual = max(counts, key=lambda n: (counts[n], n))
        if usual < 2:
            continue
        numbers = sorted({s.series_number for s in g if s.n_frames == usual})
        which = (f"series {numbers[0]}" if len(numbers) == 1 else
                 f"series {numbers[0]}-{numbers[-1]}")
        for s in g:
            if len(s.slices) == 1 and s.n_frames < usual:
                dropped.add(id(s))
                _skip_group([im for sl in s.slices for im in sl],
                            f"{s.n_frames} frame(s) at this slice position where the other "
                            f"slices of its cine ({which}) have "
                            f"{usual}: a cine slice that lost frames; slice not cached",
                            skipped)
    return [s for s in stacks if id(s) not in dropped]


def _merge_sax_series(stacks: list[_Stack], skipped: list[Skipped]) -> list[_Stack]:
    """Merge parallel series of one SAX cine acquisition (one series per slice, or per
    breath-hold) into one stack. Single-frame series merge only one slice each: a single-frame
    stack of several slices is a whole series (a SAX localizer, a late-enhancement stack), so
    two of them are never merged into one."""
    def candidate(s: _Stack) -> bool:
        return ((len(s.slices) == 1 or s.n_frames > 1) and not s.localizer
                and view_from_name(s.text)[0] in (None, "sax"))

    def loc_named(s: _Stack) -> bool:
        return is_localizer_name(s.text)

    out: list[_Stack] = [s for s in stacks if not candidate(s)]
    kept = _drop_slices_that_lost_frames([s for s in stacks if candidate(s)], skipped)
    clusters: list[list[_Stack]] = []
    for s in kept:
        for c in clusters:
            ref = c[0]
            if (_same_frame(ref.frame_of_reference, s.frame_of_reference)
                    and loc_named(ref) == loc_named(s)  # never a localizer with a cine
                    and ref.n_frames == s.n_frames
                    and _same_grid(ref.planes[0], s.planes[0])
                    and plane_angle_deg(ref.planes[0], s.planes[0]) < ORIENTATION_TOLERANCE_DEG):
                c.append(s)
                break
        else:
            clusters.append([s])
    for c in clusters:
        named = any(view_from_name(s.text)[0] == "sax" for s in c)
        n_slices = sum(len(s.slices) for s in c)
        if len(c) == 1 or not (named or n_slices >= 3):
            out.extend(c)
            continue
        c.sort(key=lambda s: s.series_number)
        normal = c[0].planes[0].normal
        by_pos: dict[int, tuple[_Stack, list[Image]]] = {}
        for s in c:  # later series win a repeated position
            for sl in s.slices:
                key = int(round(float(normal @ sl[0][0].plane.origin) / 0.05))
                near = [k for k in (key - 1, key, key + 1) if k in by_pos]
                for k in near:
                    old = by_pos.pop(k)[1]
                    _skip_group(old, f"duplicate slice position: repeated by a later series "
                                     f"(series {s.series_number}); kept the later one", skipped)
                by_pos[key] = (s, sl)
        slices = [v[1] for _, v in sorted(by_pos.items())]
        text = " ".join(s.text for s in c)
        merged = _Stack(series_number=c[0].series_number, text=text,
                        frame_of_reference=c[0].frame_of_reference, localizer=False,
                        slices=slices, merged=len(c), image_type=c[0].image_type,
                        sequence_name=c[0].sequence_name)
        out.append(merged)
    out.sort(key=lambda s: s.series_number)
    return out


def _main_frame_of_reference(stacks: list[_Stack], skipped: list[Skipped]) -> list[_Stack]:
    """Keep the stacks of the main frame of reference and those without one (blank UID)."""
    counts = Counter()
    for s in stacks:
        if s.frame_of_reference:
            counts[s.frame_of_reference] += sum(len(sl) for sl in s.slices)
    if len(counts) <= 1:
        return stacks
    main = counts.most_common(1)[0][0]
    for s in stacks:
        if not _same_frame(s.frame_of_reference, main):
            _skip_group([im for sl in s.slices for im in sl],
                        "frame of reference differs from the rest of the study: its planes "
                        "cannot be related to the other views; series not cached", skipped)
    return [s for s in stacks if _same_frame(s.frame_of_reference, main)]


def _frame_warning(images: list[Image], grouped_by: str) -> Skipped | None:
    """The one warning of an exam grouped without StudyInstanceUID and/or holding images
    without FrameOfReferenceUID (``None`` when neither)."""
    missing = sorted({r.path for r, _ in images if not r.frame_of_reference})
    parts = []
    if grouped_by:
        parts.append(f"no StudyInstanceUID: images grouped into this exam by {grouped_by}")
    if missing:
        parts.append(f"{len(missing)} file(s) without FrameOfReferenceUID used together with "
                     f"the other images of the exam (their geometry is the only evidence "
                     f"that relates the views)")
    if not parts:
        return None
    first = missing[0] if missing else min(r.path for r, _ in images)
    return Skipped(first, "; ".join(parts), cached=True)


def _localizers(stacks: list[_Stack]) -> list[tuple[bool, str]]:
    """``(is_localizer, reason)`` of each stack of a cardiac exam
    (:func:`planessl.io.localizers.localizer_evidence`)."""
    facts = [s.facts() for s in stacks]
    cines = [f for f in facts if f.n_frames > 1 and not named_localizer(f)]
    return [localizer_evidence(f, cines) for f in facts]


def _long_axis(stacks: list[_Stack], result: dict[int, tuple[str, str]]):
    """The exam's long axis from the stacks classified so far
    (:func:`planessl.io.views.exam_long_axis`)."""
    def planes_of(view: str) -> list[list[Plane]]:
        return [stacks[k].planes for k, (v, _) in result.items() if v == view]

    pairs = []
    for what, two, four in (("cine", "2ch", "4ch"), ("localizer", "loc_2ch", "loc_4ch")):
        pairs += [(what, a[0], b[0]) for a in planes_of(two) for b in planes_of(four)]
    return exam_long_axis([p for p in planes_of("sax") if len(p) >= 3], pairs,
                          planes_of("loc_sax"))


def _classify(stacks: list[_Stack], knee: bool) -> list[tuple[_Stack, str, str]]:
    """(stack, view, reason) for each stack.

    Cardiac: localizers first (:mod:`planessl.io.localizers`); then views named by the
    series name; the exam's long axis (:func:`_long_axis`) then checks single named planes
    (a plane named as a long-axis view but perpendicular to the axis is a SAX slice, one
    named SAX that contains it is placed by geometry) and places the unnamed ones.
    """
    result: dict[int, tuple[str, str]] = {}
    if knee:
        for k, s in enumerate(stacks):
            loc = "localizer; " if s.localizer or is_localizer_name(s.text) else ""
            merged = f"merged from {s.merged} series; " if s.merged > 1 else ""
            nv, word = view_from_name(s.text, knee=True)
            if nv in KNEE_VIEWS:
                result[k] = (nv, f"{loc}{merged}name says '{word}'")
            else:
                v, why = knee_view_from_geometry(s.planes[0])
                result[k] = (v, f"{loc}{merged}knee study; {why}")
        return [(s, *result[k]) for k, s in enumerate(stacks)]
    evidence = _localizers(stacks)
    notes = {k: (f"{why}; " if why else "") + (f"merged from {s.merged} series; "
                                                if s.merged > 1 else "")
             for k, (s, (_, why)) in enumerate(zip(stacks, evidence))}
    named_views: dict[int, tuple[str, str]] = {}
    for k, s in enumerate(stacks):
        is_loc = evidence[k][0]
        nv, word = view_from_name(s.text)
        if nv in CARDIAC_VIEWS:
            named_views[k] = (nv, word)
            if is_loc:
                result[k] = (LOCALIZER_OF.get(nv, "other"),
                             f"{notes[k]}name says '{word}'" + (
                                 "" if nv in LOCALIZER_OF else
                                 ": planessl has no localizer view of that type"))
            else:
                result[k] = (nv, f"{notes[k]}name says '{word}'")
    # Stacks without a view name: SAX by geometry (a measured long axis where the names
    # give one, else the typical axis).
    axis = _long_axis(stacks, result)
    for k, s in enumerate(stacks):
        if k in result or len(s.slices) < 3:
            continue
        ok, why = sax_from_geometry(s.planes, axis)
        if evidence[k][0]:
            result[k] = ("loc_sax" if ok else "other",
                         f"{notes[k]}{'by geometry: ' if ok else ''}{why}")
        else:
            result[k] = ("sax" if ok else "other",
                         f"{notes[k]}{'by geometry: ' if ok else ''}{why}")
    axis = _long_axis(stacks, result)
    # Named single planes: checked against the long axis.
    for k, (nv, word) in named_views.items():
        s = stacks[k]
        if len(s.slices) != 1:
            continue
        agrees, why = axis_check(nv, s.planes[0], axis)
        if agrees is None:
            continue
        view, reason = result[k]
        if agrees:
            result[k] = (view, f"{reason}; {why}")
            continue
        if nv == "sax":
            lax, lax_why = lax_from_geometry(s.planes[0], None, axis)
            new = lax if lax is not None else "other"
            if evidence[k][0]:
                new = LOCALIZER_OF.get(new, "other")
            result[k] = (new, f"{notes[k]}name says '{word}' {why}: "
                              f"{lax_why if lax is not None else 'placed by geometry'}")
        else:
            result[k] = ("loc_sax" if evidence[k][0] else "sax",
                         f"{notes[k]}name says '{word}' {why}: a short-axis slice")
    # Unnamed single planes: a short-axis slice, else a long-axis view by geometry.
    for k, s in enumerate(stacks):
        if k in result:
            continue
        is_loc = evidence[k][0]
        note = notes[k]
        nv, word = view_from_name(s.text)
        named = f"name says '{word}' (chamber not named); " if nv == "lax" else ""
        if len(s.slices) == 1 and nv != "lax":
            ok, why = sax_slice_from_geometry(s.planes[0], axis)
            if ok:
                result[k] = ("loc_sax" if is_loc else "sax", f"{note}{why}")
                continue
        view, why = lax_from_geometry(s.planes[0], None, axis)
        if view is None:
            result[k] = ("other", f"{note}{named}{len(s.slices)} slice(s), no view name; {why}")
        elif is_loc:
            result[k] = (LOCALIZER_OF.get(view, "other"),
                         f"{note}{named}{why}" + ("" if view in LOCALIZER_OF else
                                                  "; planessl has no localizer view of that type"))
        else:
            result[k] = (view, f"{note}{named}{why}")
    return [(s, *result[k]) for k, s in enumerate(stacks)]


def _series_labels(slices: list[list[Image]], labels, skipped: list[Skipped]
                   ) -> tuple[np.ndarray | None, list[int]]:
    """``(S, F, H, W)`` label maps of ordered slices and the frames labelled on every slice
    (``(None, [])`` when no image of the stack has a label map)."""
    found = [[labels.get((r.path, r.frame)) for r, _ in sl] for sl in slices]
    if not any(x is not None for row in found for x in row):
        return None, []
    rows, cols = slices[0][0][0].plane.shape
    out = np.zeros((len(slices), len(slices[0]), rows, cols), np.uint8)
    valid = np.zeros(out.shape[:2], bool)
    for k, row in enumerate(found):
        for f, x in enumerate(row):
            if x is not None:
                out[k, f], valid[k, f] = x
    frames = [int(f) for f in np.nonzero(valid.all(axis=0))[0]]
    if not frames:
        skipped.append(Skipped(slices[0][0][0].path, "label maps cover only some slices of "
                               "each frame; series cached without labels", cached=True))
        return None, []
    return out, frames


def _to_series(stack: _Stack, name: str, view: str, reason: str, knee: bool,
               skipped: list[Skipped], labels=None,
               records: list | None = None) -> Series:
    planes = stack.planes
    slices = stack.slices
    if len(planes) > 1:
        toward = (None if knee or view not in CARDIAC_VIEWS + tuple(LOCALIZER_OF.values())
                  else CARDIAC_APEX_DIRECTION)
        try:
            geo = stack_geometry(planes, toward=toward)
        except GeometryError as exc:  # cannot happen for grouped planes; kept for safety
            raise GeometryError(f"series {stack.series_number}: {exc}") from None
        slices = [slices[k] for k in geo.order]
        planes = [planes[k] for k in geo.order]
        reason += "; slices ordered " + ("base -> apex" if toward is not None else
                                          "along the stack normal")
        reason += f", {geo.spacing:.2f} mm apart" if geo.spacing else ""
        if geo.problems:
            reason += "; irregular stack: " + "; ".join(geo.problems)
            skipped.append(Skipped(slices[0][0][0].path, f"{view} stack is irregular ("
                                   f"{'; '.join(geo.problems)}); cached as is", cached=True))
    elif view == "sax":
        reason += "; one slice: no slice-location target"
        skipped.append(Skipped(slices[0][0][0].path, "one-slice SAX 'stack': cached, but it has "
                               "no slice-location target", cached=True))
    if records is not None:
        records.append([[r for r, _ in sl] for sl in slices])
    rows, cols = slices[0][0][0].plane.shape
    pixels = np.empty((len(slices), len(slices[0]), rows, cols), np.float32)
    for k, sl in enumerate(slices):
        for f, (_, img) in enumerate(sl):
            pixels[k, f] = img
    times = [[r.trigger_time for r, _ in sl] for sl in slices]
    frame_times = None
    if all(t is not None for row in times for t in row):
        frame_times = [float(x) for x in np.median(np.asarray(times, dtype=float), axis=0)]
    ed = None
    if frame_times is not None and stack.n_frames > 1:
        ed = 0
        reason += "; cine ordered by trigger time, ED = first frame after the R wave"
    label_maps, labelled = _series_labels(slices, labels or {}, skipped)
    return Series(name=name, view=view, planes=planes, pixels=pixels, frame_times=frame_times,
                  ed_frame=ed, es_frame=None, spacing_known=True, view_reason=reason,
                  labels=label_maps, labelled_frames=labelled)


def build_study(images: list[Image], study_id: str, skipped: list[Skipped],
                labels: dict | None = None, grouped_by: str = "",
                records: list[list[list[ImageRecord]]] | None = None) -> Study:
    """The :class:`Study` of one DICOM study's images (unusable images go to ``skipped``).

    ``labels`` maps ``(image path, frame in file)`` to ``(label map (H, W), valid)``
    (see :func:`planessl.io.dicom_labels.sidecar_label_maps`). ``grouped_by`` says what
    grouped the images when they have no StudyInstanceUID (one warning per exam, which
    also counts the images without FrameOfReferenceUID). When ``records`` is a list,
    the source record of every image of each series, ``[slice][frame]`` in the series'
    order, is appended to it (one item per series), e.g. to trace predictions to files.
    """
    knee = any(r.knee for r, _ in images)
    by_series: dict[str, list[Image]] = {}
    for im in images:
        by_series.setdefault(im[0].series_uid, []).append(im)
    stacks: list[_Stack] = []
    for ims in by_series.values():
        r0 = ims[0][0]
        for group in _split_series(ims, skipped):
            slices = _positions(group, skipped)
            if slices:
                stacks.append(_Stack(series_number=r0.series_number, text=r0.text,
                                     frame_of_reference=group[0][0].frame_of_reference,
                                     localizer=r0.localizer, slices=slices,
                                     image_type=r0.image_type,
                                     sequence_name=r0.sequence_name))
    stacks = _main_frame_of_reference(stacks, skipped)
    stacks = _merge_sax_series(stacks, skipped)
    series: list[Series] = []
    used: Counter = Counter()
    for stack, view, reason in _classify(stacks, knee):
        used[view] += 1
        name = view if used[view] == 1 else f"{view}_{used[view]}"
        series.append(_to_series(stack, name, view, reason, knee, skipped, labels, records))
    warning = _frame_warning(images, grouped_by) if series else None
    if warning is not None:
        skipped.append(warning)
    sides = {r.laterality for r, _ in images if r.knee and r.laterality}
    laterality = sides.pop() if knee and len(sides) == 1 else None  # both named: unknown
    return Study(id=study_id, series=series, group="knee" if knee else "cardiac",
                 laterality=laterality)
