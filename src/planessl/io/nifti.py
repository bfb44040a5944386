"""NIfTI volumes (nibabel) with their geometry as planes in LPS.

Pixel ``(i, j)`` of slice ``k`` (and frame ``t`` for 4D cines) is ``array[i, j, k, t]`` of the
array nibabel loads; the RAS affine is converted to LPS once, in
:func:`planessl.geometry.planes_from_affine`.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from planessl.errors import GeometryError, InputFileError
from planessl.geometry import Plane, planes_from_affine
from planessl.io.sources import describe_error


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
        return _checked_affine(np.asarray(sform, dtype=np.float64), "sform", path)
    qform, qcode = img.header.get_qform(coded=True)
    if qform is not None and int(qcode) > 0:
        return _checked_affine(np.asarray(qform, dtype=np.float64), "qform", path)
    raise InputFileError(path, "no valid affine: sform_code and qform_code are both 0")


def _checked_affine(affine: np.ndarray, which: str, path: str | Path) -> np.ndarray:
    """The affine, refused when it holds NaN/inf or an axis of (near) zero length."""
    if not np.all(np.isfinite(affine)):
        raise InputFileError(path, f"bad affine: the {which} holds NaN or infinite values")
    lengths = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(lengths < 1e-6) or abs(np.linalg.det(affine[:3, :3])) < 1e-9 * np.prod(lengths):
        raise InputFileError(path, f"bad affine: the {which} is singular (voxel axes of length "
                                   f"{', '.join(f'{v:g}' for v in lengths)} mm, or parallel)")
    return affine


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


#: Voxel types read as intensities (unsigned, signed, float, bool); complex or RGB are not.
_INTENSITY_KINDS = "uifb"


def read_voxels(img: nib.Nifti1Image, path: str | Path, index=()) -> np.ndarray:
    """``img.dataobj[index]`` as float32 (all voxels by default), refused with one line:
    a voxel type that is no intensity (complex, RGB), a zero-size dimension, a file that ends
    before its data (truncated ``.nii.gz`` / ``.nii``, or a header whose dimensions exceed the
    data), a volume too large for memory. NaN voxels are the caller's to check."""
    dtype = img.get_data_dtype()
    if dtype.kind not in _INTENSITY_KINDS or dtype.names is not None:
        raise InputFileError(path, f"voxel type {dtype} is not an intensity (complex or RGB "
                                   f"data are not read)")
    if any(int(n) == 0 for n in img.shape):
        raise InputFileError(path, f"empty volume: shape {tuple(img.shape)} has a zero-size "
                                   f"dimension")
    try:
        return np.asarray(img.dataobj[index] if index != () else img.dataobj,
                          dtype=np.float32)
    except MemoryError:
        raise InputFileError(path, f"volume of shape {tuple(img.shape)} does not fit in "
                                   f"memory") from None
    except (EOFError, OSError, ValueError, zlib.error) as exc:  # gzip / nibabel on short data
        raise InputFileError(path, f"voxel data cannot be read: the file is truncated or its "
                                   f"header's shape {tuple(img.shape)} exceeds its data "
                                   f"({describe_error(exc)})") from None


def read_volume(path: str | Path) -> tuple[np.ndarray, list[Plane]]:
    """Array ``(rows, cols, slices, frames)`` float32 and one plane per slice.

    Raises:
        InputFileError: not NIfTI, bad affine, voxel type that is no intensity (complex,
            RGB), a zero-size dimension, a file that ends before its data (truncated, or a
            header whose dimensions exceed the data), or NaN/inf voxels.
    """
    planes = read_planes(path)
    img = load_header(path)
    data = read_voxels(img, path)
    while data.ndim < 4:
        data = data[..., None]
    if data.ndim > 4:
        raise InputFileError(path, f"unsupported NIfTI shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise InputFileError(path, "voxel data holds NaN or infinite values")
    return data, planes
