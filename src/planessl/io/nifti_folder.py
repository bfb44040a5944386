"""Any folder of NIfTI volumes (``planessl ingest --format nifti``).

Files are grouped into subjects by folder and name prefix, label volumes are matched to
their images by name (:mod:`planessl.io.nifti_names`) and then by grid (same shape and
affine). Each image volume becomes a series: a 4D cine ``(X, Y, Z, T)``, or the single-phase
volumes of one view and grid (``_ED``, ``_ES``, ``_frameNN``) stacked as frames, or a phase
volume matched to a frame of its cine. Planes come from the affine; views from the name
where it says one (``sa``, ``4ch``, ...), else from geometry as for DICOM: a stack of >= 3
parallel slices near the cardiac long axis is SAX, a plane containing the SAX stack's axis
a long-axis view (:mod:`planessl.io.views`). Label values 1 and 3 are read as RV and LV or
LV and RV from anatomy (:mod:`planessl.io.label_convention`); the cache holds ACDC's
convention (1 RV, 2 myo, 3 LV, 4 LA, 5 RA, 6 aorta).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planessl.errors import GeometryError, InputFileError
from planessl.geometry import CARDIAC_APEX_DIRECTION, Plane, stack_geometry
from planessl.io.acdc import check_labels
from planessl.io.label_convention import lv_first, swap_lv_rv
from planessl.io.nifti import load_header, read_volume, valid_affine
from planessl.io.nifti_names import NiftiName, is_nifti, parse_name, phase_key, subject_key
from planessl.io.sources import Skipped, SourceStudy
from planessl.io.ukbb import _matching_frame
from planessl.io.views import (knee_view_from_geometry, lax_from_geometry, normalise_name,
                               sax_from_geometry, view_from_name)
from planessl.study import CARDIAC_VIEWS, KNEE_VIEWS, Series, Study, normalise_laterality

VALID_LABELS = frozenset(range(7))
#: Affines within this (mm, per element) are the same grid.
GRID_TOLERANCE_MM = 1e-3


# ----------------------------------------------------------------------------- discover
def _root_of(f: Path, roots: list[Path]) -> Path:
    for r in roots:
        if r == f or r in f.parents:
            return r
    return f.parent


def discover_nifti(paths: list[Path], workers: int = 1, progress: bool | None = None
                   ) -> tuple[list[SourceStudy], list[Skipped]]:
    """Subjects of NIfTI folders, grouped by folder and name prefix (names only)."""
    skipped: list[Skipped] = []
    groups: dict[tuple[Path, str], list[NiftiName]] = {}
    roots = [p if p.is_dir() else p.parent for p in paths]
    for p in paths:
        for f in ([p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())):
            if is_nifti(f):
                n = parse_name(f)
                groups.setdefault(subject_key(n), []).append(n)
            elif not f.name.startswith("."):
                skipped.append(Skipped(str(f), "not a NIfTI file (.nii / .nii.gz)"))
    sources = []
    for (folder, prefix), names in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        images: dict[tuple, NiftiName] = {}
        for n in (n for n in names if not n.label):
            if n.base in images:
                skipped.append(Skipped(str(n.path), f"same name parts as {images[n.base].path.name}"
                                                    "; kept that one"))
            else:
                images[n.base] = n
        labels: dict[tuple, NiftiName] = {}
        for n in (n for n in names if n.label):
            if n.base not in images:
                skipped.append(Skipped(str(n.path), f"label volume with no image of the same "
                                                    f"name: expected {n.image_stem}.nii.gz "
                                                    f"beside it"))
            elif n.base in labels:
                skipped.append(Skipped(str(n.path), f"{images[n.base].path.name} already has "
                                                    f"a label volume ({labels[n.base].path.name})"))
            else:
                labels[n.base] = n
        if not images:
            continue
        rel = folder.relative_to(_root_of(folder, roots).parent).as_posix()
        vols = [{"path": str(n.path), "series": n.series, "phase": n.phase,
                 "label": str(labels[b].path) if b in labels else None}
                for b, n in images.items()]
        files = [n.path for n in images.values()] + [n.path for n in labels.values()]
        sources.append(SourceStudy(key=f"nifti:{rel}/{prefix}", format="nifti",
                                   files=sorted(files), payload={"volumes": vols}))
    return sources, skipped


# ----------------------------------------------------------------------------- load
@dataclass
class _Volume:
    """One image volume read: pixels ``(S, T, H, W)``, its planes and optional labels."""

    path: Path
    series: str
    phase: str | None
    pixels: np.ndarray
    planes: list[Plane]
    affine: np.ndarray
    labels: np.ndarray | None = None     # (S, T, H, W) uint8
    labelled: list[int] = field(default_factory=list)
    frame_ms: float | None = None

    def same_grid(self, other: "_Volume") -> bool:
        return (self.pixels.shape[0] == other.pixels.shape[0]
                and self.pixels.shape[2:] == other.pixels.shape[2:]
                and np.allclose(self.affine, other.affine, atol=GRID_TOLERANCE_MM))


@dataclass
class _Item:
    """A series before its view is known."""

    text: str
    pixels: np.ndarray
    planes: list[Plane]
    path: Path
    labels: np.ndarray | None
    labelled: list[int]
    ed: int | None
    es: int | None
    frame_ms: float | None
    notes: list[str]


def _sfhw(data: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(data.transpose(2, 3, 0, 1))


def _frame_ms(path: Path) -> float | None:
    """Frame interval (ms) from the header's 4th zoom and time unit, when set."""
    hdr = load_header(path).header
    zooms, unit = hdr.get_zooms(), hdr.get_xyzt_units()[1]
    if len(zooms) > 3 and zooms[3] > 0 and unit in ("sec", "msec"):
        return float(zooms[3]) * (1000.0 if unit == "sec" else 1.0)
    return None


