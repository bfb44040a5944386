"""Write studies to disk in three public layouts, with exact geometry.

* ``dicom`` - Kaggle Data Science Bowl layout: ``<id>/study/sax_<n>/IM-<n>-<f>.dcm`` (one
  series folder per SAX slice, one file per frame), ``2ch_<n>/``, ``3ch_<n>/``, ``4ch_<n>/``
  and, for studies with localizers, one series folder per localizer (``loc_2ch_5/``,
  ``loc_4ch_6/``, ``loc_sax_7/``: single frame, the SAX localizer's slices in one series,
  series descriptions as scanners write them, see :data:`SERIES_DESCRIPTIONS`).
  Classic MR Image Storage, uint16 pixels (RescaleSlope 1, Intercept 0), UIDs derived from
  the study id (same study, same bytes). Labels lie beside the images of each series in
  ``labels.npz``: ``labels`` uint8 ``(F, H, W)`` (0 bg, 1 RV, 2 myo, 3 LV, 4 LA, 5 RA,
  6 aorta), ``frames`` (the labelled frame indices) and ``instance_numbers`` (the
  InstanceNumber of the file each frame is in). ``<id>/phantom.json`` holds the study
  targets and the ED/ES frames.
* ``ukbb`` - UK Biobank layout (as ``../shared/data/ukbb_demo/1``): ``sa.nii.gz`` (X, Y, Z, T),
  ``sa_ED``/``sa_ES``, ``la_2ch``/``la_3ch``/``la_4ch`` cines (X, Y, 1, T) and their ED/ES
  frames, ``seg_sa*`` (UK Biobank values: 1 LV, 2 myo, 3 RV), ``seg_la_2ch*`` (1 LA),
  ``seg_la_4ch*`` (1 LA, 2 RA), ``seg4_la_{2,3,4}ch*`` (1 LV, 2 myo, 3 RV, 4 LA, 5 RA and,
  beyond UK Biobank, 6 aorta). Voxel ``(i, j, k)`` is pixel ``(i, j)`` of slice ``k``; the
  sform (code 1) is built from the planes (LPS -> RAS); the qform is unset, as in UK Biobank.
* ``acdc`` - ACDC layout: ``patientXXX/patientXXX_4d.nii.gz``, ``patientXXX_frameYY.nii.gz``
  (ED and ES, frames numbered from 1), ``..._gt.nii.gz`` (1 RV, 2 myo, 3 LV) and ``Info.cfg``.

Each writer fills a folder it is given; :func:`write_subject` makes the subject appear
atomically (temporary folder, then :func:`os.replace`).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from planessl.geometry import Plane, affine_from_planes, stack_geometry
from planessl.phantom.vendors import VendorStyle, acquisition_times, style_header, vendor_style
from planessl.study import Series, Study, mid_slice_index

FORMATS = ("dicom", "ukbb", "acdc")
#: Formats of knee studies: DICOM (one series folder per stack), NIfTI (one file per stack)
#: and MRNet (``{sagittal,coronal,axial}/NNNN.npy`` + label CSVs, no geometry).
KNEE_FORMATS = ("dicom", "nifti", "mrnet")

#: DICOM SeriesNumber of each view (SAX slices get SAX_SERIES_START + slice index).
SERIES_NUMBERS = {"2ch": 2, "3ch": 3, "4ch": 4, "loc_2ch": 5, "loc_4ch": 6, "loc_sax": 7,
                  "sagittal": 31, "coronal": 32, "axial": 33}
SAX_SERIES_START = 10
#: Views written as one series holding all their slices (the localizers).
ONE_SERIES_VIEWS = ("loc_2ch", "loc_4ch", "loc_sax", "sagittal", "coronal", "axial")
#: DICOM SeriesDescription of each view (the localizers' as different scanners name them).
SERIES_DESCRIPTIONS = {"sax": "CINE_segmented_SAX", "2ch": "CINE_segmented_LAX_2Ch",
                       "3ch": "CINE_segmented_LVOT", "4ch": "CINE_segmented_LAX_4Ch",
                       "loc_2ch": "LOC 2CH", "loc_4ch": "localizer_4ch",
                       "loc_sax": "SAX LOC", "sagittal": "PD_FS_SAG", "coronal": "PD_FS_COR",
                       "axial": "PD_FS_TRA"}
#: planessl label -> UK Biobank label, per segmentation file kind.
UKBB_SEG = {"seg": {3: 1, 2: 2, 1: 3},
            "seg4": {3: 1, 2: 2, 1: 3, 4: 4, 5: 5, 6: 6},
            "la2": {4: 1},
            "la4": {4: 1, 5: 2}}
#: Study class -> ACDC group.
ACDC_GROUPS = {0: "NOR", 1: "HCM", 2: "DCM"}


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters) of a float."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text[:16]


def _uid(*parts: object) -> str:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _uint16(frames: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(frames), 0, 65535).astype(np.uint16)


def _patient(study: Study) -> tuple[str, str]:
    return f"PHANTOM^{study.id}", study.id.upper()[:64]


def _targets_json(study: Study, series: Series) -> dict:
    if study.group == "knee":
        return {"id": study.id, "targets": dict(study.targets), "laterality": study.laterality,
                "group": "knee"}
    return {"id": study.id, "targets": dict(study.targets), "ed_frame": series.ed_frame,
            "es_frame": series.es_frame, "frame_times_ms": series.frame_times,
            "labels": {"0": "background", "1": "RV", "2": "myocardium", "3": "LV", "4": "LA",
                       "5": "RA", "6": "aorta"}}


# ----------------------------------------------------------------------------- DICOM
def _dicom_series_folders(study: Study, style: VendorStyle | None = None
                          ) -> list[tuple[str, Series, list[int], int]]:
    """(folder name, series, slice indices, SeriesNumber) for every DICOM series to write."""
    out = []
    if style is not None:
        for s in study.series:
            first = style.numbers.get(s.view, 20 + len(out))
            if s.view == "sax" and style.sax_mid_slice_only:
                parts = [([mid_slice_index(s.planes)], first)]
            elif s.view == "sax" and not style.sax_one_series:
                parts = [([k], first + k) for k in range(s.n_slices)]
            else:
                parts = [(list(range(s.n_slices)), first)]
            out += [(style.folder(n, s.view), s, ks, n) for ks, n in parts]
        return sorted(out, key=lambda item: item[3])
    for s in study.series:
        if s.view == "sax":
            for k in range(s.n_slices):
                n = SAX_SERIES_START + k
                out.append((f"sax_{n}", s, [k], n))
        elif s.view in ONE_SERIES_VIEWS:
            n = SERIES_NUMBERS[s.view]
            out.append((f"{s.view}_{n}", s, list(range(s.n_slices)), n))
        else:
            n = SERIES_NUMBERS.get(s.view, 20 + len(out))
            out.append((f"{s.view}_{n}", s, [0], n))
    return out


def write_dicom(study: Study, folder: str | Path, vendor: str | None = None,
                patient_name: str | None = None, study_date: str | None = None) -> None:
    """Write ``study`` in the Kaggle DSB layout under ``folder`` (``folder/study/...``).

    With ``vendor`` (``siemens``, ``ge``, ``philips``; :mod:`planessl.phantom.vendors`) the
    series are named, numbered and timed as that vendor's exam and stored as an anonymised
    export: ``folder/<PatientName>/<StudyDate>/Series0003_<description>/IM-0003-0001`` (no
    extension), Study/Series/SOP/FrameOfReference UIDs blank. ``patient_name`` and
    ``study_date`` replace the phantom's (``PHANTOM^<id>``, ``20000101``) in the headers and
    the folder names.
    """
    folder = Path(folder)
    style = vendor_style(vendor) if vendor else None
    name, pid = _patient(study)
    name = patient_name or name
    date = study_date or "20000101"
    root = folder / "study" if style is None else folder / name / date
    study_uid = _uid(study.id, "study")
    frame_uid = _uid(study.id, "frame-of-reference")
    sax = study.views("sax")
    sax_normal = stack_geometry(sax[0].planes).normal if sax else None
    folders = _dicom_series_folders(study, style)
    starts = acquisition_times([n for *_, n in folders])
    cine_thick = [p.thickness for s in study.series if not s.view.startswith("loc_")
                  for p in s.planes if p.thickness]
    for folder_name, s, ks, number in folders:
        series_dir = root / folder_name
        series_dir.mkdir(parents=True, exist_ok=True)
        series_uid = _uid(study.id, "series", number)
        stack_normal = (sax_normal if s.view == "sax" else
                        stack_geometry(s.planes).normal if len(ks) > 1 else None)
        instance_numbers, label_maps = [], []
        for k in ks:
            plane = s.planes[k]
            normal = stack_normal if stack_normal is not None else plane.normal
            location = float(np.asarray(normal) @ plane.origin)
            pixels = _uint16(s.pixels[k])
            header = _dicom_template(plane, s, study_uid, series_uid, frame_uid, number, name,
                                     pid, location, study.laterality)
            header.StudyDate = header.SeriesDate = header.ContentDate = date
            if style is not None:
                thin = (min(cine_thick) - style.localizer_thinner_mm
                        if style.localizer_thinner_mm is not None and cine_thick
                        and s.view.startswith("loc_") else None)
                style_header(header, style, s.view, starts[number], ks.index(k), thin)
            encoder = _SeriesEncoder(header)
            for f in range(s.n_frames):
                instance = len(instance_numbers) + 1
                blank = style is not None and "SOPInstanceUID" in style.blank_uids
                sop_uid = "" if blank else _uid(study.id, "sop", number, instance)
                trigger = _ds(s.frame_times[f]) if s.frame_times else "0"
                data = encoder.encode(sop_uid, instance, trigger, pixels[f])
                ext = "" if style is not None else ".dcm"
                (series_dir / f"IM-{number:04d}-{instance:04d}{ext}").write_bytes(data)
                instance_numbers.append(instance)
            if s.labels is not None:
                label_maps.append(np.asarray(s.labels[k], np.uint8))
        if s.labels is not None:
            # labelled frame f of slice j is label map j * F + f (matched by InstanceNumber)
            frames = [j * s.n_frames + f for j in range(len(ks)) for f in s.labelled_frames]
            _save_npz(series_dir / "labels.npz", labels=np.concatenate(label_maps),
                      frames=np.asarray(frames, np.int32),
                      instance_numbers=np.asarray(instance_numbers, np.int32))
    first = study.series[0]
    _write_json(folder / "phantom.json", _targets_json(study, first))


#: Tags that change from frame to frame of one series (all others are shared).
_PER_FRAME_TAGS = ((0x0008, 0x0018), (0x0018, 0x1060), (0x0020, 0x0013), (0x7FE0, 0x0010))


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


class _SeriesEncoder:
    """Encodes the frames of one series: the shared header elements are encoded by pydicom
    once, the per-frame ones (SOP Instance UID, Trigger Time, Instance Number, Pixel Data)
    for every frame, and the parts are joined in tag order. Encoding the whole dataset per
    file with ``dcmwrite`` costs about 6 ms per image, too slow for a 400-image cine."""

    def __init__(self, header: Dataset) -> None:
        bounds = [pydicom.tag.Tag(*t) for t in _PER_FRAME_TAGS]
        self.chunks: list[bytes] = []
        lo = None
        for hi in bounds + [None]:
            part = Dataset()
            for elem in header:
                if (lo is None or elem.tag > lo) and (hi is None or elem.tag < hi):
                    part.add(elem)
            self.chunks.append(_encode(part))
            lo = hi

    def encode(self, sop_uid: str, instance: int, trigger: str, pixels: np.ndarray) -> bytes:
        meta = DicomBytesIO()
        meta.is_little_endian, meta.is_implicit_VR = True, False
        file_meta = _file_meta(sop_uid)
        if not sop_uid:  # a blanked UID (vendor exports): pydicom's check would refuse it
            file_meta.FileMetaInformationGroupLength = 0  # computed on writing
            file_meta.FileMetaInformationVersion = b"\x00\x01"
        write_file_meta_info(meta, file_meta, enforce_standard=bool(sop_uid))
        values = []
        for tag, vr, value in ((0x00080018, "UI", sop_uid), (0x00181060, "DS", trigger),
                               (0x00200013, "IS", instance),
                               (0x7FE00010, "OW", pixels.tobytes())):
            one = Dataset()
            one.add_new(tag, vr, value)
            values.append(_encode(one))
        out = [b"\0" * 128, b"DICM", meta.getvalue()]
        for chunk, value in zip(self.chunks, values):
            out += [chunk, value]
        out.append(self.chunks[-1])
        return b"".join(out)


def _file_meta(sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _dicom_template(plane: Plane, s: Series, study_uid: str, series_uid: str, frame_uid: str,
                    number: int, name: str, pid: str, location: float,
                    laterality: str | None = None) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"]
    ds.SOPClassUID = MRImageStorage
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20000101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.Modality = "MR"
    ds.Manufacturer = "planessl phantom"
    knee = s.view in ("sagittal", "coronal", "axial")
    ds.StudyDescription = "Knee (synthetic)" if knee else "Cardiac cine (synthetic)"
    if knee:
        ds.BodyPartExamined = "KNEE"
        if laterality:
            ds.Laterality = laterality[0].upper()
    ds.SeriesDescription = SERIES_DESCRIPTIONS.get(s.view, s.view)
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SS"
    ds.MRAcquisitionType = "2D"
    ds.SliceThickness = _ds(plane.thickness or 0)
    ds.CardiacNumberOfImages = s.n_frames
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = number
    ds.AcquisitionNumber = 1
    ds.ImagePositionPatient = [_ds(v) for v in plane.origin]
    ds.ImageOrientationPatient = [_ds(v) for v in np.concatenate([plane.row_dir, plane.col_dir])]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(location)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = plane.shape
    ds.PixelSpacing = [_ds(plane.spacing[0]), _ds(plane.spacing[1])]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    return ds


# ----------------------------------------------------------------------------- NIfTI
def _nifti(data: np.ndarray, planes: list[Plane], path: Path, frame_ms: float | None = None
           ) -> None:
    img = nib.Nifti1Image(data, affine_from_planes(planes, ras=True))
    hdr = img.header
    hdr.set_sform(img.affine, code=1)
    hdr.set_qform(None, code=0)
    hdr.set_xyzt_units("mm", "sec")
    if data.ndim == 4 and frame_ms:
        zooms = list(hdr.get_zooms())
        zooms[3] = frame_ms / 1000.0
        hdr.set_zooms(zooms)
    # nibabel's gzip stamps the time into the file: compress with a fixed mtime instead so
    # the same study gives the same bytes.
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0,
                                                compresslevel=1, filename="") as gz:
        gz.write(img.to_bytes())


def _volume(s: Series, frames) -> np.ndarray:
    """(H, W, S, T) int16 image of the given frames."""
    arr = np.clip(np.rint(s.pixels[:, frames]), -32768, 32767).astype(np.int16)
    return np.ascontiguousarray(arr.transpose(2, 3, 0, 1))


def _seg(s: Series, frames, mapping: dict[int, int]) -> np.ndarray:
    lut = np.zeros(256, np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return np.ascontiguousarray(lut[s.labels[:, frames]].transpose(2, 3, 0, 1))


def _frame_ms(s: Series) -> float | None:
    if s.frame_times and len(s.frame_times) > 1:
        return float(s.frame_times[1] - s.frame_times[0])
    return None


def write_ukbb(study: Study, folder: str | Path) -> None:
    """Write ``study`` in the UK Biobank NIfTI layout into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = {"sax": "sa", "2ch": "la_2ch", "3ch": "la_3ch", "4ch": "la_4ch"}
    for s in study.series:
        if s.view not in names:
            continue
        stem = names[s.view]
        planes = s.planes
        ms = _frame_ms(s)
        _nifti(_volume(s, slice(None)), planes, folder / f"{stem}.nii.gz", ms)
        phases = [("ED", s.ed_frame), ("ES", s.es_frame)]
        for tag, f in phases:
            if f is not None:
                _nifti(_volume(s, [f])[..., 0], planes, folder / f"{stem}_{tag}.nii.gz")
        if s.labels is None:
            continue
        if s.view == "sax":
            kinds = [("seg_sa", UKBB_SEG["seg"])]
        else:
            kinds = [(f"seg4_{stem}", UKBB_SEG["seg4"])]
            if s.view == "2ch":
                kinds.append(("seg_la_2ch", UKBB_SEG["la2"]))
            if s.view == "4ch":
                kinds.append(("seg_la_4ch", UKBB_SEG["la4"]))
        full = len(s.labelled_frames) == s.n_frames
        for seg_stem, mapping in kinds:
            if full:
                _nifti(_seg(s, slice(None), mapping), planes, folder / f"{seg_stem}.nii.gz", ms)
            for tag, f in phases:
                if f is not None and f in s.labelled_frames:
                    _nifti(_seg(s, [f], mapping)[..., 0], planes,
                           folder / f"{seg_stem}_{tag}.nii.gz")
    _write_json(folder / "phantom.json", _targets_json(study, study.series[0]))


