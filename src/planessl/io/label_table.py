"""Exam-level labels from a table (``planessl ingest SRC --labels labels.csv``).

A CSV file (comma, semicolon or tab separated; first row: column names) gives one row per
exam. **Which exam a row belongs to**: the *key column* is the first column named as an
identifier (names compared case-insensitively, ignoring ``_``, ``-`` and spaces):

====================================  ===================================================
column name                           compared with
====================================  ===================================================
``source_key``, ``key``               the exam's source key, as ``ingest --keys`` writes
``cache_id``                          the exam's opaque id in the cache
``StudyInstanceUID``, ``study_uid``   DICOM StudyInstanceUID
``PatientID``, ``patient_id``         DICOM PatientID
``AccessionNumber``, ``accession``    DICOM AccessionNumber
``folder``                            the name of a folder holding all the exam's files
                                      (the source folder or one below it), or the exam's
                                      name in its layout: ACDC ``patientNNN``, MRNet exam
                                      number, NIfTI file-name prefix, UK Biobank folder
====================================  ===================================================

When no column has such a name, the first column is the key column and its values are
compared with all of the above. A row belongs to the one exam with an equal identifier; a
row matching no exam, or several (e.g. a PatientID with two exams), is listed and not used.

**Targets**: every other column whose values are integers (``0``, ``1``, ``2``, ``1.0``) or
yes/no, true/false (read as 1/0); empty, ``NA`` or ``nan`` cells leave that target unset
for the exam. Other identifier columns are never targets; a column with any other value is
listed and ignored. A ``laterality`` (or ``side``) column gives which knee (``L``/``R``,
``left``/``right``) where the images do not say.

Nothing of the table but the targets and the laterality reaches the cache; the keys and
the listing of unmatched rows go to the console only (they can carry PHI).
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from planessl.errors import PlaneSSLError
from planessl.io.sources import SourceStudy, describe_error, relative_to_sources
from planessl.study import normalise_laterality

#: Identifier kinds and the column names that select them (normalised: lower case, no
#: ``_``, ``-`` or spaces).
KEY_COLUMNS = {
    "source_key": ("sourcekey", "key"),
    "cache_id": ("cacheid",),
    "study_uid": ("studyinstanceuid", "studyuid"),
    "patient_id": ("patientid",),
    "accession": ("accessionnumber", "accession", "accessionno"),
    "folder": ("folder", "foldername", "exam", "examfolder"),
}
#: Columns that give the knee side instead of a target.
LATERALITY_COLUMNS = ("laterality", "side", "kneeside")
_TRUE = {"yes", "y", "true", "t", "pos", "positive"}
_FALSE = {"no", "n", "false", "f", "neg", "negative"}
_MISSING = {"", "na", "n/a", "nan", "none", "null", "missing", "-", "?"}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def _kind_of(column: str) -> str | None:
    n = _norm(column)
    return next((k for k, names in KEY_COLUMNS.items() if n in names), None)


def _value(cell: str) -> int | None | str:
    """An integer target, ``None`` (missing) or the cell itself when it is no target value."""
    c = cell.strip()
    low = c.lower()
    if low in _MISSING:
        return None
    if low in _TRUE:
        return 1
    if low in _FALSE:
        return 0
    try:
        v = float(c)
    except ValueError:
        return c
    if math.isfinite(v) and v == round(v):
        return int(round(v))
    return c


@dataclass
class LabelTable:
    """A parsed labels table.

    Attributes:
        path: the CSV file.
        key_column: the column naming the exam; ``key_kind`` which identifier it holds
            (``None``: any of them).
        targets: the target columns.
        rows: ``(line number, key, {target: value}, laterality)`` per data row (the line
            numbers of the file, header usually 1).
        ignored: ``column -> why`` of columns that are neither key nor target.
    """

    path: Path
    key_column: str
    key_kind: str | None
    targets: list[str]
    rows: list[tuple[int, str, dict[str, int], str | None]]
    ignored: dict[str, str] = field(default_factory=dict)


def read_label_table(path: str | Path) -> LabelTable:
    """Read and check a labels CSV (see the module docstring for the rules).

    Raises:
        PlaneSSLError: unreadable file, no header, no key column values, or no target column.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlaneSSLError(f"{path}: --labels file not found") from None
    except OSError as exc:
        raise PlaneSSLError(f"{path}: cannot read the labels table ({describe_error(exc)})"
                            ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:  # spreadsheet exports in a legacy code page
        text = raw.decode("latin-1")
    numbered = [(k, ln) for k, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if len(numbered) < 2:
        raise PlaneSSLError(f"{path}: the labels table needs a header row and one row per "
                            f"exam; it has {len(numbered)} non-empty line(s)")
    try:
        dialect = csv.Sniffer().sniff(numbered[0][1], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    table = list(csv.reader([ln for _, ln in numbered], dialect))
    line_no = [k for k, _ in numbered]
    header = [h.strip() for h in table[0]]
    if len(set(header)) != len(header) or any(not h for h in header):
        raise PlaneSSLError(f"{path}: the header row must name every column once, got "
                            f"{', '.join(repr(h) for h in header)}")
    kinds = [_kind_of(h) for h in header]
    key_index = next((k for k, kind in enumerate(kinds) if kind), 0)
    key_kind = kinds[key_index]
    body = [r for r in table[1:]]
    ignored: dict[str, str] = {}
    targets: list[str] = []
    lat_index = None
    for k, name in enumerate(header):
        if k == key_index:
            continue
        if kinds[k]:
            ignored[name] = "an identifier column, not a target"
            continue
        if _norm(name) in LATERALITY_COLUMNS:
            lat_index = k
            continue
        bad = next(((line_no[n], r[k]) for n, r in enumerate(body, start=1)
                    if k < len(r) and isinstance(_value(r[k]), str)), None)
        if bad is not None:
            ignored[name] = (f"not a target: row {bad[0]} holds {bad[1].strip()!r} (targets "
                             f"are integers, yes/no or true/false)")
            continue
        targets.append(name)
    if not targets:
        raise PlaneSSLError(f"{path}: no target column (columns: {', '.join(header)}; "
                            f"targets are columns of integers or yes/no)")
    rows = []
    for n, r in zip(line_no[1:], body):
        key = r[key_index].strip() if key_index < len(r) else ""
        values = {}
        for name in targets:
            k = header.index(name)
            v = _value(r[k]) if k < len(r) else None
            if v is not None:
                values[name] = int(v)
        lat = normalise_laterality(r[lat_index]) if lat_index is not None and \
            lat_index < len(r) else None
        rows.append((n, key, values, lat))
    return LabelTable(path=path, key_column=header[key_index], key_kind=key_kind,
                      targets=targets, rows=rows, ignored=ignored)


# ----------------------------------------------------------------------------- exams
def _dicom_ids(source: SourceStudy) -> dict[str, set[str]]:
    """StudyInstanceUID, PatientID and AccessionNumber of a DICOM exam (one header read)."""
    import pydicom

    out: dict[str, set[str]] = {}
    for path in source.files[:3]:  # the first readable header of the exam
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True,
                                 specific_tags=["StudyInstanceUID", "PatientID",
                                                "AccessionNumber"])
        except Exception:  # noqa: BLE001 - a label sidecar or damaged file: try the next
            continue
        for kind, tag in (("study_uid", "StudyInstanceUID"), ("patient_id", "PatientID"),
                          ("accession", "AccessionNumber")):
            value = str(ds.get(tag, "") or "").strip()
            if value:
                out[kind] = {value}
        if out:
            break
    return out


def _layout_name(key: str) -> set[str]:
    """The exam's name in a non-DICOM layout: the key's last part (``mrnet:train:0007`` ->
    ``0007`` and ``7``)."""
    name = re.split(r"[:/]", key)[-1]
    names = {name} if name else set()
    if name.isdigit():
        names.add(str(int(name)))
    return names


def _folders(source: SourceStudy, roots: Sequence[Path]) -> set[str]:
    """Names of the folders holding all the exam's files, from its source folder down."""
    if not source.files:
        return set()
    common = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in source.files])
    k, rel = relative_to_sources(common, roots)
    names = set(Path(rel).parts) - {"."} if k is not None else set()
    if k is not None and Path(roots[k]).is_dir():
        names.add(Path(os.path.abspath(roots[k])).name)
    return names


