"""What every dataset reader hands to ingest: studies found in the source, files skipped.

Ingest works in two steps so that it can skip unchanged studies and run in parallel:
``discover(paths)`` finds the studies (cheap: names and headers only) as :class:`SourceStudy`
records, and ``load(source, study_id)`` reads one of them into a :class:`planessl.study.Study`.
A :class:`SourceStudy` is picklable, so ``load`` can run in worker processes.

Study ids are opaque: the first 16 hex digits of ``sha256(salt + key)``, where the key names
the study in its source (a DICOM StudyInstanceUID, an ACDC patient number). Keys never reach
the cache; with the default salt a user who knows a key can find its study
(:func:`opaque_id`), e.g. to select the ACDC test patients.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

#: Salt of the opaque study ids unless the user gives one (``--salt`` / PLANESSL_SALT).
DEFAULT_SALT = "planessl-v1"


def opaque_id(key: str, salt: str | None = None) -> str:
    """Opaque 16-hex-digit study id of a source key (no PHI survives the hash)."""
    salt = DEFAULT_SALT if salt is None else salt
    return hashlib.sha256(f"{salt}\x00{key}".encode()).hexdigest()[:16]


def source_hash(files: Iterable[str | Path]) -> str:
    """Hash over the files' paths, sizes and modification times (changes when any does)."""
    h = hashlib.sha256()
    real_dirs: dict[str, str] = {}  # one realpath per folder, not per file (it dominated)

    def resolved(p) -> str:
        d, name = os.path.split(os.path.abspath(p))
        if d not in real_dirs:
            real_dirs[d] = os.path.realpath(d)
        full = os.path.join(real_dirs[d], name)
        return os.path.realpath(full) if os.path.islink(full) else full

    for f in sorted(resolved(p) for p in files):
        try:
            st = os.stat(f)
            h.update(f"{f}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{f}\x00missing\n".encode())
    return h.hexdigest()[:32]


@dataclass
class Skipped:
    """A file (or folder) that was not cached, and why (one line).

    ``cached=True`` marks a warning instead: the file was cached, but with a caveat
    (e.g. a one-slice SAX "stack" that has no slice-location target).
    """

    path: str
    reason: str
    cached: bool = False


def relative_to_sources(path: str | Path, roots: Sequence[str | Path]
                        ) -> tuple[int | None, str]:
    """``(index of the source, path relative to it)``: which source given to ingest holds a
    file (the manifest records the index, never the path).

    A folder source holds the paths below it (itself is ``"."``); a file source is named by
    its file name. A path under no source keeps only its file name (index ``None``). The
    deepest source holding the path wins.
    """
    full = os.path.abspath(path)
    best: tuple[int, int, str] | None = None  # (depth, index, relative)
    for k, root in enumerate(roots):
        r = os.path.abspath(root)
        base = os.path.dirname(r) if os.path.isfile(r) else r
        if full != base and not full.startswith(base.rstrip(os.sep) + os.sep):
            continue
        if best is None or len(base) > best[0]:
            best = (len(base), k, os.path.relpath(full, base))
    if best is None:
        return None, os.path.basename(full)
    return best[1], best[2]


def file_id(path: str | Path, salt: str | None = None) -> str:
    """Opaque id of a source file for the cache's lists of skipped files (``file-`` and 12
    hex digits of the salted hash of its absolute path); the ``--keys`` table maps it back."""
    return "file-" + opaque_id("file:" + os.path.abspath(path), salt)[:12]


