"""Find the studies in any folder tree of DICOM files, reading headers only.

Step 1 (``discover_dicom``, parallel over files): one pydicom header read per file
(``stop_before_pixels``, only the tags planessl uses) gives one :class:`ImageRecord` per
2D image (per frame for enhanced multi-frame MR) with its plane, timing, naming text and the
file offset of its pixel data. Records are grouped into exams by StudyInstanceUID, or, where
an anonymiser blanked it, by the evidence that remains (:mod:`planessl.io.dicom_exams`).

Step 2 (``load_dicom``, parallel over studies): the pixels of each image are read (a direct
``numpy.fromfile`` at the recorded offset for uncompressed little-endian data, pydicom
otherwise) and :mod:`planessl.io.dicom_series` builds the stacks and cines.

Nothing read here reaches the cache except pixels and geometry: UIDs become opaque ids,
descriptions are used only to recognise views.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from planessl.errors import GeometryError, InputFileError
from planessl.geometry import Plane
from planessl.io.dicom import (_frame_item, is_image_storage, number_of_frames, pixel_frames,
                               planes_from_dataset)
from planessl.io.dicom_exams import group_exams
from planessl.io.dicom_fast import read_fast_header
from planessl.io.dicom_labels import is_sidecar, sidecar_label_maps
from planessl.io.dicom_records import ImageRecord, dicom_time_seconds
from planessl.io.dicom_series import build_study
from planessl.io.sources import Skipped, SourceStudy, describe_error
from planessl.parallel import process_pool
from planessl.study import normalise_laterality

__all__ = ["ImageRecord", "SCAN_TAGS", "discover_dicom", "load_dicom", "read_record_pixels",
           "scan_file", "scan_files", "walk_files"]

#: Header tags read in the scan (everything else is skipped unparsed).
SCAN_TAGS = [
    "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
    "SeriesDescription", "ProtocolName", "ImageType", "BodyPartExamined", "Modality",
    "FrameOfReferenceUID", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "SliceThickness", "Rows", "Columns", "TriggerTime", "InstanceNumber", "AcquisitionNumber",
    "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "RescaleSlope", "RescaleIntercept", "PhotometricInterpretation",
    "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence",
    "DirectoryRecordSequence", "PatientID", "StudyDate", "StudyTime", "Laterality",
    "ImageLaterality", "SequenceName", "AcquisitionTime", "SeriesTime",
]
_NATIVE_LE = {ExplicitVRLittleEndian: False, ImplicitVRLittleEndian: True}
_PIXEL_TAGS = {b"\xe0\x7f\x10\x00": "PixelData", b"\xe0\x7f\x08\x00": "FloatPixelData",
               b"\xe0\x7f\x09\x00": "DoubleFloatPixelData"}
_PIXEL_TAGS_BIG_ENDIAN = {b"\x7f\xe0\x00\x10", b"\x7f\xe0\x00\x08", b"\x7f\xe0\x00\x09"}


def _number(value, default=None):
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


_FORMAT_CACHE: dict[tuple, tuple | None] = {}


def _pixel_format(ds: Dataset) -> tuple | None:
    """``(implicit_vr, dtype, count)`` of uncompressed little-endian mono pixel data, else
    ``None`` (cached per combination of the header values it depends on)."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    key = (ts, *(_raw(ds, k) for k in ("SamplesPerPixel", "BitsAllocated",
                                        "PixelRepresentation", "Rows", "Columns",
                                        "NumberOfFrames")))
    if key in _FORMAT_CACHE:
        return _FORMAT_CACHE[key]
    out = None
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if ts in _NATIVE_LE and int(ds.get("SamplesPerPixel", 1) or 1) == 1 and bits in (8, 16, 32):
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        dtype = np.dtype(("<i" if signed else "<u") + str(bits // 8))
        count = int(ds.Rows) * int(ds.Columns) * number_of_frames(ds)
        out = (_NATIVE_LE[ts], dtype.str, count)
    if len(_FORMAT_CACHE) > _CACHE_LIMIT:
        _FORMAT_CACHE.clear()
    _FORMAT_CACHE[key] = out
    return out


def _fast_pixel_info(fp, ds: Dataset, path: Path) -> tuple | None:
    """Offset, dtype and count of uncompressed little-endian pixel data (else ``None``).

    pydicom stops right before the pixel data element; its 8- or 12-byte element header is
    parsed here by hand (only these few bytes) so that step 2 can read the pixels with one
    ``numpy.fromfile`` instead of a second full pydicom parse of the file.
    """
    fmt = _pixel_format(ds)
    if fmt is None:
        return None
    implicit, dtype_str, count = fmt
    dtype = np.dtype(dtype_str)
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8 or _PIXEL_TAGS.get(head[:4]) != "PixelData":
        return None
    if implicit:  # implicit VR: tag, 4-byte length
        length, offset = int.from_bytes(head[4:8], "little"), start + 8
    elif head[4:6] in (b"OB", b"OW", b"UN"):  # explicit long form: tag, VR, 2 reserved, length
        length, offset = int.from_bytes(head[8:12], "little"), start + 12
    else:
        return None
    if length == 0xFFFFFFFF:  # encapsulated: let pydicom decide
        return None
    if count * dtype.itemsize > length:
        raise InputFileError(path, f"pixel data holds {length} bytes, {count * dtype.itemsize} "
                                   f"expected")
    if os.fstat(fp.fileno()).st_size < offset + count * dtype.itemsize:
        raise InputFileError(path, "file is truncated (pixel data ends early)")
    return (offset, dtype.str, count)


def _read_header(path: Path) -> tuple[Dataset, tuple | None]:
    try:
        with open(path, "rb") as fp:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True)
            except pydicom.errors.InvalidDicomError:
                # Files without the 128-byte preamble: accept only when they start like a
                # DICOM data set (group 0002 or 0008 little endian).
                fp.seek(0)
                if fp.read(2) not in (b"\x02\x00", b"\x08\x00"):
                    raise InputFileError(path, "not a DICOM file") from None
                fp.seek(0)
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            pos = fp.tell()
            head = fp.read(4)
            fp.seek(pos)
            has_pixels = head in _PIXEL_TAGS or head in _PIXEL_TAGS_BIG_ENDIAN
            cut = not has_pixels and not head and is_image_storage(ds)  # image, then EOF
            fast = _fast_pixel_info(fp, ds, path) if has_pixels and "Rows" in ds else None
    except InputFileError:
        raise
    except PermissionError:
        raise InputFileError(path, "permission denied") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            NotImplementedError, pydicom.errors.InvalidDicomError) as exc:
        raise InputFileError(path, f"not a readable DICOM file ({describe_error(exc)})") from None
    if "DirectoryRecordSequence" in ds:
        raise InputFileError(path, "DICOMDIR index file (not an image)")
    if not has_pixels:
        raise InputFileError(path, "no pixel data: an image file truncated before its pixels"
                             if cut else "no pixel data (not an image)")
    return ds, fast