def exam_identifiers(source: SourceStudy, study_id: str, roots: Sequence[Path],
                     need_dicom: bool = True) -> dict[str, set[str]]:
    """Every identifier of one exam, per kind of :data:`KEY_COLUMNS`."""
    ids: dict[str, set[str]] = {"source_key": {source.key}, "cache_id": {study_id},
                                "folder": _folders(source, roots)}
    if source.format == "dicom":
        if need_dicom:
            ids.update(_dicom_ids(source))
    else:
        ids["folder"] |= _layout_name(source.key)
    return ids


def where(source: SourceStudy) -> str:
    """A readable place of an exam for the console (never for the cache)."""
    if not source.files:
        return source.key
    if len(source.files) == 1:
        return str(source.files[0])
    return os.path.commonpath([os.path.abspath(f) for f in source.files])


@dataclass
class LabelMatch:
    """What matching a table to the exams found gave (printed by ingest)."""

    table: LabelTable
    #: cache id -> (targets, laterality)
    by_exam: dict[str, tuple[dict[str, int], str | None]] = field(default_factory=dict)
    #: rows not used: "row N (key 'K'): why"
    unmatched: list[str] = field(default_factory=list)
    #: cache id -> readable place, for every exam found (to list those without a row)
    places: dict[str, str] = field(default_factory=dict)

    def lines(self, cached_ids: Sequence[str]) -> list[str]:
        """The report: matched counts, rows matching no exam, cached exams without a row."""
        t = self.table
        without = [i for i in cached_ids if i not in self.by_exam]
        out = [f"labels: {t.path.name}: {len(t.rows)} row(s), {len(self.by_exam)} matched an "
               f"exam by {t.key_column!r}"
               f" ({t.key_kind or 'any identifier'}); targets {', '.join(t.targets)}"]
        out.extend(f"  column {c!r} ignored: {why}" for c, why in t.ignored.items())
        out.append(f"  rows matching no exam: {len(self.unmatched)}")
        out.extend(f"    {u}" for u in self.unmatched)
        out.append(f"  cached exams without a row: {len(without)}")
        out.extend(f"    {self.places.get(i, i)} (cache id {i})" for i in sorted(
            without, key=lambda i: self.places.get(i, i)))
        return out


