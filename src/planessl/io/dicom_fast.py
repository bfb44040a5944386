"""A minimal reader of explicit-VR-little-endian DICOM headers, for the ingest scan.

Why hand-written: profiling the header scan of ~2,000 phantom files showed pydicom's
``dcmread(stop_before_pixels=True)`` at about 2.5 ms per file (building a Dataset of every
element, file meta included), which bounds any pydicom-based scan near the speed of a plain
full ``dcmread`` loop. Ingest needs only the raw bytes of ~20 top-level elements and the
offset of the pixel data; this walker reads them with ``struct`` in ~0.1 ms per file.

It handles only the common case - a Part 10 file (preamble + ``DICM``) with Explicit VR Little
Endian transfer syntax, defined-length elements up to the pixel data, no enhanced functional
groups - and returns ``None`` for anything else, in which case the caller uses pydicom.
It never interprets values: it hands back the undecoded bytes, and the caller decodes them
with pydicom whenever a new combination of series/geometry values appears.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from pydicom.datadict import tag_for_keyword

_EXPLICIT_VR_LE = b"1.2.840.10008.1.2.1"
#: VRs whose explicit encoding has 2 reserved bytes and a 4-byte length.
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"))
_PIXEL_DATA = 0x7FE00010
_TRANSFER_SYNTAX = 0x00020010
#: Elements whose presence means the file needs pydicom (functional groups, DICOMDIR,
#: float pixel data).
_BAIL = frozenset(tag_for_keyword(k) for k in (
    "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence",
    "DirectoryRecordSequence", "FloatPixelData", "DoubleFloatPixelData"))
_HEAD = 16384
_U16 = struct.Struct("<HH")
_LEN16 = struct.Struct("<H")
_LEN32 = struct.Struct("<I")


@dataclass(frozen=True)
class FastHeader:
    """Undecoded values of the wanted elements, and where the pixel data lies."""

    values: dict[int, bytes]     # tag -> value bytes (only wanted tags that are present)
    pixel_offset: int            # first byte of the pixel data value
    pixel_length: int            # its declared length (bytes)
    pixel_vr: bytes
    file_size: int


def tags(keywords: list[str]) -> frozenset[int]:
    """DICOM tags (as ints) of keywords."""
    return frozenset(tag_for_keyword(k) for k in keywords)


def read_fast_header(path: str, wanted: frozenset[int]) -> FastHeader | None:
    """The wanted elements of an explicit VR little endian file, or ``None`` (use pydicom)."""
    try:
        with open(path, "rb") as fp:
            buf = fp.read(_HEAD)
            if buf[128:132] != b"DICM":
                return None
            size = os.fstat(fp.fileno()).st_size
            found = _walk(buf, 132, wanted)
            if found is None:
                if len(buf) >= size:
                    return None
                buf += fp.read()  # a long header: read the rest once and walk again
                found = _walk(buf, 132, wanted)
                if found is None:
                    return None
    except OSError:
        return None
    values, offset, length, vr = found
    if values.get(_TRANSFER_SYNTAX, b"").rstrip(b"\x00 ") != _EXPLICIT_VR_LE:
        return None
    return FastHeader(values, offset, length, vr, size)


def _walk(buf: bytes, pos: int, wanted: frozenset[int]):
    """``(values, pixel offset, pixel length, pixel VR)`` or ``None`` when the buffer ends
    first or an element is not plain explicit VR little endian."""
    values: dict[int, bytes] = {}
    end = len(buf)
    meta_ts = None
    while pos + 8 <= end:
        group, elem = _U16.unpack_from(buf, pos)
        tag = group << 16 | elem
        vr = buf[pos + 4:pos + 6]
        if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
            return None  # not explicit VR (or garbage)
        if vr in _LONG_VRS:
            if pos + 12 > end:
                return None
            length = _LEN32.unpack_from(buf, pos + 8)[0]
            start = pos + 12
        else:
            length = _LEN16.unpack_from(buf, pos + 6)[0]
            start = pos + 8
        if tag == _PIXEL_DATA:
            if meta_ts is None:
                return None
            values[_TRANSFER_SYNTAX] = meta_ts
            return values, start, length, vr
        if length == 0xFFFFFFFF or tag in _BAIL or group == 0xFFFE:
            return None  # undefined length (sequences, encapsulation): leave it to pydicom
        if start + length > end:
            return None
        if tag == _TRANSFER_SYNTAX:
            meta_ts = buf[start:start + length]
        elif tag in wanted:
            values[tag] = buf[start:start + length]
        pos = start + length
    return None
