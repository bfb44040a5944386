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

    def as_dict(self, roots: Sequence[str | Path] | None = None) -> dict:
        """``{"path", "reason"}``; with ``roots`` (the sources given to ingest) the path is
        relative to the source holding it (see :func:`relative_to_sources`), and
        ``"source"`` (1-based) says which one when there are several."""
        if roots is None:
            return {"path": self.path, "reason": self.reason}
        k, rel = relative_to_sources(self.path, roots)
        out = {"path": rel, "reason": self.reason}
        if len(roots) > 1 and k is not None:
            out["source"] = k + 1
        return out


def relative_to_sources(path: str | Path, roots: Sequence[str | Path]
                        ) -> tuple[int | None, str]:
    """``(index of the source, path relative to it)`` for the manifest, whose readers must
    not learn the folder names above a source (they can carry PHI).

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