def _shape(a: np.ndarray) -> str:
    """``X x Y x Z`` of an ``(S, T, H, W)`` array."""
    return f"{a.shape[2]}x{a.shape[3]}x{a.shape[0]}"


def _read_labels(path: Path, image: _Volume) -> tuple[np.ndarray, list[int]]:
    """Label maps of ``image`` from ``path`` (same grid required) and the labelled frames."""
    data, _ = read_volume(path)
    lab = _sfhw(data)
    affine = valid_affine(load_header(path), path)
    s, t = image.pixels.shape[:2]
    if lab.shape[0] != s or lab.shape[2:] != image.pixels.shape[2:]:
        raise InputFileError(path, f"label volume on another grid than its image "
                                   f"{image.path.name} (shape {_shape(lab)} vs "
                                   f"{_shape(image.pixels)}); labels not used")
    if not np.allclose(affine, image.affine, atol=GRID_TOLERANCE_MM):
        raise InputFileError(path, f"label volume on another grid than its image "
                                   f"{image.path.name} (affine differs); labels not used")
    if lab.shape[1] not in (1, t):
        raise InputFileError(path, f"label volume has {lab.shape[1]} frames, its image {t}; "
                                   f"labels not used")
    if np.any(lab != np.round(lab)):
        raise InputFileError(path, "label volume holds non-integer values; labels not used")
    lab = lab.astype(np.int64)
    check_labels(lab, path, VALID_LABELS)
    if lab.shape[1] == 1 and t > 1:
        raise InputFileError(path, f"one label frame for a {t}-frame cine: which frame is "
                                   f"unknown; labels not used")
    frames = [f for f in range(t) if lab.shape[1] == 1 or lab[:, f].any()]
    return lab.astype(np.uint8), frames


def _read(vol: dict, skipped: list[Skipped]) -> _Volume | None:
    path = Path(vol["path"])
    try:
        data, planes = read_volume(path)
        affine = valid_affine(load_header(path), path)
    except InputFileError as exc:
        skipped.append(Skipped(exc.path, exc.reason))
        return None
    v = _Volume(path=path, series=vol["series"], phase=vol["phase"], pixels=_sfhw(data),
                planes=planes, affine=affine)
    if v.pixels.shape[1] > 1:
        v.frame_ms = _frame_ms(path)
    if vol["label"]:
        try:
            v.labels, v.labelled = _read_labels(Path(vol["label"]), v)
        except InputFileError as exc:
            skipped.append(Skipped(exc.path, exc.reason))
    return v


def _item(v: _Volume, notes: list[str]) -> _Item:
    return _Item(text=v.series, pixels=v.pixels, planes=v.planes, path=v.path, labels=v.labels,
                 labelled=list(v.labelled), ed=None, es=None, frame_ms=v.frame_ms, notes=notes)


