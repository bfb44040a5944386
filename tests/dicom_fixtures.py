"""Tiny DICOM files with real geometry for ingest tests (pydicom Datasets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, MRImageStorage, generate_uid

AXIS = np.array([1.0, -1.0, -1.0]) / np.sqrt(3)  # long axis, base -> apex (LPS)
ROW = np.cross(AXIS, [0, 0, 1.0]); ROW /= np.linalg.norm(ROW)
COL = np.cross(AXIS, ROW)  # ROW x COL = AXIS


def write_image(path: Path, *, study: str, series: str, number: int, desc: str,
                origin, row=ROW, col=COL, shape=(16, 16), spacing=(2.0, 2.0),
                trigger: float | None = 0.0, instance: int = 1, frame_uid: str = "1.2.3.4",
                pixels: np.ndarray | None = None, drop: tuple[str, ...] = (),
                transfer_syntax=ExplicitVRLittleEndian) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "SECRET-ID-42"
    ds.StudyDate = "20200101"
    ds.Modality = "MR"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = number
    ds.SeriesDescription = desc
    ds.InstanceNumber = instance
    ds.FrameOfReferenceUID = frame_uid
    ds.ImagePositionPatient = [f"{v:.4f}" for v in origin]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in list(row) + list(col)]
    ds.PixelSpacing = [str(spacing[0]), str(spacing[1])]
    ds.SliceThickness = "8"
    if trigger is not None:
        ds.TriggerTime = str(trigger)
    ds.Rows, ds.Columns = shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if pixels is None:
        pixels = (np.arange(shape[0] * shape[1]).reshape(shape) + instance * 7) % 4000
    ds.PixelData = np.asarray(pixels, np.uint16).tobytes()
    for k in drop:
        delattr(ds, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_cardiac_study(root: Path, study: str, n_slices: int = 5, n_frames: int = 3,
                        frame_uid: str = "1.2.3.4", lax: bool = True) -> list[Path]:
    """DSB layout: sax_<k>/ one series per slice (given in apex->base order to test the
    sorting), 2ch/ and 4ch/ cines. Returns the files."""
    files = []
    centre = np.array([10.0, 20.0, 30.0])
    for k in reversed(range(n_slices)):
        origin = centre + (k - n_slices / 2) * 8.0 * AXIS - 8 * ROW - 8 * COL
        for f in range(n_frames):
            files.append(write_image(
                root / f"sax_{k + 5}" / f"IM-{k}-{f}", study=study, series=f"{study}.1{k}",
                number=10 + k, desc="CINE_segmented_SAX", origin=origin, trigger=f * 40.0,
                instance=f + 1, frame_uid=frame_uid))
    if lax:
        four = np.cross([0, 0, 1.0], AXIS)
        four /= np.linalg.norm(four)           # in-plane direction of the 4CH besides AXIS
        two = np.cross(AXIS, four)
        for name, u, number in (("2ch", two, 2), ("4ch", four, 4)):
            for f in range(n_frames):
                origin = centre - 8 * u - 8 * AXIS * 2
                files.append(write_image(
                    root / f"{name}_{number}" / f"IM-{number}-{f}.dcm", study=study,
                    series=f"{study}.{number}", number=number, desc="cine", origin=origin,
                    row=u, col=AXIS, trigger=f * 40.0, instance=f + 1, frame_uid=frame_uid))
    return files


def write_enhanced(path: Path, study: str, n_slices: int = 4, n_frames: int = 2) -> Path:
    """An enhanced MR multi-frame file: n_slices x n_frames frames, per-frame geometry."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.EnhancedMRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = pydicom.uid.EnhancedMRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = study + ".9"
    ds.SeriesNumber = 9
    ds.SeriesDescription = "sa cine enhanced"
    ds.FrameOfReferenceUID = "1.2.3.4"
    ds.Rows = ds.Columns = 12
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = n_slices * n_frames
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = ["1.5", "1.5"]
    pm.SliceThickness = "6"
    po = Dataset()
    po.ImageOrientationPatient = [f"{v:.6f}" for v in list(ROW) + list(COL)]
    shared.PixelMeasuresSequence = [pm]
    shared.PlaneOrientationSequence = [po]
    ds.SharedFunctionalGroupsSequence = [shared]
    per = []
    frames = []
    for k in range(n_slices):
        for f in range(n_frames):
            item = Dataset()
            pp = Dataset()
            pp.ImagePositionPatient = [f"{v:.4f}" for v in k * 6.0 * AXIS]
            item.PlanePositionSequence = [pp]
            cs = Dataset()
            cs.NominalCardiacTriggerDelayTime = 30.0 * f
            item.CardiacSynchronizationSequence = [cs]
            per.append(item)
            frames.append(np.full((12, 12), 100 * k + f, np.uint16))
    ds.PerFrameFunctionalGroupsSequence = per
    ds.PixelData = np.stack(frames).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def jpeg2000_header_copy(path: Path, **kw) -> Path:
    """A file whose transfer syntax says JPEG 2000 (no decoder installed): encapsulated
    pixel data that cannot be decoded."""
    from pydicom.encaps import encapsulate

    write_image(path, **kw)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 60])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


#: UIDs an anonymiser may blank.
BLANKED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                "FrameOfReferenceUID")


def anonymised_export(subject: Path, exam: Path, blank: tuple[str, ...] = BLANKED_UIDS,
                      descriptions: bool = True, patient: str | None = None) -> list[Path]:
    """Copy a phantom DICOM subject (``write_subject(study, root, "dicom")``) the way an
    anonymiser exports it: one folder per series (``SE<number>``, no view in the name) under
    ``exam``, files without extensions, the UIDs in ``blank`` emptied (file meta too),
    descriptions dropped unless ``descriptions``, PatientID replaced when ``patient`` is
    given. Returns the files written."""
    out = []
    for f in sorted(Path(subject).rglob("IM-*.dcm")):
        ds = pydicom.dcmread(f)
        for keyword in blank:
            setattr(ds, keyword, "")
        if "SOPInstanceUID" in blank:
            ds.file_meta.MediaStorageSOPInstanceUID = ""
        if not descriptions:
            ds.SeriesDescription = ""
            ds.ProtocolName = ""
        if patient is not None:
            ds.PatientID = patient
        target = exam / f"SE{int(ds.SeriesNumber):04d}" / f"IM{int(ds.InstanceNumber):05d}"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target)
        out.append(target)
    return out