#: Per-process caches keyed on raw header bytes: files of one series share their
#: series-level fields, frames of one slice share their geometry, so each is parsed (and
#: each Plane checked and built) once instead of once per file.
_SERIES_CACHE: dict[tuple, dict] = {}
_PLANE_CACHE: dict[tuple, Plane | str] = {}
_CACHE_LIMIT = 20000


def _raw(ds: Dataset, keyword: str):
    """The undecoded bytes of an element (its decoded value when pydicom already has it)."""
    elem = ds.get_item(keyword)
    if elem is None:
        return None
    value = elem.value
    return value if isinstance(value, (bytes, str, int, float, type(None))) else repr(value)


def _raw_number(ds: Dataset, keyword: str, default=None):
    """A single DS/IS number straight from its ASCII bytes (pydicom's conversion of each
    value costs more than the whole rest of the scan); decoded values pass through."""
    value = _raw(ds, keyword)
    if isinstance(value, bytes):
        try:
            return float(value.strip(b" \x00")) if value.strip(b" \x00") else default
        except ValueError:
            return _number(ds.get(keyword), default)
    return _number(ds.get(keyword), default) if value is not None else default


def _values(value) -> list:
    """A multi-valued element's values as a list (one value, or none, too)."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) \
        else [value]


def _text(ds: Dataset, keyword: str) -> str:
    """A header value as stripped text ("" when absent or blank)."""
    return str(ds.get(keyword, "") or "").strip()


def _series_fields(ds: Dataset, path: Path) -> dict:
    key = (path.parent, _raw(ds, "SeriesInstanceUID"), _raw(ds, "StudyInstanceUID"),
           _raw(ds, "SeriesDescription"), _raw(ds, "ProtocolName"), _raw(ds, "ImageType"),
           _raw(ds, "FrameOfReferenceUID"), _raw(ds, "SamplesPerPixel"),
           _raw(ds, "BodyPartExamined"), _raw(ds, "SeriesNumber"), _raw(ds, "PatientID"),
           _raw(ds, "StudyDate"), _raw(ds, "StudyTime"), _raw(ds, "Laterality"),
           _raw(ds, "ImageLaterality"), _raw(ds, "SequenceName"), _raw(ds, "SeriesTime"))
    hit = _SERIES_CACHE.get(key)
    if hit is not None:
        return hit
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise InputFileError(path, f"colour image (SamplesPerPixel {ds.SamplesPerPixel}): "
                                   f"not an MR magnitude image")
    text = " ".join(str(ds.get(k, "") or "") for k in ("SeriesDescription", "ProtocolName"))
    text = f"{text} {path.parent.name}"
    image_type = "\\".join(str(v).strip().upper() for v in _values(ds.get("ImageType")))
    body = str(ds.get("BodyPartExamined", "") or "")
    number = int(_number(ds.get("SeriesNumber"), 0))
    # Without a SeriesInstanceUID a series is the folder holding its files plus its number
    # and description; without a StudyInstanceUID, discover_dicom groups by other evidence.
    series_uid = _text(ds, "SeriesInstanceUID") or (
        f"folder:{os.path.abspath(path.parent)}|{number}|{_text(ds, 'SeriesDescription')}")
    hint = [_text(ds, k) for k in ("PatientID", "StudyDate", "StudyTime")]
    fields = {
        "study_uid": _text(ds, "StudyInstanceUID"), "series_uid": series_uid,
        "exam_hint": "|".join(hint) if all(hint) else "",
        "series_number": number, "text": text,
        "frame_of_reference": _text(ds, "FrameOfReferenceUID"),
        "knee": "knee" in (body + " " + text).lower(),
        # Which knee: Laterality, else ImageLaterality, else a side named in the body part
        # or the series name (None when nothing says; see normalise_laterality).
        "laterality": (normalise_laterality(_text(ds, "Laterality"))
                       or normalise_laterality(_text(ds, "ImageLaterality"))
                       or normalise_laterality(body) or normalise_laterality(text)),
        "localizer": "LOCALIZER" in image_type.split("\\"),
        "image_type": image_type, "sequence_name": _text(ds, "SequenceName"),
        # the series' time; each image's own AcquisitionTime replaces it where given
        "acquisition_time": dicom_time_seconds(_raw(ds, "SeriesTime"))}
    if len(_SERIES_CACHE) > _CACHE_LIMIT:
        _SERIES_CACHE.clear()
    _SERIES_CACHE[key] = fields
    return fields


def _classic_plane(ds: Dataset, path: Path) -> Plane:
    key = tuple(_raw(ds, k) for k in ("ImagePositionPatient", "ImageOrientationPatient",
                                      "PixelSpacing", "SliceThickness", "Rows", "Columns"))
    hit = _PLANE_CACHE.get(key)
    if hit is None:
        try:
            hit = planes_from_dataset(ds)[0]
        except GeometryError as exc:
            hit = str(exc)
        if len(_PLANE_CACHE) > _CACHE_LIMIT:
            _PLANE_CACHE.clear()
        _PLANE_CACHE[key] = hit
    if isinstance(hit, str):
        raise InputFileError(path, hit)
    return hit


#: Per-file values (parsed from their bytes on every file); every other value the scan uses
#: is part of the key of :data:`_TEMPLATE_CACHE`.
_PER_FILE = {"TriggerTime": "trigger_time", "InstanceNumber": "instance_number",
             "RescaleSlope": "slope", "RescaleIntercept": "intercept",
             "AcquisitionTime": "acquisition_time"}
_KEY_TAGS = sorted(tag_for_keyword(k) for k in SCAN_TAGS if k not in _PER_FILE)
_PER_FILE_TAGS = {tag_for_keyword(k): k for k in _PER_FILE}
_TT, _IN, _RS, _RI, _AT = (tag_for_keyword(k) for k in _PER_FILE)
_ST = tag_for_keyword("SeriesTime")
_WANTED = frozenset(_KEY_TAGS) | frozenset(_PER_FILE_TAGS)
#: Records of the first file of each combination of shared header values (see scan_file).
_TEMPLATE_CACHE: dict[tuple, list[ImageRecord]] = {}


def _ascii_number(raw: bytes | None, default=None):
    """A single DS/IS value from its ASCII bytes (``default`` when absent or empty)."""
    if raw is None:
        return default
    raw = raw.strip(b" \x00")
    return float(raw) if raw else default


def _scan_fast(path: str) -> list[ImageRecord] | None:
    """Records of a file via :mod:`planessl.io.dicom_fast`, or ``None`` to use pydicom.

    Files that share every scanned value except the per-file ones (the frames of one cine
    slice) share one template: the first such file is scanned with pydicom, the others only
    get their own trigger time, instance number, rescaling and pixel offset.
    """
    head = read_fast_header(path, _WANTED)
    if head is None:
        return None
    v = head.values
    key = (os.path.dirname(path), *(v.get(t) for t in _KEY_TAGS))
    template = _TEMPLATE_CACHE.get(key)
    if template is None:
        template = scan_file_pydicom(Path(path))
        if len(_TEMPLATE_CACHE) > _CACHE_LIMIT:
            _TEMPLATE_CACHE.clear()
        _TEMPLATE_CACHE[key] = template
        return template
    try:
        tt = _ascii_number(v.get(_TT))
        instance = int(_ascii_number(v.get(_IN), 0))
        slope = _ascii_number(v.get(_RS), 1.0) or 1.0
        intercept = _ascii_number(v.get(_RI), 0.0) or 0.0
    except ValueError:
        return None
    acquired = dicom_time_seconds(v.get(_AT))
    if acquired is None:
        acquired = dicom_time_seconds(v.get(_ST))
    fast = template[0].fast_pixels
    if fast is not None:
        _, dtype, count = fast
        nbytes = count * np.dtype(dtype).itemsize
        if head.pixel_vr not in (b"OB", b"OW") or head.pixel_length < nbytes \
                or head.file_size < head.pixel_offset + nbytes:
            return None  # let pydicom name the problem
        fast = (head.pixel_offset, dtype, count)
    n = len(template)
    return [replace(r, path=path, fast_pixels=fast, instance_number=instance,
                    trigger_time=float(r.frame) if tt is None and n > 1 else tt,
                    slope=slope, intercept=intercept, acquisition_time=acquired)
            for r in template]


def scan_file(path: str | Path) -> list[ImageRecord]:
    """Header-only read of one file: one record per 2D image.

    Raises:
        InputFileError: not DICOM, unreadable, no image, or unusable geometry.
    """
    records = _scan_fast(str(path))
    return scan_file_pydicom(Path(path)) if records is None else records


def scan_file_pydicom(path: Path) -> list[ImageRecord]:
    """:func:`scan_file` with pydicom (any file pydicom reads)."""
    ds, fast = _read_header(path)
    fields = _series_fields(ds, path)
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    n_frames = number_of_frames(ds)
    if enhanced:
        try:
            planes = planes_from_dataset(ds)
        except GeometryError as exc:
            raise InputFileError(path, str(exc)) from None
    else:
        planes = [_classic_plane(ds, path)] * n_frames  # a classic multi-frame: one plane
    base_tt = _raw_number(ds, "TriggerTime")
    base_slope = _raw_number(ds, "RescaleSlope", 1.0)
    base_intercept = _raw_number(ds, "RescaleIntercept", 0.0)
    instance = int(_raw_number(ds, "InstanceNumber", 0))
    acquired = dicom_time_seconds(_raw(ds, "AcquisitionTime"))
    if acquired is not None:
        fields = {**fields, "acquisition_time": acquired}
    records = []
    for f, plane in enumerate(planes):
        tt, slope, intercept = base_tt, base_slope, base_intercept
        if enhanced:
            tt = _number(_frame_item(ds, f, "CardiacSynchronizationSequence",
                                     "NominalCardiacTriggerDelayTime"), tt)
            slope = _number(_frame_item(ds, f, "PixelValueTransformationSequence",
                                        "RescaleSlope"), slope)
            intercept = _number(_frame_item(ds, f, "PixelValueTransformationSequence",
                                            "RescaleIntercept"), intercept)
        elif n_frames > 1 and tt is None:
            tt = float(f)  # frames of a classic cine without timing: keep their order
        records.append(ImageRecord(
            path=str(path), frame=f, plane=plane, trigger_time=tt, instance_number=instance,
            fast_pixels=fast, slope=slope if slope else 1.0, intercept=intercept or 0.0,
            **fields))
    return records


def scan_files(paths: list[str]) -> tuple[list[ImageRecord], list[Skipped]]:
    """Scan several files (one worker's chunk)."""
    records: list[ImageRecord] = []
    skipped: list[Skipped] = []
    for p in paths:
        try:
            records.extend(scan_file(p))
        except InputFileError as exc:
            skipped.append(Skipped(exc.path, exc.reason))
    return records, skipped


def walk_files(paths: list[Path]) -> tuple[list[str], list[Skipped]]:
    """Every regular file under the given files/folders (hidden files skipped)."""
    files: list[str] = []
    skipped: list[Skipped] = []
    for p in paths:
        if p.is_file():
            files.append(str(p))
            continue
        n = len(files)
        for root, dirs, names in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files.extend(os.path.join(root, f) for f in sorted(names) if not f.startswith("."))
        if len(files) == n:
            skipped.append(Skipped(str(p), "empty folder (no files)"))
    return files, skipped


def discover_dicom(paths: list[Path], workers: int = 1, progress: bool | None = None,
                   chunk: int = 256) -> tuple[list[SourceStudy], list[Skipped]]:
    """Header scan of every file; one :class:`SourceStudy` per exam (StudyInstanceUID, or
    the evidence of :func:`planessl.io.dicom_exams.group_exams` where it is blank)."""
    from tqdm import tqdm

    files, skipped = walk_files(paths)
    sidecars = [f for f in files if is_sidecar(f)]
    files = [f for f in files if not is_sidecar(f)]
    records: list[ImageRecord] = []
    bar = tqdm(total=len(files), desc="headers", unit="file",
               disable=None if progress is None else not progress)
    chunks = [files[i:i + chunk] for i in range(0, len(files), chunk)]
    if workers > 1 and len(chunks) > 1:
        with process_pool(workers) as pool:
            for (recs, skips), part in zip(pool.map(scan_files, chunks), chunks):
                records.extend(recs)
                skipped.extend(skips)
                bar.update(len(part))
    else:
        for part in chunks:
            recs, skips = scan_files(part)
            records.extend(recs)
            skipped.extend(skips)
            bar.update(len(part))
    bar.close()
    sources = []
    claimed: set[str] = set()
    for exam in group_exams(records):
        recs = exam.records
        folders = {os.path.dirname(r.path) for r in recs}
        labels = [f for f in sidecars if os.path.dirname(f) in folders]
        claimed.update(labels)
        sources.append(SourceStudy(key=f"dicom:{exam.key}", format="dicom",
                                   files=sorted({Path(r.path) for r in recs} |
                                                {Path(f) for f in labels}),
                                   payload={"records": recs, "labels": labels,
                                            "grouped_by": exam.evidence}))
    skipped.extend(Skipped(f, "label sidecar beside no usable DICOM image")
                   for f in sidecars if f not in claimed)
    return sources, skipped


def read_record_pixels(records: list[ImageRecord], skipped: list[Skipped]
                       ) -> list[tuple[ImageRecord, np.ndarray]]:
    """Pixels ``(rows, cols)`` of each record (rescaled float32, or the stored integers when
    there is no rescaling); unreadable ones are skipped."""
    out: list[tuple[ImageRecord, np.ndarray]] = []
    by_file: dict[str, list[ImageRecord]] = {}
    for r in records:
        by_file.setdefault(r.path, []).append(r)
    for path, recs in by_file.items():
        try:
            frames = _read_file_pixels(path, recs[0])
        except InputFileError as exc:
            skipped.append(Skipped(exc.path, exc.reason))
            continue
        for r in recs:
            if r.frame >= frames.shape[0]:
                skipped.append(Skipped(path, f"frame {r.frame} missing from the pixel data"))
                continue
            img = frames[r.frame]
            if r.slope != 1.0 or r.intercept != 0.0:
                img = img * np.float32(r.slope) + np.float32(r.intercept)
            out.append((r, img))
    return out


def _read_file_pixels(path: str, rec: ImageRecord) -> np.ndarray:
    """All frames of a file ``(frames, rows, cols)`` (stored integers or float32), before
    rescaling."""
    rows, cols = rec.plane.shape
    if rec.fast_pixels is not None:
        offset, dtype, count = rec.fast_pixels
        try:
            arr = np.fromfile(path, dtype=np.dtype(dtype), count=count, offset=offset)
        except OSError as exc:
            raise InputFileError(path, f"cannot read pixel data ({describe_error(exc)})") from None
        if arr.size != count:
            raise InputFileError(path, "file is truncated (pixel data ends early)")
        return arr.reshape(-1, rows, cols)  # converted to float32 once, into the series
    try:
        ds = pydicom.dcmread(path, force=True)
        arr = pixel_frames(ds, path, rescale=False)  # records carry per-frame rescaling
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on broken files
        raise InputFileError(path, f"cannot read pixel data ({describe_error(exc)})") from None
    if arr.shape[1:] != (rows, cols):
        raise InputFileError(path, f"pixel array {arr.shape[1:]} != Rows x Columns {(rows, cols)}")
    return arr


def load_dicom(source: SourceStudy, study_id: str,
               skipped: list[Skipped] | None = None, series_records: list | None = None):
    """Read one study's pixels and build its series (see :mod:`planessl.io.dicom_series`;
    ``series_records`` is ``records`` of :func:`~planessl.io.dicom_series.build_study`)."""
    skipped = [] if skipped is None else skipped
    records = source.payload["records"]
    labels = sidecar_label_maps(source.payload["labels"], records, skipped)
    images = read_record_pixels(records, skipped)
    return build_study(images, study_id, skipped, labels=labels,
                       grouped_by=source.payload.get("grouped_by", ""),
                       records=series_records)