def _set_phase(item: _Item, phase: str | None, frame: int) -> None:
    if phase == "ED":
        item.ed = frame
    elif phase == "ES":
        item.es = frame


def _stack_phases(vols: list[_Volume]) -> _Item:
    """Single-phase volumes of one view and grid as the frames of one series."""
    vols = sorted(vols, key=lambda v: phase_key(v.phase))
    pixels = np.concatenate([v.pixels for v in vols], axis=1)
    labels, labelled = None, []
    if any(v.labels is not None for v in vols):
        labels = np.zeros(pixels.shape, np.uint8)
        for f, v in enumerate(vols):
            if v.labels is not None:
                labels[:, f] = v.labels[:, 0]
                labelled.append(f)
    item = _item(vols[0], [f"frames from names: {', '.join(str(v.phase) for v in vols)}"])
    item.pixels, item.labels, item.labelled = pixels, labels, labelled
    for f, v in enumerate(vols):
        _set_phase(item, v.phase, f)
    return item


def _into_cine(item: _Item, v: _Volume) -> bool:
    """Put a single-phase volume (and its labels) at its cine frame; False if none matches."""
    t, how = _matching_frame(item.pixels, v.pixels)
    if t is None:
        return False
    item.notes.append(f"{v.phase} file {how}")
    _set_phase(item, v.phase, t)
    if v.labels is not None and t not in item.labelled:
        if item.labels is None:
            item.labels = np.zeros(item.pixels.shape, np.uint8)
        item.labels[:, t] = v.labels[:, 0]
        item.labelled = sorted(item.labelled + [t])
    return True


def _items(vols: list[_Volume]) -> list[_Item]:
    """Series of the volumes: per view words and grid, cines with their phase files."""
    units: list[list[_Volume]] = []
    for v in vols:
        for u in units:
            if u[0].series == v.series and u[0].same_grid(v):
                u.append(v)
                break
        else:
            units.append([v])
    items: list[_Item] = []
    for u in units:
        cines = [_item(v, []) for v in u if v.pixels.shape[1] > 1]
        phased = [v for v in u if v.pixels.shape[1] == 1 and v.phase is not None]
        items.extend(cines)
        items.extend(_item(v, []) for v in u if v.pixels.shape[1] == 1 and v.phase is None)
        rest = [v for v in phased if not any(_into_cine(c, v) for c in cines)]
        if rest:
            items.append(_stack_phases(rest))
    return items


def _classify(items: list[_Item]) -> list[tuple[str, str]]:
    """(view, reason) per item: the name first, then geometry (as for DICOM series)."""
    result: dict[int, tuple[str, str]] = {}
    for k, it in enumerate(items):
        nv, word = view_from_name(it.text)
        if nv in CARDIAC_VIEWS:
            result[k] = (nv, f"file name says '{word}'")
        elif len(it.planes) >= 3:
            ok, why = sax_from_geometry(it.planes)
            result[k] = ("sax", f"by geometry: {why}") if ok else ("other", why)
    sax = [items[k] for k, (v, _) in result.items() if v == "sax"]
    ref = max(sax, key=lambda it: len(it.planes)).planes if sax else None
    for k, it in enumerate(items):
        if k not in result:
            view, why = lax_from_geometry(it.planes[0], ref)
            result[k] = (view or "other", why if view else
                         f"{len(it.planes)} slice(s), no view name; {why}")
    return [result[k] for k in range(len(items))]


def _to_series(it: _Item, name: str, view: str, reason: str, skipped: list[Skipped]) -> Series:
    pixels, labels, planes = it.pixels, it.labels, it.planes
    if len(planes) > 1:
        toward = CARDIAC_APEX_DIRECTION if view in CARDIAC_VIEWS else None
        try:
            geo = stack_geometry(planes, toward=toward)
        except GeometryError as exc:
            raise InputFileError(it.path, str(exc)) from None
        order = list(geo.order)
        pixels, planes = pixels[order], [planes[k] for k in order]
        labels = labels[order] if labels is not None else None
        reason += "; slices ordered " + ("base -> apex" if toward is not None else
                                          "along the stack normal")
        if geo.problems:
            reason += "; irregular stack: " + "; ".join(geo.problems)
            skipped.append(Skipped(str(it.path), f"{view} stack is irregular "
                                                 f"({'; '.join(geo.problems)}); cached as is",
                                   cached=True))
    elif view == "sax":
        reason += "; one slice: no slice-location target"
        skipped.append(Skipped(str(it.path), "one-slice SAX 'stack': cached, but it has no "
                                             "slice-location target", cached=True))
    times = [k * it.frame_ms for k in range(pixels.shape[1])] if it.frame_ms else None
    reason += "".join(f"; {n}" for n in it.notes)  # no file name: names may carry PHI
    return Series(name=name, view=view, planes=planes, pixels=pixels.astype(np.float32),
                  labels=labels if it.labelled else None, labelled_frames=it.labelled,
                  frame_times=times, ed_frame=it.ed, es_frame=it.es, spacing_known=True,
                  view_reason=reason)


