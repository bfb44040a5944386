"""ACDC (Automated Cardiac Diagnosis Challenge) in its two common layouts.

* HDF5 volumes (``patientXXX_frameYY.h5``; datasets ``image`` float32 slices x H x W in
  0..1 and ``label`` uint8 0 bg, 1 RV, 2 myocardium, 3 LV), as many semi-supervised
  repositories distribute it. They carry **no geometry**: planes get a nominal 1 mm
  spacing, ``spacing_known=False``, and must not be used as millimetres.
* The original NIfTI layout (``patientXXX/patientXXX_frameYY.nii.gz``, ``..._gt.nii.gz``,
  ``..._4d.nii.gz``, ``Info.cfg`` with ``ED:``/``ES:`` frame numbers and ``Group:``).

Both give one :class:`Study` per patient with one ``"sax"`` series ``(S, F, H, W)``:
the ED and ES frames (F = 2) with their labels, ``ed_frame = 0``, ``es_frame = 1``.
Labels are already in the planessl (ACDC) convention.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from planessl.errors import InputFileError, PlaneSSLError
from planessl.geometry import CARDIAC_APEX_DIRECTION, Plane
from planessl.io.sources import (Skipped, SourceStudy, describe_error, opaque_id)
from planessl.study import LABEL_NAMES, Series, Study

H5_NAME = re.compile(r"^patient(\d+)_frame(\d+)\.h5$")
NIFTI_NAME = re.compile(r"^patient(\d+)_frame(\d+)\.nii(\.gz)?$")
VALID_LABELS = frozenset(LABEL_NAMES)
#: ACDC diagnostic groups (Info.cfg ``Group:``) as class indices for study targets.
ACDC_GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")


def patient_key(number: int) -> str:
    """Source key of an ACDC patient (same for the HDF5 and NIfTI layouts)."""
    return f"acdc:patient{int(number):03d}"


def patient_id(number: int, salt: str | None = None) -> str:
    """Opaque cache id of ACDC patient ``number`` (e.g. to select a test split)."""
    return opaque_id(patient_key(number), salt)


def nominal_planes(n_slices: int, shape: tuple[int, int], spacing_mm: float = 1.0) -> list[Plane]:
    """Planes for a stack without geometry: ``spacing_mm`` pixels (1 mm unless an assumed
    spacing is given), slices 1 mm apart.

    The nominal normal is :data:`CARDIAC_APEX_DIRECTION`, so
    :func:`planessl.geometry.stack_geometry` keeps the acquisition order and reads slice 0
    as the base. Only the order is meaningful; no distance in these planes is in mm.
    """
    n = np.asarray(CARDIAC_APEX_DIRECTION, dtype=np.float64)
    row = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)  # any unit vector orthogonal to n
    col = np.cross(n, row)                             # so that row x col = n
    sp = float(spacing_mm)
    return [Plane(origin=k * n, row_dir=row, col_dir=col, spacing=(sp, sp),
                  shape=shape, thickness=None) for k in range(n_slices)]


def check_labels(labels: np.ndarray, path: str | Path,
                 allowed: frozenset[int] = VALID_LABELS) -> None:
    """Raise :class:`InputFileError` when a label map holds values outside ``allowed``."""
    values = {int(v) for v in np.unique(labels)}
    bad = sorted(values - set(allowed))
    if bad:
        raise InputFileError(path, f"label values {bad} outside the expected set "
                                   f"{sorted(allowed)}")


def _base_apex_note(labels: np.ndarray | None) -> str:
    """What the labels say about the slice order (LV + myocardium area, first vs last)."""
    if labels is None:
        return "no labels to check it"
    area = np.isin(labels[:, 0], (2, 3)).sum(axis=(1, 2))
    nz = np.nonzero(area)[0]
    if len(nz) < 2:
        return "labels too sparse to check it"
    first, last = int(area[nz[0]]), int(area[nz[-1]])
    verdict = "agree" if first >= last else "DISAGREE (slice 0 may be the apex)"
    return f"ED labels {verdict}: LV+myo area {first} px at the first vs {last} px at the last labelled slice"


def _order_ed_es(frames: list[int], lv_volumes: list[int | None]) -> tuple[list[int], str]:
    """Order of the frames (ED first) and a note: ED is the earlier frame number, as in
    ACDC; the LV volumes (when labelled) are checked to agree."""
    order = sorted(range(len(frames)), key=lambda k: frames[k])
    note = f"ED = frame {frames[order[0]]:02d} (earliest)"
    vols = [lv_volumes[k] for k in order]
    if len(order) == 2 and None not in vols:
        if vols[0] < vols[1]:
            order = order[::-1]
            note = (f"ED = frame {frames[order[0]]:02d}: larger LV label volume "
                    f"({max(vols)} vs {min(vols)} px) than the earlier frame")
        else:
            note += f", LV label volume {vols[0]} > {vols[1]} px confirms"
    return order, note


# ----------------------------------------------------------------------------- HDF5
def _h5_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*.h5") if q.is_file()))
        else:
            out.append(p)
    return out


def discover_acdc_h5(paths: list[Path], workers: int = 1, progress: bool | None = None
                     ) -> tuple[list[SourceStudy], list[Skipped]]:
    """Group ``patientXXX_frameYY.h5`` files by patient (names only; nothing is read)."""
    groups: dict[int, list[tuple[int, Path]]] = {}
    skipped: list[Skipped] = []
    for f in _h5_files(paths):
        m = H5_NAME.match(f.name)
        if not m:
            skipped.append(Skipped(str(f), "not an ACDC HDF5 name (patientXXX_frameYY.h5)"))
            continue
        groups.setdefault(int(m.group(1)), []).append((int(m.group(2)), f))
    sources = [SourceStudy(key=patient_key(n), format="acdc-h5",
                           files=[f for _, f in sorted(items)],
                           payload={"frames": [fr for fr, _ in sorted(items)]})
               for n, items in sorted(groups.items())]
    return sources, skipped


def _read_h5_frame(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import h5py  # imported here: only this reader needs it

    try:
        with h5py.File(path, "r") as h:
            if "image" not in h:
                raise InputFileError(path, "no 'image' dataset")
            kind = getattr(h["image"], "dtype", None)
            if kind is None or kind.kind not in "uifb" or kind.names is not None:
                raise InputFileError(path, f"'image' of type {kind} is not an intensity")
            image = np.asarray(h["image"][()], dtype=np.float32)
            label = np.asarray(h["label"][()]) if "label" in h else None
    except InputFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputFileError(path, f"not a readable HDF5 file ({describe_error(exc)})") from None
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or min(image.shape) < 1:
        raise InputFileError(path, f"'image' must be slices x H x W, got shape {image.shape}")
    if not np.all(np.isfinite(image)):
        raise InputFileError(path, "'image' holds NaN or infinite values")
    if label is not None:
        if label.ndim == 2:
            label = label[None]
        if label.shape != image.shape:
            raise InputFileError(path, f"'label' shape {label.shape} != 'image' shape {image.shape}")
        if not np.issubdtype(label.dtype, np.integer):
            if not np.all(np.isfinite(label)) or np.any(label != np.round(label)):
                raise InputFileError(path, "'label' holds non-integer values")
        check_labels(label, path)
        label = label.astype(np.uint8)
    return image, label


def load_acdc_h5(source: SourceStudy, study_id: str,
                 skipped: list[Skipped] | None = None) -> Study:
    """Read one patient's HDF5 frames into a study with one ``"sax"`` series."""
    frames: list[int] = source.payload["frames"]
    images, labels = [], []
    for f in source.files:
        im, lab = _read_h5_frame(f)
        images.append(im)
        labels.append(lab)
    for f, im in zip(source.files[1:], images[1:]):
        if im.shape != images[0].shape:
            raise InputFileError(f, f"image shape {im.shape} differs from {images[0].shape} "
                                    f"of {source.files[0].name}")
    lv = [None if lab is None else int((lab == 3).sum()) for lab in labels]
    order, ed_note = _order_ed_es(frames, lv)
    pixels = np.stack([images[k] for k in order], axis=1)  # (S, F, H, W)
    has_labels = [labels[k] is not None for k in order]
    label_arr = None
    if any(has_labels):
        label_arr = np.stack([labels[k] if labels[k] is not None
                              else np.zeros_like(images[0], dtype=np.uint8) for k in order], axis=1)
    n_frames = pixels.shape[1]
    spacing = float(source.payload.get("assume_spacing_mm") or 1.0)
    reason = (f"ACDC HDF5: short-axis stack by dataset definition; {ed_note}; no pixel "
              f"spacing or orientation in the source: nominal {spacing:g} mm planes "
              f"({'assumed at ingest' if spacing != 1.0 else 'placeholder'}), spacing unknown; "
              f"base/apex orientation unknown from the source, slice order kept as acquired "
              f"and read as slice 0 = base ({_base_apex_note(label_arr)})")
    series = Series(
        name="sax", view="sax", planes=nominal_planes(pixels.shape[0], pixels.shape[2:], spacing),
        pixels=pixels, labels=label_arr,
        labelled_frames=[f for f in range(n_frames) if has_labels[f]],
        frame_times=None, ed_frame=0 if n_frames >= 1 else None,
        es_frame=1 if n_frames >= 2 else None, spacing_known=False, view_reason=reason)
    return Study(id=study_id, series=[series], group="cardiac")


