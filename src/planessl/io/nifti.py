"""NIfTI volumes (nibabel) with their geometry as planes in LPS.

Pixel ``(i, j)`` of slice ``k`` (and frame ``t`` for 4D cines) is ``array[i, j, k, t]`` of the
array nibabel loads; the RAS affine is converted to LPS once, in
:func:`planessl.geometry.planes_from_affine`.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from planessl.errors import GeometryError, InputFileError
from planessl.geometry import Plane, planes_from_affine


def load_header(path: str | Path) -> nib.Nifti1Image:
    """Open a NIfTI file (pixels are read lazily)."""
    try:
        img = nib.load(str(path))
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except Exception as exc:  # nibabel raises many types for a file that is not NIfTI
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(path, f"not a readable NIfTI file ({first})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputFileError(path, f"not a NIfTI image ({type(img).__name__})")
    return img


def valid_affine(img: nib.Nifti1Image, path: str | Path = "") -> np.ndarray:
    """The sform when its code is set, else the qform when its code is set.

    Raises:
        InputFileError: when neither is set (nibabel would invent a scaling-only affine).
    """
    sform, scode = img.header.get_sform(coded=True)
    if sform is not None and int(scode) > 0:
        return np.asarray(sform, dtype=np.float64)
    qform, qcode = img.header.get_qform(coded=True)
    if qform is not None and int(qcode) > 0:
        return np.asarray(qform, dtype=np.float64)
    raise InputFileError(path, "no valid affine: sform_code and qform_code are both 0")


def read_planes(path: str | Path) -> list[Plane]:
    """One plane per slice ``k`` of a NIfTI volume (header only)."""
    img = load_header(path)
    affine = valid_affine(img, path)
    shape = img.shape
    if len(shape) < 2:
        raise InputFileError(path, f"not an image: shape {shape}")
    try:
        return planes_from_affine(affine, tuple(shape[:3]) if len(shape) >= 3 else shape + (1,))
    except GeometryError as exc:
        raise InputFileError(path, str(exc)) from None


def read_volume(path: str | Path) -> tuple[np.ndarray, list[Plane]]:
    """Array ``(rows, cols, slices, frames)`` float32 and one plane per slice."""
    planes = read_planes(path)
    img = load_header(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    while data.ndim < 4:
        data = data[..., None]
    if data.ndim > 4:
        raise InputFileError(path, f"unsupported NIfTI shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise InputFileError(path, "voxel data holds NaN or infinite values")
    return data, planes