def _convention(items: list[_Item], skipped: list[Skipped]) -> None:
    """Convert LV-first label maps (1 LV, 3 RV) to ACDC's (1 RV, 3 LV), in place."""
    maps = [it.labels[:, it.labelled] for it in items if it.labels is not None and it.labelled]
    if not maps:
        return
    first, why = lv_first(maps)
    for it in items:
        if it.labels is not None and it.labelled:
            if first:
                it.labels = swap_lv_rv(it.labels)
            it.notes.append(f"labels: {why}" + ("; converted to 1 RV, 3 LV" if first else ""))
    if first is None:
        path = next(it.path for it in items if it.labels is not None and it.labelled)
        skipped.append(Skipped(str(path), "label values kept as 1 RV, 2 myo, 3 LV (ACDC): "
                                          "the labels could not tell LV from RV", cached=True))


def _is_knee(items: list[_Item], source: SourceStudy) -> bool:
    """A knee subject: a series name says a knee plane (``sag``, ``PD_cor``, ``ax``) and
    none a cardiac view, or the folder or file names say ``knee``."""
    views = [view_from_name(it.text, knee=True)[0] for it in items]
    if any(v in CARDIAC_VIEWS or v == "lax" for v in views):
        return False
    if any(v in KNEE_VIEWS for v in views):
        return True
    names = " ".join([source.key] + [Path(v["path"]).name for v in source.payload["volumes"]])
    return re.search(r"\bknees?\b", normalise_name(names)) is not None


def _classify_knee(items: list[_Item]) -> list[tuple[str, str]]:
    """(view, reason) per item of a knee subject: the plane its name says, else the patient
    axis nearest its normal."""
    out = []
    for it in items:
        nv, word = view_from_name(it.text, knee=True)
        if nv in KNEE_VIEWS:
            out.append((nv, f"file name says '{word}'"))
        else:
            view, why = knee_view_from_geometry(it.planes[0])
            out.append((view, f"knee study, no plane in the name; {why}"))
    return out


def _laterality(source: SourceStudy) -> str | None:
    """Which knee, when the subject's folder or file names say one side (``left``, ``rt``)."""
    names = [source.key.split(":", 1)[-1]] + [Path(v["path"]).name
                                              for v in source.payload["volumes"]]
    return normalise_laterality(" ".join(names))


def load_nifti(source: SourceStudy, study_id: str,
               skipped: list[Skipped] | None = None) -> Study:
    """Read one subject of a NIfTI folder (files that cannot be used go to ``skipped``).

    A knee subject (:func:`_is_knee`) gets the views ``sagittal``, ``coronal``, ``axial``
    from its names or geometry; its label volumes, if any, are kept as they are."""
    skipped = [] if skipped is None else skipped
    vols = [v for v in (_read(d, skipped) for d in source.payload["volumes"]) if v is not None]
    items = _items(vols)
    knee = bool(items) and _is_knee(items, source)
    if not knee:
        _convention(items, skipped)
    series: list[Series] = []
    used: dict[str, int] = {}
    for it, (view, reason) in zip(items, _classify_knee(items) if knee else _classify(items)):
        used[view] = used.get(view, 0) + 1
        name = view if used[view] == 1 else f"{view}_{used[view]}"
        try:
            series.append(_to_series(it, name, view, reason, skipped))
        except InputFileError as exc:
            skipped.append(Skipped(exc.path, exc.reason))
    if knee:
        return Study(id=study_id, series=series, group="knee", laterality=_laterality(source))
    return Study(id=study_id, series=series, group="cardiac")

