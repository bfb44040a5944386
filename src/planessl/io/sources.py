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
from typing import Any, Iterable

#: Salt of the opaque study ids unless the user gives one (``--salt`` / PLANESSL_SALT).
DEFAULT_SALT = "planessl-v1"


def opaque_id(key: str, salt: str | None = None) -> str:
    """Opaque 16-hex-digit study id of a source key (no PHI survives the hash)."""
    salt = DEFAULT_SALT if salt is None else salt
    return hashlib.sha256(f"{salt}\x00{key}".encode()).hexdigest()[:16]


def source_hash(files: Iterable[str | Path]) -> str:
    """Hash over the files' paths, sizes and modification times (changes when any does)."""
    h = hashlib.sha256()
    for f in sorted(str(Path(p).resolve()) for p in files):
        try:
            st = os.stat(f)
            h.update(f"{f}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{f}\x00missing\n".encode())
    return h.hexdigest()[:32]


@dataclass
class Skipped:
    """A file (or folder) that was not cached, and why (one line)."""

    path: str
    reason: str

    def as_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason}


@dataclass
class SourceStudy:
    """One study found in a source, before its pixels are read.

    Attributes:
        key: names the study in its source (never written to the cache; hashed to the id).
        format: the reader that loads it (a key of :data:`planessl.ingest.FORMATS`).
        files: every file the study is read from (for :func:`source_hash`).
        payload: picklable reader-specific data (e.g. parsed header records).
    """

    key: str
    format: str
    files: list[Path]
    payload: Any = None
    notes: list[str] = field(default_factory=list)


def describe_error(exc: BaseException) -> str:
    """First line of an exception message, or its type name."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
