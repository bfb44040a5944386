"""Ingest: dataset folders in, a PHI-free cache out (the logic behind ``planessl ingest``).

Steps: detect each source's format, ``discover`` its studies (names and headers only), hash
each study's files, skip the studies the cache already holds unchanged, then ``load`` and
write the others (in worker processes when ``workers > 1``; each worker writes its study
atomically, so only small summaries travel back). The manifest is rebuilt at the end, also
after an interruption, so an interrupted ingest leaves a valid cache that a re-run completes.
The manifest names skipped files by opaque id and position, never by path (folder and file
names can carry PHI); ``--keys`` maps the ids back, outside the cache.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from planessl.cache import SCHEMA_VERSION, STUDIES, rebuild_manifest, write_study
from planessl.errors import InputFileError, PlaneSSLError
from planessl.io.sources import (SkipRecorder, Skipped, SourceStudy, describe_error, opaque_id,
                                 source_hash)
from planessl.parallel import process_pool as _pool


@dataclass(frozen=True)
class Format:
    """A source layout: ``module.discover(paths, workers)`` and ``module.load(source, id)``."""

    name: str
    module: str
    discover: str
    load: str
    description: str

    def discover_fn(self) -> Callable:
        return getattr(importlib.import_module(self.module), self.discover)

    def load_fn(self) -> Callable:
        return getattr(importlib.import_module(self.module), self.load)


#: Every format ``planessl ingest --format`` accepts (``auto`` detects one per source).
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("dicom", "planessl.io.dicom_scan", "discover_dicom", "load_dicom",
           "any folder tree of DICOM files (classic or enhanced multi-frame MR)"),
    Format("ukbb", "planessl.io.ukbb", "discover_ukbb", "load_ukbb",
           "UK Biobank NIfTI subjects (sa_ED.nii.gz, la_2ch*.nii.gz, la_4ch*.nii.gz, seg_*)"),
    Format("acdc", "planessl.io.acdc", "discover_acdc_nifti", "load_acdc_nifti",
           "ACDC NIfTI (patientXXX/patientXXX_frameYY[_gt].nii.gz + Info.cfg)"),
    Format("acdc-h5", "planessl.io.acdc", "discover_acdc_h5", "load_acdc_h5",
           "ACDC HDF5 volumes (patientXXX_frameYY.h5; no spacing)"),
    Format("mrnet", "planessl.io.mrnet", "discover_mrnet", "load_mrnet",
           "MRNet knee exams ({sagittal,coronal,axial}/NNNN.npy + label CSVs)"),
    Format("nifti", "planessl.io.nifti_folder", "discover_nifti", "load_nifti",
           "any NIfTI folder (<id>_SA_ED.nii.gz, <id>_SA_ED_gt.nii.gz, <id>_LA_ES.nii.gz, ...; "
           "subjects by name prefix or folder, views from geometry)"),
)}


def detect_format(path: Path, max_files: int = 20000) -> str:
    """Guess the layout of a source file or folder from file names (reads no file).

    Specific layouts first (ACDC, UK Biobank, MRNet), then any NIfTI folder (when NIfTI
    files are at least half of the files), else DICOM.
    """
    import re

    names: list[str] = []
    dirs: set[str] = set()
    if path.is_file():
        names = [path.name]
    else:
        for root, dnames, fnames in os.walk(path):
            dirs.update(dnames)
            names.extend(fnames)
            if len(names) > max_files:
                break
    if any(re.match(r"^patient\d+_frame\d+\.h5$", n) for n in names):
        return "acdc-h5"
    if any(re.match(r"^patient\d+_frame\d+(_gt)?\.nii(\.gz)?$", n) for n in names):
        return "acdc"
    if any(re.match(r"^(sa|la_[234]ch)(_E[DS])?\.nii(\.gz)?$", n) for n in names):
        return "ukbb"
    if (dirs & {"sagittal", "coronal", "axial"} or path.name in {"sagittal", "coronal", "axial"}) \
            and any(n.endswith(".npy") for n in names):
        return "mrnet"
    n_nifti = sum(1 for n in names if n.lower().endswith((".nii", ".nii.gz")))
    if n_nifti and n_nifti >= sum(1 for n in names if not n.startswith(".")) - n_nifti:
        return "nifti"  # NIfTI files of no more specific layout, at least half of the files
    return "dicom"


@dataclass
class IngestReport:
    """What one ingest did (printed as the summary table)."""

    cache: Path
    found: int = 0
    written: list[dict] = field(default_factory=list)   # manifest-like entries
    unchanged: list[dict] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    #: Source study key -> cache id of every cached study (for ``--keys``; never cached).
    keys: dict[str, str] = field(default_factory=dict)
    #: Path -> opaque id of every skipped or warned file (the cache names them by id only).
    file_ids: dict[str, str] = field(default_factory=dict)
    tried: dict[str, list[str]] = field(default_factory=dict)   # format -> sources read as it
    detected: bool = False                                       # formats from ``auto``
    labels: object = None       # LabelMatch of ``--labels`` (console only: keys can be PHI)

    def nothing_cached(self) -> str:
        """The one-line error when nothing was cached: formats tried, files and studies found."""
        how = " (detected from the file names)" if self.detected else ""
        tried = "; ".join(f"{k}{how} on {len(v)} source(s)" for k, v in self.tried.items()) \
            or "no format (no files found)"
        files: dict[str, int] = {}  # counted only now: a full walk is not worth it otherwise
        for src in (Path(p) for v in self.tried.values() for p in v):
            for f in _iter_limited(src) if src.is_dir() else [src]:
                files[file_kind(f.name)] = files.get(file_kind(f.name), 0) + 1
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(files.items(), key=lambda kv: -kv[1]))
        found = f"{sum(files.values())} file(s) ({kinds})" if files else "no files"
        hint = "; NIfTI files were found: try --format nifti" \
            if files.get("NIfTI") and "nifti" not in self.tried else ""
        return (f"nothing was cached: tried {tried}; found {found} and {self.found} "
                f"studies; skipped files are listed above with why{hint}; formats: "
                f"{', '.join(FORMATS)} (--format)")

    @property
    def cached(self) -> list[dict]:
        return self.written + self.unchanged

    def view_counts(self) -> dict[str, dict[str, int]]:
        """Per view type: studies having it, series, slices (over written + unchanged)."""
        out: dict[str, dict[str, int]] = {}
        for e in self.cached:
            for view, v in e["views"].items():
                c = out.setdefault(view, {"studies": 0, "series": 0, "slices": 0})
                c["studies"] += 1
                c["series"] += v.get("series", 1)
                c["slices"] += v["slices"]
        return out

    def table(self) -> str:
        """The summary table (plain text)."""
        lines = [f"cache: {self.cache}",
                 f"studies: {len(self.cached)} cached ({len(self.written)} written, "
                 f"{len(self.unchanged)} unchanged) of {self.found} found"
                 + (" -- INTERRUPTED" if self.interrupted else "")]
        if self.formats:
            lines.append("formats: " + ", ".join(f"{k} {v}" for k, v in sorted(self.formats.items())))
        n_series = sum(v["series"] for v in self.view_counts().values())
        lines.append(f"series: {n_series}")
        lines.append(f"{'view':<10}{'studies':>9}{'series':>9}{'slices':>9}")
        for view, c in sorted(self.view_counts().items()):
            lines.append(f"{view:<10}{c['studies']:>9}{c['series']:>9}{c['slices']:>9}")
        labelled = sum(1 for e in self.cached if e.get("labels"))
        lines.append(f"studies with labels: {labelled}")
        with_targets = sum(1 for e in self.cached if e.get("targets"))
        if with_targets or self.labels is not None:
            lines.append(f"studies with exam-level targets: {with_targets}")
        if self.labels is not None:
            lines.extend(self.labels.lines([e["id"] for e in self.cached]))
        lines.append(f"skipped: {len(self.skipped)}")
        lines.extend(_grouped_lines(self.skipped))
        if self.warnings:
            lines.append(f"warnings (cached with a caveat): {len(self.warnings)}")
            lines.extend(_grouped_lines(self.warnings))
        return "\n".join(lines)


def _grouped_lines(items: list[Skipped], show: int = 5) -> list[str]:
    """One line per file; past ``show`` files with the same reason, a count instead."""
    seen: dict[str, int] = {}
    lines = []
    for s in items:
        n = seen[s.reason] = seen.get(s.reason, 0) + 1
        if n <= show:
            lines.append(f"  {s.path}: {s.reason}")
    for reason, n in seen.items():
        if n > show:
            lines.append(f"  ... and {n - show} more: {reason} (all listed in the manifest)")
    return lines


def _clean_leftovers(cache: Path) -> None:
    """Remove temporary folders an interrupted run left behind (never a finished study)."""
    root = cache / STUDIES
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith((".tmp-", ".old-")):
                shutil.rmtree(d, ignore_errors=True)


def _cached_hash(cache: Path, study_id: str) -> str | None:
    path = cache / STUDIES / study_id / "study.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("schema_version") != SCHEMA_VERSION:
        return None
    folder = path.parent
    for s in meta.get("series", []):  # a study with a missing array is rewritten
        if not (folder / f"{s['name']}.pixels.npy").is_file():
            return None
    return meta.get("source_hash")


def _load_and_write(fmt_name: str, source: SourceStudy, study_id: str, shash: str,
                    cache: str) -> tuple[dict | None, list[Skipped]]:
    """Worker: read one study and write it into the cache; returns its summary or why not."""
    from planessl.cache import study_summary

    fmt = FORMATS[fmt_name]
    skipped: list[Skipped] = []
    try:
        study = fmt.load_fn()(source, study_id, skipped=skipped)
    except InputFileError as exc:
        if any(s.path == str(exc.path) and not s.cached for s in skipped):
            return None, skipped  # the file already has its line, with the first reason
        return None, skipped + [Skipped(exc.path, exc.reason)]
    except PlaneSSLError as exc:
        return None, [Skipped(str(source.files[0]) if source.files else "?", describe_error(exc))]
    except MemoryError:
        return None, [Skipped(str(source.files[0]), "out of memory while reading the study")]
    except Exception as exc:  # noqa: BLE001 - a reader's bug must not stop the whole ingest
        first = str(source.files[0]) if source.files else "?"
        return None, skipped + [Skipped(first, f"unexpected error while reading this study "
                                               f"({type(exc).__name__}: {describe_error(exc)});"
                                               f" please report it")]
    if source.table_targets:  # the labels table's targets complete the reader's
        study.targets = {**study.targets, **source.table_targets}
    if source.table_laterality and not study.laterality:
        study.laterality = source.table_laterality
    if not study.series:
        if any(not s.cached for s in skipped):  # the files were already named with reasons
            return None, skipped
        return None, skipped + [Skipped(str(source.files[0]) if source.files else "?",
                                        "no usable series in the study")]
    folder = write_study(cache, study, source_hash=shash)
    meta = json.loads((folder / "study.json").read_text())
    return study_summary(meta), skipped


def ingest(sources: Sequence[str | Path], out: str | Path, fmt: str = "auto",
           workers: int = 1, salt: str | None = None, progress: bool | None = None,
           force: bool = False, assume_spacing_mm: float | None = None,
           labels: str | Path | None = None) -> IngestReport:
    """Ingest source files/folders into the cache ``out``.

    Args:
        sources: files or folders.
        out: cache folder (created when missing).
        fmt: a key of :data:`FORMATS`, or ``"auto"`` to detect one per source.
        workers: processes reading studies (and DICOM headers) in parallel.
        salt: salt of the opaque study ids (default: the public salt; give a secret one
            when even hashes of source UIDs must not be linkable).
        progress: tqdm progress bars (``None``: only on a terminal).
        force: rewrite studies even when unchanged.
        assume_spacing_mm: in-plane pixel spacing (mm) given to images whose source has
            none (ACDC HDF5), so that their nominal grid is on the scale of real data;
            they stay marked ``spacing_known=False``. Sources with geometry ignore it.
        labels: a CSV of exam-level targets (see :mod:`planessl.io.label_table` for how its
            rows find their exams); the matching is reported in ``report.labels``.

    Returns:
        The report; its ``cached`` list is empty when nothing could be cached.
    """
    from tqdm import tqdm

    out = Path(out)
    workers = max(1, int(workers))
    report = IngestReport(cache=out)
    if fmt != "auto" and fmt not in FORMATS:
        raise PlaneSSLError(f"unknown format {fmt!r}; known: auto, {', '.join(FORMATS)}")
    table = None
    if labels is not None:
        from planessl.io.label_table import read_label_table

        table = read_label_table(labels)  # checked before any study is read
    by_format: dict[str, list[Path]] = {}
    for s in sources:
        p = Path(s)
        if not p.exists():
            report.skipped.append(Skipped(str(p), "no such file or folder"))
            continue
        if p.is_dir() and not any(True for _ in _iter_limited(p)):
            report.skipped.append(Skipped(str(p), "empty folder"))
            continue
        by_format.setdefault(detect_format(p) if fmt == "auto" else fmt, []).append(p)
    report.tried = {k: [str(p) for p in v] for k, v in by_format.items()}
    report.detected = fmt == "auto"

    found: list[tuple[str, SourceStudy]] = []
    for name, paths in by_format.items():
        studies, skipped = FORMATS[name].discover_fn()(paths, workers=workers, progress=progress)
        report.skipped.extend(skipped)
        report.formats[name] = len(studies)
        if assume_spacing_mm is not None:
            if not assume_spacing_mm > 0:
                raise PlaneSSLError(f"--assume-spacing must be positive, got {assume_spacing_mm}")
            for st in studies:  # readers of sources without spacing look for this key
                if isinstance(st.payload, dict):
                    st.payload["assume_spacing_mm"] = float(assume_spacing_mm)
        found.extend((name, s) for s in studies)
    report.found = len(found)
    if table is not None:
        _attach_labels(report, table, found, [Path(s) for s in sources], salt)

    out.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(out)
    todo = []
    seen: dict[str, str] = {}
    keys: dict[str, str] = {}
    recorder = SkipRecorder(sources, salt)
    for name, src in found:
        sid = opaque_id(src.key, salt)
        recorder.add_study(sid, src)
        if sid in seen:
            report.skipped.append(Skipped(str(src.files[0]) if src.files else "?",
                                          "the same study also appears in another source; "
                                          "kept the first"))
            continue
        seen[sid] = name
        keys[src.key] = sid
        shash = source_hash(src.files)
        if src.table_targets or src.table_laterality:  # a changed table rewrites the study
            row = json.dumps([src.table_targets, src.table_laterality], sort_keys=True)
            shash = hashlib.sha256(f"{shash}\x00{row}".encode()).hexdigest()[:32]
        if not force and _cached_hash(out, sid) == shash:
            meta = json.loads((out / STUDIES / sid / "study.json").read_text())
            from planessl.cache import study_summary
            report.unchanged.append(study_summary(meta))
            continue
        todo.append((name, src, sid, shash))

    bar = tqdm(total=len(todo), desc="studies", unit="study",
               disable=None if progress is None else not progress)
    try:
        if workers == 1 or len(todo) <= 1:
            for args in todo:
                _collect(report, _load_and_write(*args, str(out)))
                bar.update(1)
        else:
            with _pool(min(workers, len(todo))) as pool:
                futures = [pool.submit(_load_and_write, *args, str(out)) for args in todo]
                for fut in as_completed(futures):
                    _collect(report, fut.result())
                    bar.update(1)
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    finally:
        bar.close()
        # the cache names skipped files by opaque id and position (no source names)
        rebuild_manifest(out, skipped=[recorder.record(s) for s in report.skipped],
                         warnings=[recorder.record(s) for s in report.warnings])
        report.file_ids = dict(recorder.file_ids)
        cached = {e["id"] for e in report.cached}
        report.keys = {k: sid for k, sid in keys.items() if sid in cached}
    return report


def _attach_labels(report: IngestReport, table, found: list[tuple[str, SourceStudy]],
                   roots: list[Path], salt: str | None) -> None:
    """Match the labels table's rows to the exams found and hand each its targets."""
    from planessl.io.label_table import match_labels

    match = match_labels(table, [(src, opaque_id(src.key, salt)) for _, src in found], roots)
    for _, src in found:
        targets, laterality = match.by_exam.get(opaque_id(src.key, salt), ({}, None))
        src.table_targets, src.table_laterality = dict(targets), laterality
    report.labels = match
    # the table itself may lie in a source folder: it is no skipped image file
    own = os.path.abspath(table.path)
    report.skipped = [s for s in report.skipped if os.path.abspath(s.path) != own]


