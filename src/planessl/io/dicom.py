"""Plane geometry and pixels from DICOM headers (pydicom).

Classic MR images carry ImagePositionPatient (IPP), ImageOrientationPatient (IOP) and
PixelSpacing at the top level; enhanced (multi-frame) MR carries them per frame in
PerFrameFunctionalGroupsSequence, or once in SharedFunctionalGroupsSequence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from planessl.errors import GeometryError, InputFileError
from planessl.geometry import Plane


def read_dataset(path: str | Path, pixels: bool = True) -> Dataset:
    """Read a DICOM file; ``pixels=False`` stops before the pixel data (fast header scan).

    Raises:
        InputFileError: when the file is missing, unreadable or not DICOM.
    """
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=not pixels)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a folder, not a DICOM file") from None
    except PermissionError:
        raise InputFileError(path, "permission denied") from None
    except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError, KeyError,
            TypeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(path, f"not a readable DICOM file ({reason})") from None


def _floats(value, n: int, what: str) -> list[float]:
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise GeometryError(f"{what} is not numeric: {value!r}") from None
    if len(out) != n or not all(np.isfinite(out)):
        raise GeometryError(f"{what} must be {n} finite numbers, got {value!r}")
    return out


def _frame_item(ds: Dataset, frame: int, keyword: str, inner: str):
    """Look up a functional-group attribute of an enhanced multi-frame dataset."""
    for group_seq in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        seq = ds.get(group_seq)
        if not seq:
            continue
        item = seq[frame] if group_seq.startswith("PerFrame") and frame < len(seq) else seq[0]
        sub = item.get(keyword)
        if sub and inner in sub[0]:
            return sub[0].get(inner)
    return None


def number_of_frames(ds: Dataset) -> int:
    """Frames in the pixel data (1 for classic single-frame images)."""
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def planes_from_dataset(ds: Dataset) -> list[Plane]:
    """The plane of each frame of a DICOM dataset (one for classic images).

    Raises:
        GeometryError: when orientation, position or spacing is missing or invalid.
    """
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not rows or not cols:
        raise GeometryError("missing Rows/Columns")
    planes = []
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    for f in range(number_of_frames(ds) if enhanced else 1):
        if enhanced:
            ipp = _frame_item(ds, f, "PlanePositionSequence", "ImagePositionPatient")
            iop = _frame_item(ds, f, "PlaneOrientationSequence", "ImageOrientationPatient")
            ps = _frame_item(ds, f, "PixelMeasuresSequence", "PixelSpacing")
            th = _frame_item(ds, f, "PixelMeasuresSequence", "SliceThickness")
            ipp = ipp if ipp is not None else ds.get("ImagePositionPatient")
            iop = iop if iop is not None else ds.get("ImageOrientationPatient")
            ps = ps if ps is not None else ds.get("PixelSpacing")
            th = th if th is not None else ds.get("SliceThickness")
        else:
            ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
            ps, th = ds.get("PixelSpacing"), ds.get("SliceThickness")
        if iop is None:
            raise GeometryError("missing ImageOrientationPatient")
        if ipp is None:
            raise GeometryError("missing ImagePositionPatient")
        if ps is None:
            raise GeometryError("missing PixelSpacing")
        iop = _floats(iop, 6, "ImageOrientationPatient")
        try:
            thickness = float(th) if th not in (None, "") else None
        except (TypeError, ValueError):
            thickness = None
        planes.append(Plane(origin=_floats(ipp, 3, "ImagePositionPatient"),
                            row_dir=iop[:3], col_dir=iop[3:],
                            spacing=tuple(_floats(ps, 2, "PixelSpacing")),
                            shape=(int(rows), int(cols)), thickness=thickness))
    return planes


def read_planes(path: str | Path) -> list[Plane]:
    """Planes of a DICOM file (header only). Errors name the file."""
    ds = read_dataset(path, pixels=False)
    try:
        return planes_from_dataset(ds)
    except GeometryError as exc:
        raise InputFileError(path, str(exc)) from None


def is_image_storage(ds: Dataset) -> bool:
    """The SOP class (of the data set or its file meta) is an image storage class."""
    meta = getattr(ds, "file_meta", None)
    uid = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    return "Image" in str(getattr(uid, "name", "") or "")


#: Pixel data elements of an image (integer, float, double).
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def require_pixels(ds: Dataset, path: str | Path = "") -> None:
    """Refuse a data set read in full (``read_dataset(pixels=True)``) without whole pixel data:
    an image file cut before its pixels (pydicom reads a data set cut short without a
    complaint, so its geometry may be missing too) or inside them (native transfer syntaxes:
    fewer bytes than Rows x Columns x frames x samples x BitsAllocated / 8).

    Raises:
        InputFileError: one line saying the file is truncated, or is no image.
    """
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise InputFileError(path, "no pixel data: an image file truncated before its pixels"
                             if is_image_storage(ds) else "no pixel data (not an image)")
    if "PixelData" not in ds:
        return
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        native = ts is not None and not ts.is_compressed
    except (AttributeError, ValueError):  # not a (known) transfer syntax UID
        native = False
    if not native:
        return  # encapsulated or unknown: the pixel decoder says what is wrong
    try:
        expected = (int(ds.Rows) * int(ds.Columns) * number_of_frames(ds)
                    * int(ds.get("SamplesPerPixel", 1) or 1) * int(ds.BitsAllocated)) // 8
        held = len(ds.PixelData)
    except (AttributeError, TypeError, ValueError):
        return  # the header's own faults are reported where it is read
    if 0 < held < expected:
        raise InputFileError(path, f"file is truncated (pixel data ends early: {held} of "
                                   f"{expected} bytes)")


def pixel_frames(ds: Dataset, path: str | Path = "", rescale: bool = True) -> np.ndarray:
    """Pixel data as float32 ``(frames, rows, cols)`` after RescaleSlope/Intercept
    (``rescale=False``: stored values).

    Raises:
        InputFileError: no pixel data, a file truncated in its pixels, no decoder for the
            transfer syntax, or non-finite values.
    """
    require_pixels(ds, path)
    try:
        arr = ds.pixel_array
    except AttributeError:
        raise InputFileError(path, "no pixel data") from None
    except (NotImplementedError, RuntimeError, ValueError) as exc:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(ts, "name", ts) or "unknown transfer syntax"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(path, f"cannot decode pixel data ({name}): {first}") from None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim != 3:
        raise InputFileError(path, f"unsupported pixel array shape {arr.shape} (colour images "
                                   f"are not MR magnitude images)")
    slope = float(ds.get("RescaleSlope", 1) or 1) if rescale else 1.0
    intercept = float(ds.get("RescaleIntercept", 0) or 0) if rescale else 0.0
    if slope != 1 or intercept != 0:
        arr = arr * np.float32(slope) + np.float32(intercept)
    if not np.all(np.isfinite(arr)):
        raise InputFileError(path, "pixel data holds NaN or infinite values")
    return arr


def read_image(path: str | Path) -> tuple[np.ndarray, list[Plane]]:
    """Pixels ``(frames, rows, cols)`` float32 and one plane per frame of a DICOM file."""
    ds = read_dataset(path, pixels=True)
    require_pixels(ds, path)
    try:
        planes = planes_from_dataset(ds)
    except GeometryError as exc:
        raise InputFileError(path, str(exc)) from None
    arr = pixel_frames(ds, path)
    if len(planes) == 1 and arr.shape[0] > 1:
        planes = planes * arr.shape[0]  # a cine stored as frames of one plane
    return arr, planes
