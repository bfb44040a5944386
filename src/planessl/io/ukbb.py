"""UK Biobank cardiac NIfTI subjects (the layout of the public ``ukbb_cardiac`` pipeline).

A subject folder holds ``sa.nii.gz`` (X, Y, Z, T) and/or ``sa_ED``/``sa_ES`` (X, Y, Z),
long-axis cines ``la_2ch``/``la_3ch``/``la_4ch`` (X, Y, 1, T) and their ``_ED``/``_ES``
frames, and segmentations: ``seg_sa*`` (1 LV, 2 myo, 3 RV), ``seg4_la_*`` (1 LV, 2 myo,
3 RV, 4 LA, 5 RA, 6 aorta), ``seg_la_2ch*`` (1 LA), ``seg_la_4ch*`` (1 LA, 2 RA). Labels are
converted to the planessl convention (1 RV, 2 myo, 3 LV, 4 LA, 5 RA, 6 aorta).
Voxel ``(i, j, k, t)`` is pixel ``(i, j)`` of slice ``k``, frame ``t``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from planessl.errors import GeometryError, InputFileError
from planessl.geometry import CARDIAC_APEX_DIRECTION, stack_geometry
from planessl.io.acdc import check_labels
from planessl.io.nifti import load_header, read_volume
from planessl.io.sources import Skipped, SourceStudy
from planessl.study import Series, Study

#: UK Biobank label value -> planessl label value, per segmentation kind.
UKBB_TO_PLANESSL = {
    "seg_sa": {0: 0, 1: 3, 2: 2, 3: 1},
    "seg4": {0: 0, 1: 3, 2: 2, 3: 1, 4: 4, 5: 5, 6: 6},
    "seg_la_2ch": {0: 0, 1: 4},
    "seg_la_4ch": {0: 0, 1: 4, 2: 5},
}
VIEW_STEMS = {"sax": "sa", "2ch": "la_2ch", "3ch": "la_3ch", "4ch": "la_4ch"}
_IMAGE = re.compile(r"^(sa|la_[234]ch)(_E[DS])?\.nii(\.gz)?$")


def _find(folder: Path, stem: str) -> Path | None:
    for ext in (".nii.gz", ".nii"):
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def discover_ukbb(paths: list[Path], workers: int = 1, progress: bool | None = None
                  ) -> tuple[list[SourceStudy], list[Skipped]]:
    """Every folder holding UK Biobank image files is one subject (study)."""
    folders: set[Path] = set()
    for p in paths:
        candidates = [p] if p.is_file() else p.rglob("*.nii*")
        for f in candidates:
            if _IMAGE.match(f.name):
                folders.add(f.parent)
    sources = []
    for folder in sorted(folders):
        files = sorted(f for f in folder.iterdir() if f.is_file() and ".nii" in f.name)
        sources.append(SourceStudy(key=f"ukbb:{folder.name}", format="ukbb", files=files,
                                   payload=str(folder)))
    return sources, []


def _to_sfhw(data: np.ndarray) -> np.ndarray:
    """(X, Y, Z, T) -> (Z, T, X, Y)."""
    return np.ascontiguousarray(data.transpose(2, 3, 0, 1))


def _matching_frame(cine: np.ndarray, frame: np.ndarray) -> tuple[int | None, str]:
    """Index of the cine frame equal to ``frame`` (cine (S, T, H, W), frame (S, 1, H, W));
    when none is equal (files rescaled separately), the best-correlated one if r > 0.95."""
    if cine.shape[0] != frame.shape[0] or cine.shape[2:] != frame.shape[2:]:
        return None, "shape differs from the cine"
    for t in range(cine.shape[1]):
        if np.array_equal(cine[:, t], frame[:, 0]):
            return t, "equal to cine frame %d" % t
    f = frame[:, 0].ravel().astype(np.float64)
    r = [np.corrcoef(cine[:, t].ravel(), f)[0, 1] for t in range(cine.shape[1])]
    t = int(np.nanargmax(r))
    if r[t] > 0.95:
        return t, f"closest to cine frame {t} (r = {r[t]:.3f})"
    return None, "matches no cine frame"


def _labels(path: Path, kind: str, shape: tuple) -> np.ndarray:
    data, _ = read_volume(path)
    seg = _to_sfhw(data)
    if seg.shape[0] != shape[0] or seg.shape[2:] != shape[2:]:
        raise InputFileError(path, f"segmentation shape {seg.shape} does not match its image "
                                   f"{shape}")
    if np.any(seg != np.round(seg)):
        raise InputFileError(path, "segmentation holds non-integer values")
    mapping = UKBB_TO_PLANESSL[kind]
    check_labels(seg.astype(np.int64), path, frozenset(mapping))
    lut = np.zeros(max(mapping) + 1, np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return lut[seg.astype(np.int64)]


def _view_series(folder: Path, view: str, skipped: list[Skipped]) -> Series | None:
    stem = VIEW_STEMS[view]
    cine_path, ed_path, es_path = (_find(folder, stem), _find(folder, f"{stem}_ED"),
                                   _find(folder, f"{stem}_ES"))
    if cine_path is None and ed_path is None and es_path is None:
        return None
    notes = []
    ed = es = None
    frame_times = None
    if cine_path is not None:
        data, planes = read_volume(cine_path)
        pixels = _to_sfhw(data)
        for tag, p in (("ED", ed_path), ("ES", es_path)):
            if p is None:
                continue
            d, _ = read_volume(p)
            t, how = _matching_frame(pixels, _to_sfhw(d))
            notes.append(f"{tag} file {how}")
            if t is None:
                pass
            elif tag == "ED":
                ed = t
            else:
                es = t
        units = load_header(cine_path).header.get_xyzt_units()[1]
        dt = float(load_header(cine_path).header.get_zooms()[3]) if data.ndim == 4 and \
            len(load_header(cine_path).header.get_zooms()) > 3 else 0.0
        if units in ("sec", "msec") and dt > 0:
            dt_ms = dt * (1000.0 if units == "sec" else 1.0)
            frame_times = [k * dt_ms for k in range(pixels.shape[1])]
        phase_files = {"ED": ed, "ES": es}
    else:
        parts, planes = [], None
        phase_files = {}
        for tag, p in (("ED", ed_path), ("ES", es_path)):
            if p is None:
                continue
            d, pl = read_volume(p)
            if planes is None:
                planes = pl
            elif parts and d.shape[:3] != parts[0].shape[:3]:
                raise InputFileError(p, f"shape {d.shape[:3]} differs from the ED frame "
                                        f"{parts[0].shape[:3]}")
            phase_files[tag] = len(parts)
            parts.append(d[..., :1])
        pixels = _to_sfhw(np.concatenate(parts, axis=3))
        ed, es = phase_files.get("ED"), phase_files.get("ES")
    # Labels: full-cine segmentation first, then per-phase files; seg4 before seg.
    kinds = ["seg_sa"] if view == "sax" else ["seg4", f"seg_la_{view}"] \
        if view in ("2ch", "4ch") else ["seg4"]
    labels = None
    labelled: list[int] = []
    for kind in kinds:
        seg_stem = "seg_sa" if kind == "seg_sa" else (f"seg4_{stem}" if kind == "seg4" else kind)
        if kind not in UKBB_TO_PLANESSL:
            continue
        full = _find(folder, seg_stem)
        try:
            if full is not None:
                lab = _labels(full, kind, pixels.shape)
                if lab.shape == pixels.shape:
                    labels, labelled = lab, list(range(pixels.shape[1]))
                    notes.append(f"labels from {seg_stem} (all frames)")
                    break
            frames = {}
            for tag, t in (("ED", ed), ("ES", es)):
                p = _find(folder, f"{seg_stem}_{tag}")
                if p is not None and t is not None:
                    frames[t] = _labels(p, kind, (pixels.shape[0], 1) + pixels.shape[2:])[:, 0]
            if frames:
                labels = np.zeros(pixels.shape, np.uint8)
                for t, lab in frames.items():
                    labels[:, t] = lab
                labelled = sorted(frames)
                notes.append(f"labels from {seg_stem}_ED/ES")
                break
        except InputFileError as exc:
            skipped.append(Skipped(exc.path, exc.reason + "; labels not used"))
    reason = f"UK Biobank layout: file name says '{stem}'"
    if len(planes) > 1:
        try:
            geo = stack_geometry(planes, toward=CARDIAC_APEX_DIRECTION)
        except GeometryError as exc:
            raise InputFileError(cine_path or ed_path, str(exc)) from None
        order = list(geo.order)
        pixels = pixels[order]
        labels = labels[order] if labels is not None else None
        planes = [planes[k] for k in order]
        reason += "; slices ordered base -> apex"
        if geo.problems:
            reason += "; irregular stack: " + "; ".join(geo.problems)
    if notes:
        reason += "; " + "; ".join(notes)
    return Series(name=view, view=view, planes=planes, pixels=pixels.astype(np.float32),
                  labels=labels, labelled_frames=labelled, frame_times=frame_times,
                  ed_frame=ed, es_frame=es, spacing_known=True, view_reason=reason)


def load_ukbb(source: SourceStudy, study_id: str,
              skipped: list[Skipped] | None = None) -> Study:
    """Read one UK Biobank subject folder."""
    folder = Path(source.payload)
    skipped = [] if skipped is None else skipped
    series = []
    for view in VIEW_STEMS:
        try:
            s = _view_series(folder, view, skipped)
        except InputFileError as exc:
            skipped.append(Skipped(exc.path, exc.reason))
            continue
        if s is not None:
            series.append(s)
    return Study(id=study_id, series=series, group="cardiac")


def read_ukbb(folder: str | Path, salt: str | None = None) -> Study:
    """One UK Biobank subject folder as a :class:`Study` (Python API)."""
    from planessl.io.sources import opaque_id

    folder = Path(folder)
    src = SourceStudy(key=f"ukbb:{folder.name}", format="ukbb", files=[], payload=str(folder))
    return load_ukbb(src, opaque_id(src.key, salt))