def check_key_table_path(path: str | Path, cache: str | Path) -> Path:
    """The ``--keys`` file, refused inside the cache (the cache stays PHI-free).

    Raises:
        PlaneSSLError: the path is inside the cache folder, or is a folder.
    """
    path = Path(path)
    full, root = Path(os.path.abspath(path)), Path(os.path.abspath(cache))
    if full == root or root in full.parents:
        raise PlaneSSLError(f"{path}: --keys must name a file outside the cache {cache} "
                            f"(the table holds source keys, which can carry PHI)")
    if path.is_dir():
        raise PlaneSSLError(f"{path}: --keys names a folder; give a file name (e.g. keys.csv)")
    return path


def write_key_table(path: str | Path, keys: dict[str, str]) -> Path:
    """Write the CSV ``source_key,cache_id`` (one row per cached study, sorted by key)
    atomically: under a temporary name in the same folder, then renamed."""
    import csv
    import io

    from planessl.atomic import write_text

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source_key", "cache_id"])
    writer.writerows(sorted(keys.items()))
    try:
        write_text(path, buf.getvalue())
    except OSError as exc:
        raise PlaneSSLError(f"{path}: cannot write the key table ({describe_error(exc)})"
                            ) from None
    return Path(path)


def _collect(report: IngestReport, result: tuple[dict | None, list[Skipped]]) -> None:
    entry, skipped = result
    report.skipped.extend(s for s in skipped if not s.cached)
    report.warnings.extend(s for s in skipped if s.cached)
    if entry is not None:
        report.written.append(entry)


def file_kind(name: str) -> str:
    """What a file name suggests it holds (for the ``nothing was cached`` message)."""
    n = name.lower()
    if n.endswith((".nii", ".nii.gz")):
        return "NIfTI"
    if n.endswith(".dcm") or "." not in n.lstrip("."):
        return "DICOM or no extension"
    for ext, kind in ((".h5", "HDF5"), (".hdf5", "HDF5"), (".npy", "npy")):
        if n.endswith(ext):
            return kind
    return "other"


def _iter_limited(folder: Path) -> Iterable[Path]:
    for _root, _dirs, files in os.walk(folder):
        for f in files:
            yield Path(_root) / f