def write_acdc(study: Study, folder: str | Path, patient: str,
               height_cm: float = 175.0, weight_kg: float = 75.0) -> None:
    """Write the SAX stack of ``study`` in the ACDC layout into ``folder`` (named
    ``patient``, e.g. ``patient001``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sax = study.views("sax")
    if not sax:
        raise ValueError(f"study {study.id} has no SAX stack to write as ACDC")
    s = sax[0]
    ed = 0 if s.ed_frame is None else s.ed_frame
    es = s.es_frame if s.es_frame is not None else ed
    ms = _frame_ms(s)
    _nifti(_volume(s, slice(None)), s.planes, folder / f"{patient}_4d.nii.gz", ms)
    acdc_labels = {1: 1, 2: 2, 3: 3}
    for f in sorted({ed, es}):
        _nifti(_volume(s, [f])[..., 0], s.planes, folder / f"{patient}_frame{f + 1:02d}.nii.gz")
        if s.labels is not None and f in s.labelled_frames:
            _nifti(_seg(s, [f], acdc_labels)[..., 0], s.planes,
                   folder / f"{patient}_frame{f + 1:02d}_gt.nii.gz")
    group = ACDC_GROUPS.get(int(study.targets.get("class", 0)), "NOR")
    info = (f"ED: {ed + 1}\nES: {es + 1}\nGroup: {group}\nHeight: {height_cm:.1f}\n"
            f"NbFrame: {s.n_frames}\nWeight: {weight_kg:.1f}\n")
    (folder / "Info.cfg").write_text(info)


def write_knee_nifti(study: Study, folder: str | Path) -> None:
    """A knee study as ``sagittal.nii.gz``, ``coronal.nii.gz``, ``axial.nii.gz`` (int16,
    ``(X, Y, Z)``, sform from the planes) and ``phantom.json`` (targets, laterality)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for s in study.series:
        _nifti(_volume(s, [0])[..., 0], s.planes, folder / f"{s.name}.nii.gz")
    _write_json(folder / "phantom.json", _targets_json(study, study.series[0]))