def read_acdc_h5(path_or_folder: str | Path, salt: str | None = None,
                 skipped: list[Skipped] | None = None) -> list[Study]:
    """All ACDC HDF5 patients under a file or folder, one :class:`Study` per patient.

    Args:
        path_or_folder: one ``patientXXX_frameYY.h5`` file or a folder searched recursively.
        salt: salt of the opaque ids (default :data:`planessl.io.sources.DEFAULT_SALT`).
        skipped: when given, unusable files are appended here and the rest is read;
            otherwise the first unusable file raises :class:`InputFileError`.
    """
    path = Path(path_or_folder)
    if not path.exists():
        raise PlaneSSLError(f"{path}: no such file or folder")
    sources, skips = discover_acdc_h5([path])
    if skipped is None and skips:
        raise InputFileError(skips[0].path, skips[0].reason)
    if skipped is not None:
        skipped.extend(skips)
    studies = []
    for src in sources:
        try:
            studies.append(load_acdc_h5(src, opaque_id(src.key, salt)))
        except InputFileError as exc:
            if skipped is None:
                raise
            skipped.append(Skipped(exc.path, exc.reason))
    return studies


# ----------------------------------------------------------------------------- NIfTI
def _read_info(path: Path) -> dict[str, str]:
    info = {}
    try:
        for line in path.read_text().splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                info[k.strip()] = v.strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"unreadable Info.cfg ({describe_error(exc)})") from None
    return info


