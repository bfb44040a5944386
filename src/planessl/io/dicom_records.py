"""What the DICOM header scan knows about one 2D image (:class:`ImageRecord`).

Its own module because the scan (:mod:`planessl.io.dicom_scan`) makes records, and exam
grouping (:mod:`planessl.io.dicom_exams`), series building (:mod:`planessl.io.dicom_series`)
and label sidecars read them: all import this module and none imports another of them
for it, so the DICOM reader has no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from planessl.geometry import Plane


@dataclass
class ImageRecord:
    """One 2D image found by the header scan (nothing here is written to the cache).

    Attributes:
        path: the file (never written to the cache).
        frame: frame index in the file (0 for classic images).
        series_number: DICOM SeriesNumber (0 when absent).
        text: SeriesDescription + ProtocolName + the series folder's name, for naming.
        localizer: ImageType holds ``LOCALIZER``.
        image_type: ImageType values, upper case, joined by ``\\``.
        sequence_name: SequenceName (Siemens: ``*tfi2d1_14``, ``*h2d1``, ...).
        acquisition_time: AcquisitionTime, else SeriesTime, in seconds after midnight
            (``None`` when neither is given): the acquisition order of the exam's series.
        fast_pixels: ``(offset, dtype, count)`` for a direct read of the pixels, else ``None``.
        exam_hint: PatientID|StudyDate|StudyTime when none is blank, else ``""``.
    """

    path: str
    frame: int
    study_uid: str
    series_uid: str
    series_number: int
    text: str
    frame_of_reference: str
    plane: Plane
    trigger_time: float | None
    instance_number: int
    knee: bool
    localizer: bool
    fast_pixels: tuple | None
    slope: float = 1.0
    intercept: float = 0.0
    laterality: str | None = None  # "left" / "right" (knee) when the header says
    exam_hint: str = ""
    image_type: str = ""
    sequence_name: str = ""
    acquisition_time: float | None = None


def dicom_time_seconds(value) -> float | None:
    """A DICOM TM value (``HHMMSS.ffffff``, ``HH:MM:SS`` of old files, or shorter) as
    seconds after midnight; ``None`` when absent or malformed."""
    if value is None:
        return None
    text = (value.decode("ascii", "replace") if isinstance(value, bytes) else str(value))
    text = text.strip(" \x00").replace(":", "")
    if not text:
        return None
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (frac and not frac.isdigit()):
        return None
    hh, mm, ss = int(whole[:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    if hh > 23 or mm > 59 or ss > 60:
        return None
    return hh * 3600.0 + mm * 60.0 + ss + (float("0." + frac) if frac else 0.0)