def match_labels(table: LabelTable, sources: Sequence[tuple[SourceStudy, str]],
                 roots: Sequence[Path]) -> LabelMatch:
    """Rows of ``table`` matched to ``(source, cache id)`` exams (see the module rules)."""
    kinds = [table.key_kind] if table.key_kind else list(KEY_COLUMNS)
    need_dicom = any(k in ("study_uid", "patient_id", "accession") for k in kinds)
    index: dict[str, set[str]] = {}
    result = LabelMatch(table)
    for source, sid in sources:
        result.places[sid] = where(source)
        ids = exam_identifiers(source, sid, roots, need_dicom)
        for kind in kinds:
            for value in ids.get(kind, ()):
                index.setdefault(value, set()).add(sid)
    first_row: dict[str, int] = {}
    for n, key, values, lat in table.rows:
        hits = sorted(index.get(key, ())) if key else []
        if not key:
            result.unmatched.append(f"row {n}: empty {table.key_column!r}")
        elif not hits:
            result.unmatched.append(f"row {n} ({table.key_column} {key!r}): no exam has this "
                                    f"identifier")
        elif len(hits) > 1:
            places = ", ".join(result.places[h] for h in hits[:3])
            result.unmatched.append(f"row {n} ({table.key_column} {key!r}): matches "
                                    f"{len(hits)} exams ({places}); not used, key the row by "
                                    f"a column that names one exam (e.g. source_key)")
        elif hits[0] in result.by_exam:
            result.unmatched.append(f"row {n} ({table.key_column} {key!r}): the exam already "
                                    f"has row {first_row[hits[0]]}; not used")
        else:
            result.by_exam[hits[0]] = (values, lat)
            first_row[hits[0]] = n
    return result