def discover_acdc_nifti(paths: list[Path], workers: int = 1, progress: bool | None = None
                        ) -> tuple[list[SourceStudy], list[Skipped]]:
    """One study per folder holding ``patientXXX_frameYY.nii.gz`` files."""
    folders: dict[Path, int] = {}
    for p in paths:
        for f in ([p] if p.is_file() else p.rglob("patient*_frame*.nii*")):
            m = NIFTI_NAME.match(f.name)
            if m:
                folders[f.parent] = int(m.group(1))
    sources = []
    for folder, number in sorted(folders.items()):
        files = sorted(f for f in folder.iterdir() if f.is_file())
        sources.append(SourceStudy(key=patient_key(number), format="acdc", files=files,
                                   payload={"folder": str(folder), "number": number}))
    return sources, []


def _axis_aligned(planes: list[Plane]) -> bool:
    """True when the planes' axes are the array axes (an affine that only scales, as the
    original ACDC files have: no physical orientation)."""
    p = planes[0]
    return all(np.max(np.abs(v)) > 1 - 1e-6 for v in (p.row_dir, p.col_dir))


def load_acdc_nifti(source: SourceStudy, study_id: str,
                    skipped: list[Skipped] | None = None) -> Study:
    """Read one ACDC patient folder: ED and ES frames (or the 4D cine) with their labels."""
    from planessl.geometry import stack_geometry
    from planessl.io.nifti import read_volume

    folder, number = Path(source.payload["folder"]), source.payload["number"]
    stem = f"patient{number:03d}"
    info_path = folder / "Info.cfg"
    info = _read_info(info_path) if info_path.is_file() else {}
    frame_files = {}
    for f in folder.iterdir():
        m = NIFTI_NAME.match(f.name)
        if m and int(m.group(1)) == number:
            frame_files[int(m.group(2))] = f
    try:
        ed_no = int(info["ED"]) if "ED" in info else min(frame_files)
        es_no = int(info["ES"]) if "ES" in info else None
    except ValueError:
        raise InputFileError(info_path, "ED/ES are not frame numbers") from None
    four_d = next((p for p in (folder / f"{stem}_4d.nii.gz", folder / f"{stem}_4d.nii")
                   if p.is_file()), None)
    notes = [f"ED = frame {ed_no:02d}" + (f", ES = frame {es_no:02d}" if es_no else "")
             + (" (Info.cfg)" if "ED" in info else " (earliest file; no Info.cfg)")]
    if four_d is not None:
        data, planes = read_volume(four_d)
        pixels = np.ascontiguousarray(data.transpose(2, 3, 0, 1))
        frame_index = {n: n - 1 for n in frame_files}
        notes.append("all frames from the 4D cine")
    else:
        numbers = sorted(frame_files, key=lambda n: (n != ed_no, n))
        vols = []
        planes = None
        for n in numbers:
            d, pl = read_volume(frame_files[n])
            if planes is None:
                planes = pl
            elif d.shape[:3] != vols[0].shape[:3]:
                raise InputFileError(frame_files[n], f"shape {d.shape[:3]} differs from "
                                                     f"{vols[0].shape[:3]} of the ED frame")
            vols.append(d[..., :1])
        pixels = np.ascontiguousarray(np.concatenate(vols, axis=3).transpose(2, 3, 0, 1))
        frame_index = {n: k for k, n in enumerate(numbers)}
    labels = None
    labelled = []
    for n, t in frame_index.items():
        gt = next((p for p in (folder / f"{stem}_frame{n:02d}_gt.nii.gz",
                               folder / f"{stem}_frame{n:02d}_gt.nii") if p.is_file()), None)
        if gt is None or t >= pixels.shape[1]:
            continue
        g, _ = read_volume(gt)
        lab = g[..., 0].transpose(2, 0, 1)
        if lab.shape != pixels.shape[:1] + pixels.shape[2:]:
            raise InputFileError(gt, f"label shape {lab.shape} != image {pixels[:, 0].shape}")
        check_labels(np.round(lab).astype(np.int64), gt)
        if labels is None:
            labels = np.zeros(pixels.shape, np.uint8)
        labels[:, t] = lab.astype(np.uint8)
        labelled.append(t)
    reason = "ACDC layout: short-axis stack by dataset definition; " + "; ".join(notes)
    if len(planes) > 1 and not _axis_aligned(planes):
        geo = stack_geometry(planes, toward=CARDIAC_APEX_DIRECTION)
        order = list(geo.order)
        pixels, planes = pixels[order], [planes[k] for k in order]
        labels = labels[order] if labels is not None else None
        reason += "; slices ordered base -> apex"
    else:
        reason += ("; the affine only scales (no physical orientation): spacing known, "
                   "base/apex orientation unknown, slice order kept as acquired")
    ed = frame_index.get(ed_no)
    es = frame_index.get(es_no) if es_no is not None else None
    targets = {}
    if info.get("Group") in ACDC_GROUPS:
        targets["class"] = ACDC_GROUPS.index(info["Group"])
    series = Series(name="sax", view="sax", planes=planes, pixels=pixels.astype(np.float32),
                    labels=labels, labelled_frames=sorted(labelled), ed_frame=ed, es_frame=es,
                    spacing_known=True, view_reason=reason)
    return Study(id=study_id, series=[series], targets=targets, group="cardiac")
