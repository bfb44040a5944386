"""Phantom DICOM exams named and laid out as scanners export them (``--vendor``).

Real exams do not say ``loc_2ch``: a Siemens exam has single-frame ``trufi_2-chamber``
localizers (thinner than its cines) and cines ``TF Cine Retro_iPAT 4C``/``2C``/``LVOT``/
``SAO``; GE names ``FIESTA`` localizers and ``FIESTA CINE`` views, Philips ``sBTFE`` and
``Survey`` localizers and ``BTFE_BH`` cines. A :class:`VendorStyle` holds what the DICOM
writer (:func:`planessl.phantom.writers.write_dicom`) changes to imitate one: series
descriptions and numbers (localizers first, as acquired), SequenceName, ImageType,
AcquisitionTime in acquisition order, the localizers' slice thickness, and the layout of an
anonymised export as the exam of issue 20 came: blank Study/Series/SOP/FrameOfReference
UIDs, folders ``<subject>/<PatientName>/<StudyDate>/Series0003_trufi_2-chamber/`` and files
without extension. Pixels and geometry are the phantom's, unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

#: Views the vendor styles name (cines and localizers).
_VIEWS = ("loc_2ch", "loc_4ch", "loc_sax", "2ch", "3ch", "4ch", "sax")


@dataclass(frozen=True)
class VendorStyle:
    """How one vendor's exam names and stores its series.

    Attributes:
        name: ``siemens``, ``ge`` or ``philips``.
        descriptions: SeriesDescription (and ProtocolName) per view.
        numbers: SeriesNumber per view (SAX: of its first slice when ``sax_one_series`` is
            false, the slices following one by one).
        sax_one_series: the SAX cine stack is one series (else one series per slice).
        sax_mid_slice_only: only the mid-ventricular SAX slice is written, as one cine
            (the one-slice ``SAO`` cine of the Siemens exam of issue 20).
        sequence_names: SequenceName of localizers and of cines (``""``: not written).
        image_types: ImageType of localizers and of cines.
        localizer_thinner_mm: write the localizers' SliceThickness this much below the
            thinnest cine's (``None``: their own thickness, thicker than the cines').
    """

    name: str
    descriptions: dict[str, str]
    numbers: dict[str, int]
    sax_one_series: bool = False
    sax_mid_slice_only: bool = False
    sequence_names: tuple[str, str] = ("", "")
    image_types: tuple[tuple[str, ...], tuple[str, ...]] = (
        ("ORIGINAL", "PRIMARY", "M", "ND"), ("ORIGINAL", "PRIMARY", "M", "ND"))
    localizer_thinner_mm: float | None = None
    blank_uids: tuple[str, ...] = field(default=("StudyInstanceUID", "SeriesInstanceUID",
                                                 "SOPInstanceUID", "FrameOfReferenceUID"))

    def is_localizer(self, view: str) -> bool:
        return view.startswith("loc_")

    def folder(self, number: int, view: str) -> str:
        """Series folder name as the export writes it (``Series0003_trufi_2-chamber``)."""
        text = re.sub(r"[^A-Za-z0-9_.\- ]+", "_", self.descriptions.get(view, view))
        return f"Series{number:04d}_{text}"


VENDORS: dict[str, VendorStyle] = {v.name: v for v in (
    # The exam of issue 20: trufi localizers 3-5 (6 mm), retro-gated cines from series 6.
    VendorStyle(
        "siemens",
        descriptions={"loc_2ch": "trufi_2-chamber", "loc_4ch": "trufi_4-chamber",
                      "loc_sax": "trufi_short-axis", "4ch": "TF Cine Retro_iPAT 4C",
                      "2ch": "TF Cine Retro_iPAT 2C", "3ch": "TF Cine Retro_iPAT LVOT",
                      "sax": "TF Cine Retro_iPAT SAO"},  # one slice
        numbers={"loc_2ch": 3, "loc_4ch": 4, "loc_sax": 5, "4ch": 6, "2ch": 7, "3ch": 8,
                 "sax": 10},
        sax_mid_slice_only=True,
        sequence_names=("*tfiseg2d1", "tfi2d1_14"),
        image_types=(("ORIGINAL", "PRIMARY", "M", "ND"),
                     ("ORIGINAL", "PRIMARY", "M", "ND", "RETRO")),
        localizer_thinner_mm=1.0),
    VendorStyle(
        "ge",
        descriptions={"loc_2ch": "FIESTA VLA", "loc_4ch": "FIESTA HLA",
                      "loc_sax": "FIESTA SAX", "2ch": "FIESTA CINE 2CH",
                      "4ch": "FIESTA CINE 4CH", "3ch": "FIESTA CINE 3CH",
                      "sax": "FIESTA CINE SAX"},
        numbers={"loc_2ch": 2, "loc_4ch": 3, "loc_sax": 4, "2ch": 5, "4ch": 6, "3ch": 7,
                 "sax": 8},
        sax_one_series=True,
        image_types=(("ORIGINAL", "PRIMARY", "OTHER"), ("ORIGINAL", "PRIMARY", "OTHER"))),
    VendorStyle(
        "philips",
        descriptions={"loc_2ch": "sBTFE_2ch", "loc_4ch": "sBTFE_4ch",
                      "loc_sax": "Survey_SA", "2ch": "BTFE_BH_2CH", "4ch": "BTFE_BH_4CH",
                      "3ch": "BTFE_BH_3CH", "sax": "BTFE_BH_SA"},
        numbers={"loc_2ch": 201, "loc_4ch": 301, "loc_sax": 401, "2ch": 501, "4ch": 601,
                 "3ch": 701, "sax": 801},
        sax_one_series=True,
        image_types=(("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                     ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"))),
)}

#: AcquisitionTime of the first series (s after midnight, 10:00:00) and the time between
#: series and between the slices of one series (s).
START_S, SERIES_STEP_S, SLICE_STEP_S = 36000.0, 120.0, 10.0


def vendor_style(name: str) -> VendorStyle:
    """The style of a vendor name (case-insensitive)."""
    try:
        return VENDORS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown vendor {name!r}; known: {', '.join(VENDORS)}") from None


def dicom_time(seconds: float) -> str:
    """Seconds after midnight as a DICOM TM value (``HHMMSS.ffffff``)."""
    whole = int(seconds)
    return f"{whole // 3600:02d}{whole // 60 % 60:02d}{whole % 60:02d}.{int(round((seconds - whole) * 1e6)):06d}"


def acquisition_times(numbers: list[int]) -> dict[int, float]:
    """Series start times (s after midnight) in SeriesNumber order."""
    return {n: START_S + SERIES_STEP_S * k for k, n in enumerate(sorted(set(numbers)))}


def style_header(ds: Dataset, style: VendorStyle, view: str, start_s: float, slice_index: int,
                 thickness: float | None) -> None:
    """Rewrite one series' header template as ``style`` names and anonymises it."""
    loc = style.is_localizer(view)
    ds.SeriesDescription = style.descriptions.get(view, view)
    ds.ProtocolName = ds.SeriesDescription
    ds.ImageType = list(style.image_types[0 if loc else 1])
    seq = style.sequence_names[0 if loc else 1]
    if seq:
        ds.SequenceName = seq
    ds.SeriesTime = dicom_time(start_s)
    ds.AcquisitionTime = dicom_time(start_s + SLICE_STEP_S * slice_index)
    if thickness is not None:
        ds.SliceThickness = f"{thickness:.1f}"
    for keyword in style.blank_uids:
        if keyword != "SOPInstanceUID":
            setattr(ds, keyword, "")
