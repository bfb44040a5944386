"""Label maps stored beside DICOM images (``<series folder>/labels.npz`` sidecars).

A sidecar holds, for the DICOM files of its folder (the format the phantom DICOM writer
produces, see :mod:`planessl.phantom.writers`):

* ``labels`` - integer ``(F, H, W)`` label maps (0 bg, 1 RV, 2 myo, 3 LV, 4 LA, 5 RA,
  6 aorta), one per image, ``H x W`` = the images' Rows x Columns;
* ``instance_numbers`` - ``(F,)`` the InstanceNumber of the file each label map belongs to
  (for a multi-frame file, its k-th occurrence is the file's k-th frame);
* ``frames`` (optional) - indices into ``F`` of the label maps that are valid (e.g. ED and
  ES); all of them when absent.

Label maps are matched to images by (folder, InstanceNumber, frame in file), so they follow
the images through the base -> apex slice ordering and the trigger-time frame ordering.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from planessl.errors import InputFileError
from planessl.io.sources import Skipped, describe_error
from planessl.study import EXTRA_LABEL_NAMES, LABEL_NAMES

#: File name of a label sidecar in a DICOM series folder.
SIDECAR_NAME = "labels.npz"
#: Label values a sidecar may hold.
SIDECAR_LABELS = frozenset(LABEL_NAMES) | frozenset(EXTRA_LABEL_NAMES)

#: ``(image path, frame in file) -> (label map (H, W) uint8, valid)``.
LabelMap = dict[tuple[str, int], tuple[np.ndarray, bool]]


def is_sidecar(path: str | Path) -> bool:
    """Whether a file is a label sidecar (by its name)."""
    return Path(path).name == SIDECAR_NAME


def read_sidecar(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels (F, H, W) uint8, instance_numbers (F,), valid (F,) bool)`` of a sidecar.

    Raises:
        InputFileError: unreadable, missing arrays, wrong shapes or label values.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(path, f"unreadable label sidecar ({describe_error(exc)})") from None
    for key in ("labels", "instance_numbers"):
        if key not in arrays:
            raise InputFileError(path, f"label sidecar has no '{key}' array")
    labels, instances = arrays["labels"], arrays["instance_numbers"]
    if labels.ndim != 3:
        raise InputFileError(path, f"label sidecar 'labels' has shape {labels.shape}, "
                                   f"(frames, rows, cols) expected")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputFileError(path, f"label sidecar 'labels' has dtype {labels.dtype}, "
                                   f"integers expected")
    if instances.shape != (labels.shape[0],) or not np.issubdtype(instances.dtype, np.integer):
        raise InputFileError(path, f"label sidecar 'instance_numbers' has shape "
                                   f"{instances.shape}, ({labels.shape[0]},) integers expected")
    # min/max first: np.unique sorts every pixel and costs more than the rest of the load
    lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    bad = [] if lo >= min(SIDECAR_LABELS) and hi <= max(SIDECAR_LABELS) else \
        sorted({int(v) for v in np.unique(labels)} - SIDECAR_LABELS)
    if bad:
        raise InputFileError(path, f"label values {bad} outside the expected set "
                                   f"{sorted(SIDECAR_LABELS)}")
    valid = np.ones(labels.shape[0], bool)
    if "frames" in arrays:
        frames = np.asarray(arrays["frames"]).ravel()
        if not np.issubdtype(frames.dtype, np.integer) or \
                np.any((frames < 0) | (frames >= labels.shape[0])):
            raise InputFileError(path, f"label sidecar 'frames' {frames.tolist()} outside "
                                       f"0..{labels.shape[0] - 1}")
        valid[:] = False
        valid[frames] = True
    return labels.astype(np.uint8, copy=False), instances.astype(np.int64), valid


def sidecar_label_maps(sidecars: list[str], records: list, skipped: list[Skipped]) -> LabelMap:
    """Label map of each image that a sidecar covers.

    ``records`` are :class:`planessl.io.dicom_records.ImageRecord`. A sidecar that is bad (see
    :func:`read_sidecar`) or does not match the images of its folder adds one warning to
    ``skipped`` naming it; the images are still cached, without these labels.
    """
    by_folder: dict[str, dict[tuple[int, int], object]] = {}
    for r in records:
        by_folder.setdefault(str(Path(r.path).parent), {})[(r.instance_number, r.frame)] = r
    out: LabelMap = {}
    for path in sidecars:
        try:
            out.update(_match(path, by_folder.get(str(Path(path).parent), {})))
        except InputFileError as exc:
            skipped.append(Skipped(exc.path, f"{exc.reason}; images cached without these "
                                             f"labels", cached=True))
    return out


def _match(path: str, images: dict[tuple[int, int], object]) -> LabelMap:
    labels, instances, valid = read_sidecar(path)
    if not images:
        raise InputFileError(path, "label sidecar beside no usable DICOM image")
    seen: dict[int, int] = {}
    out: LabelMap = {}
    for k, inst in enumerate(instances.tolist()):
        frame = seen[inst] = seen.get(inst, -1) + 1
        r = images.get((inst, frame))
        if r is None:
            raise InputFileError(path, f"label map {k} is for InstanceNumber {inst}"
                                       f"{f' frame {frame}' if frame else ''}, which no DICOM "
                                       f"image of the folder has")
        if tuple(r.plane.shape) != labels.shape[1:]:
            raise InputFileError(path, f"label maps are {labels.shape[1]}x{labels.shape[2]}, "
                                       f"images {r.plane.shape[0]}x{r.plane.shape[1]}")
        out[(r.path, r.frame)] = (labels[k], bool(valid[k]))
    return out