def write_mrnet(studies: list[Study], root: str | Path, split: str = "train") -> None:
    """Knee studies in the MRNet layout: ``root/<split>/{sagittal,coronal,axial}/NNNN.npy``
    (uint8, slices x H x W, each volume scaled to 0-255; slices in stack order) and
    ``root/<split>-{abnormal,acl,meniscus}.csv``; exam numbers in the given order."""
    root = Path(root)
    for k, study in enumerate(studies):
        for s in study.series:
            folder = root / split / s.view
            folder.mkdir(parents=True, exist_ok=True)
            vol = np.asarray(s.pixels[:, 0], np.float32)
            lo, hi = np.percentile(vol, [0.5, 99.5])
            u8 = np.clip((vol - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
            np.save(folder / f"{k:04d}.npy", u8)
    for t in ("abnormal", "acl", "meniscus"):
        rows = "".join(f"{k:04d},{int(st.targets.get(t, 0))}\n" for k, st in enumerate(studies))
        (root / f"{split}-{t}.csv").write_text(rows)


#: The labels table a knee phantom run writes beside its exams (``ingest --labels``).
KNEE_LABELS_FILE = "labels.csv"
#: Its target columns (0/1), in order.
KNEE_TARGETS = ("abnormal", "acl", "meniscus", "effusion")


def write_knee_labels(root: str | Path, folders: list[str]) -> Path:
    """``root/labels.csv``: one row per knee exam folder (``folder``, the targets of
    :data:`KNEE_TARGETS`, ``laterality``) from each exam's ``phantom.json``, written
    atomically; the table ``planessl ingest --labels`` reads."""
    root = Path(root)
    lines = [",".join(("folder",) + KNEE_TARGETS + ("laterality",))]
    for name in folders:
        meta = json.loads((root / name / "phantom.json").read_text())
        targets = meta.get("targets", {})
        lines.append(",".join([name] + [str(int(targets.get(t, 0))) for t in KNEE_TARGETS]
                              + [meta.get("laterality") or ""]))
    path = root / KNEE_LABELS_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- helpers
def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    # np.savez_compressed stamps zip entries with the current time; fix it for same bytes.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def subject_folder_name(study: Study, fmt: str, index: int) -> str:
    """Name of the subject's folder in the output root for a format."""
    return f"patient{index + 1:03d}" if fmt == "acdc" else study.id


def write_subject(study: Study, out: str | Path, fmt: str, index: int = 0,
                  info: dict | None = None, vendor: str | None = None) -> Path:
    """Write one study under ``out`` in format ``fmt`` atomically: into a hidden temporary
    folder first, then renamed, so an interrupted run leaves no half-written subject.

    Returns:
        The subject's folder.
    """
    if fmt not in FORMATS + ("nifti",):
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if vendor is not None and fmt != "dicom":
        raise ValueError(f"--vendor names DICOM series; not for format {fmt!r}")
    out = Path(out)
    final = out / subject_folder_name(study, fmt, index)
    tmp = out / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        if fmt == "dicom":
            write_dicom(study, tmp, vendor=vendor)
        elif fmt == "nifti":
            write_knee_nifti(study, tmp)
        elif fmt == "ukbb":
            write_ukbb(study, tmp)
        else:
            info = info or {}
            write_acdc(study, tmp, final.name, info.get("height_cm", 175.0),
                       info.get("weight_kg", 75.0))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
