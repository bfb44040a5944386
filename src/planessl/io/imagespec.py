"""Load one 2D image and its plane from a command-line "image spec": ``PATH[:K]``.

``PATH`` is a DICOM file or a NIfTI file (``.nii`` / ``.nii.gz``); the format is detected
from the extension and, failing that, from the file's magic bytes. ``K`` picks:

* for NIfTI, slice ``k`` of the volume (pixel ``(i, j)`` is voxel ``(i, j, k)``); a 4D cine
  gives frame 0 of that slice. A volume of one slice needs no ``K``.
* for DICOM, frame ``K`` of a multi-frame file (each frame has its own plane in enhanced
  DICOM). A single-frame file needs no ``K``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planessl.errors import GeometryError, InputFileError
from planessl.geometry import Plane

_SPEC = re.compile(r"^(?P<path>.+):(?P<index>-?\d+)$")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """One 2D image with its geometry.

    Attributes:
        pixels: float32 ``(rows, cols)`` intensities, ``pixels[i, j]``.
        plane: its :class:`~planessl.geometry.Plane` (LPS, mm).
        name: the spec it was loaded from (for titles and messages).
        frame_of_reference: DICOM FrameOfReferenceUID, or ``None`` (NIfTI, or absent):
            positions of images with different frames of reference are not comparable.
        source_format: ``"dicom"`` or ``"nifti"``.
    """

    pixels: np.ndarray
    plane: Plane
    name: str
    frame_of_reference: str | None = None
    source_format: str = ""


def parse_image_spec(spec: str) -> tuple[Path, int | None]:
    """Split ``PATH[:K]`` into the path and the index (``None`` when absent).

    A path that exists as given wins over a ``:K`` reading of it.
    """
    spec = str(spec)
    m = _SPEC.match(spec)
    if m and not Path(spec).exists():
        return Path(m.group("path")), int(m.group("index"))
    return Path(spec), None


def detect_format(path: Path) -> str:
    """``"nifti"`` or ``"dicom"`` from the extension, then the magic bytes; ``"dicom?"``
    when neither is recognised (a DICOM file without preamble is still possible).

    Raises:
        InputFileError: missing file, folder, or neither format.
    """
    if not path.exists():
        raise InputFileError(path, "no such file")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not an image file")
    name = path.name.lower()
    if name.endswith(_NIFTI_SUFFIXES):
        return "nifti"
    try:
        with open(path, "rb") as fh:
            head = fh.read(352)
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror or exc})") from None
    if head[128:132] == b"DICM":
        return "dicom"
    if head[344:348] in (b"n+1\0", b"ni1\0") or head[4:8] in (b"n+2\0", b"ni2\0"):
        return "nifti"
    if head[:2] == b"\x1f\x8b":
        raise InputFileError(path, "gzip file without a .nii.gz name: not a DICOM or NIfTI image")
    # DICOM files without the 128-byte preamble still exist; let pydicom decide.
    return "dicom?"


def _pick(index: int | None, count: int, what: str, path: Path) -> int:
    if index is None:
        if count == 1:
            return 0
        raise InputFileError(path, f"has {count} {what}s: add :K to choose one (0..{count - 1})")
    if not 0 <= index < count:
        raise InputFileError(path, f"{what} index {index} is out of range (0..{count - 1})")
    return index


def _load_nifti(path: Path, index: int | None) -> tuple[np.ndarray, Plane, None]:
    from planessl.io import nifti

    planes = nifti.read_planes(path)
    k = _pick(index, len(planes), "slice", path)
    img = nifti.load_header(path)
    ndim = len(img.shape)
    if ndim == 2:
        index = (slice(None), slice(None))
    elif ndim == 3:
        index = (slice(None), slice(None), k)
    elif ndim == 4:
        index = (slice(None), slice(None), k, 0)  # a cine: frame 0 of the slice
    else:
        raise InputFileError(path, f"unsupported NIfTI shape {img.shape}")
    arr = nifti.read_voxels(img, path, index)  # truncated files, voxel types: one line
    if not np.all(np.isfinite(arr)):
        raise InputFileError(path, "voxel data holds NaN or infinite values")
    return arr, planes[k], None


def _load_dicom(path: Path, index: int | None) -> tuple[np.ndarray, Plane, str | None]:
    from planessl.io import dicom

    ds = dicom.read_dataset(path, pixels=True)
    dicom.require_pixels(ds, path)  # a file cut short: say so, not "missing Rows/Columns"
    try:
        planes = dicom.planes_from_dataset(ds)
    except GeometryError as exc:
        raise InputFileError(path, str(exc)) from None
    frames = dicom.pixel_frames(ds, path)
    if len(planes) == 1 and frames.shape[0] > 1:
        planes = planes * frames.shape[0]  # a cine stored as frames of one plane
    if len(planes) != frames.shape[0]:
        raise InputFileError(path, f"{frames.shape[0]} frames of pixels but {len(planes)} planes")
    f = _pick(index, frames.shape[0], "frame", path)
    uid = str(ds.get("FrameOfReferenceUID") or "").strip()
    return frames[f], planes[f], (uid or None)


def load_image_spec(spec: str) -> LoadedImage:
    """Load ``PATH[:K]`` as one 2D image and its plane.

    Raises:
        InputFileError: one clear line naming the file: not an image, missing geometry,
            non-orthonormal orientation, no valid NIfTI affine, index out of range.
    """
    path, index = parse_image_spec(spec)
    fmt = detect_format(path)
    if fmt == "nifti":
        pixels, plane, frame_of_reference = _load_nifti(path, index)
    elif fmt == "dicom":
        pixels, plane, frame_of_reference = _load_dicom(path, index)
    else:
        try:
            pixels, plane, frame_of_reference = _load_dicom(path, index)
        except InputFileError as exc:
            if "not a readable DICOM file" not in exc.reason:
                raise
            raise InputFileError(path, "not an image: neither DICOM nor NIfTI "
                                       "(.nii / .nii.gz)") from None
    if pixels.shape != plane.shape:
        raise InputFileError(path, f"pixel array {pixels.shape} does not match the geometry's "
                                   f"shape {plane.shape}")
    return LoadedImage(pixels=pixels, plane=plane, name=str(spec),
                       frame_of_reference=frame_of_reference,
                       source_format="nifti" if fmt == "nifti" else "dicom")
