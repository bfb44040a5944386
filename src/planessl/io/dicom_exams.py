"""Group DICOM image records into exams (one cached study each).

StudyInstanceUID names the exam when present. Anonymised exports may blank it (and the other
UIDs); then the best remaining evidence decides, in this order:

1. FrameOfReferenceUID: images sharing one were acquired in one patient position;
2. the folder that holds the series folders (one folder per series under one exam folder, as
   scanners and PACS export), or the files' own folder when it holds several series;
3. PatientID + StudyDate + StudyTime where none is blank: they split a folder that holds the
   images of several patients or dates.

Images without FrameOfReferenceUID join the frame of reference of the other images of their
exam folder when those share exactly one. View identification needs the views of an exam
together, so grouping errs towards one exam per exam folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from planessl.io.dicom_records import ImageRecord

FOR_EVIDENCE = "its FrameOfReferenceUID"


@dataclass
class Exam:
    """The records of one exam, its source key and how it was grouped.

    Attributes:
        key: names the exam in its source: the StudyInstanceUID, or ``for:UID``,
            ``folder:PATH`` or ``folder:PATH|patient:ID|DATE|TIME`` for the fallbacks.
        evidence: ``""`` when grouped by StudyInstanceUID, else what grouped it.
    """

    key: str
    records: list[ImageRecord] = field(default_factory=list)
    evidence: str = ""


def group_exams(records: list[ImageRecord]) -> list[Exam]:
    """One :class:`Exam` per StudyInstanceUID, or per fallback evidence where it is blank
    (sorted by key)."""
    exams: dict[str, Exam] = {}
    orphans: list[ImageRecord] = []
    for r in records:
        if r.study_uid:
            exams.setdefault(r.study_uid, Exam(r.study_uid)).records.append(r)
        else:
            orphans.append(r)
    for r, (key, evidence) in zip(orphans, _fallback_keys(orphans)):
        exam = exams.setdefault(key, Exam(key, evidence=evidence))
        exam.records.append(r)
        if evidence not in exam.evidence.split("; "):
            exam.evidence = f"{exam.evidence}; {evidence}" if exam.evidence else evidence
    return [exams[k] for k in sorted(exams)]


def _fallback_keys(records: list[ImageRecord]) -> list[tuple[str, str]]:
    """``(key, evidence)`` of each record that has no StudyInstanceUID."""
    folder_of = {d: os.path.abspath(d) for d in {os.path.dirname(r.path) for r in records}}
    series_in: dict[str, set[str]] = {}
    for r in records:
        series_in.setdefault(folder_of[os.path.dirname(r.path)], set()).add(r.series_uid)

    def exam_folder(r: ImageRecord) -> tuple[str, str]:
        d = folder_of[os.path.dirname(r.path)]
        if len(series_in[d]) > 1:
            return d, "its folder (which holds several series)"
        return os.path.dirname(d), "the folder holding its series folder"

    hints_in: dict[str, set[str]] = {}
    folders = [exam_folder(r) for r in records]
    for r, (f, _) in zip(records, folders):
        hints_in.setdefault(f, set()).add(r.exam_hint)
    by_folder: list[tuple[str, str]] = []
    for r, (f, why) in zip(records, folders):
        if r.exam_hint and len(hints_in[f] - {""}) > 1:
            by_folder.append((f"folder:{f}|patient:{r.exam_hint}",
                              f"{why} and PatientID, StudyDate and StudyTime"))
        else:
            by_folder.append((f"folder:{f}", why))
    fors_in: dict[str, set[str]] = {}
    for r, (k, _) in zip(records, by_folder):
        if r.frame_of_reference:
            fors_in.setdefault(k, set()).add(r.frame_of_reference)
    out = []
    for r, (k, why) in zip(records, by_folder):
        fors = fors_in.get(k, set())
        if r.frame_of_reference:
            out.append((f"for:{r.frame_of_reference}", FOR_EVIDENCE))
        elif len(fors) == 1:  # joins the one frame of reference of its exam folder
            out.append((f"for:{next(iter(fors))}", FOR_EVIDENCE))
        else:
            out.append((k, why))
    return out