class SkipRecorder:
    """Turns skipped files and warnings into the cache's PHI-free records.

    A record names the file by :func:`file_id` and its place: the source (1-based, when
    several were given), the opaque id of the study it belongs to, and its position there
    (DICOM: the SeriesNumber and the image's rank in its series; else its rank among the
    study's files), with the reason. Folder and file names of the source never enter it:
    where a reader's reason quotes a path or a file name of the study, it is replaced by
    ``<file>``. :attr:`file_ids` maps each recorded path to its id, for the ``--keys``
    table outside the cache.
    """

    def __init__(self, roots: Sequence[str | Path], salt: str | None = None) -> None:
        self.roots = [Path(r) for r in roots]
        self.salt = salt
        self.file_ids: dict[str, str] = {}
        self._where: dict[str, tuple[str, str]] = {}      # abs path -> (study id, position)
        self._names: dict[str, set[str]] = {}             # study id -> quotable names
        self._folders: dict[str, tuple[str, str]] = {}    # abs folder -> (study id, position)

    def add_study(self, study_id: str, source: SourceStudy) -> None:
        """Remember where each file of a discovered study lies (before it is loaded)."""
        files = sorted(os.path.abspath(f) for f in source.files)
        records = source.payload.get("records") if isinstance(source.payload, dict) else None
        if records:
            by_series: dict[int, list[tuple[int, str]]] = {}
            for r in records:
                by_series.setdefault(r.series_number, []).append((r.instance_number, r.path))
            for number, items in by_series.items():
                ranked = sorted(set(items))
                for k, (_, path) in enumerate(ranked):
                    self._where[os.path.abspath(path)] = (
                        study_id, f"series {number}, image {k + 1} of {len(ranked)}")
        for k, f in enumerate(files):
            self._where.setdefault(f, (study_id, f"file {k + 1} of {len(files)} of the study"))
        folders: dict[str, set[int]] = {}
        for r in records or []:
            folders.setdefault(os.path.dirname(os.path.abspath(r.path)), set()).add(
                r.series_number)
        for f in files:
            folders.setdefault(os.path.dirname(f), set())
        for d, numbers in folders.items():
            what = (f"a file beside series {', '.join(map(str, sorted(numbers)))}"
                    if numbers else "a file in a folder of the study")
            self._folders.setdefault(d, (study_id, what))
        names = self._names.setdefault(study_id, set())
        for f in files:
            names.update(_quotable(f))

    def record(self, item: Skipped) -> dict:
        """The manifest record of a skipped file or warning."""
        full = os.path.abspath(item.path)
        fid = self.file_ids.setdefault(str(item.path), file_id(item.path, self.salt))
        out: dict = {"file": fid}
        k, _ = relative_to_sources(item.path, self.roots)
        if len(self.roots) > 1 and k is not None:
            out["source"] = k + 1
        study, position = self._where.get(full) or self._folders.get(
            os.path.dirname(full), (None, None))
        if study is not None:
            out["study"] = study
            out["position"] = position
        names = set(_quotable(full)) | set(_quotable(str(item.path)))
        if study is not None:
            names |= self._names.get(study, set())
        out["reason"] = _scrub(item.reason, names)
        return out


def _quotable(path: str) -> list[str]:
    """Strings of a path that a reason could quote: the path, its folders, and the names
    of its parts that do not read as words of a reason (6 characters or more, not letters
    alone, or holding a dot or ``^``: ``IM-0003-0001``, ``DOE^JANE``, ``20240101``,
    ``001_SA_ED.nii.gz``)."""
    out = [path]
    for d in Path(path).parents:
        text = str(d)
        if text in (os.sep, ".", "") or (os.sep not in text and text.isalpha()):
            continue
        out.append(text)
    for part in Path(path).parts:
        if part != os.sep and (("." in part or "^" in part) and len(part) >= 3
                               or len(part) >= 6 and not part.isalpha()):
            out.append(part)
    return out


def _scrub(reason: str, names: set[str]) -> str:
    """``reason`` with every quoted name (longest first) replaced by ``<file>``."""
    for name in sorted((n for n in names if n and n in reason), key=len, reverse=True):
        reason = reason.replace(name, "<file>")
    return reason


@dataclass
class SourceStudy:
    """One study found in a source, before its pixels are read.

    Attributes:
        key: names the study in its source (never written to the cache; hashed to the id).
        format: the reader that loads it (a key of :data:`planessl.ingest.FORMATS`).
        files: every file the study is read from (for :func:`source_hash`).
        payload: picklable reader-specific data (e.g. parsed header records).
        table_targets: exam-level targets from ``ingest --labels`` (added to the study's).
        table_laterality: knee side from ``ingest --labels`` (used when the images say none).
    """

    key: str
    format: str
    files: list[Path]
    payload: Any = None
    notes: list[str] = field(default_factory=list)
    table_targets: dict[str, int] = field(default_factory=dict)
    table_laterality: str | None = None


def describe_error(exc: BaseException) -> str:
    """First line of an exception message, or its type name."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
