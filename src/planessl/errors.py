"""Errors that planessl reports to users as one clear line (no traceback)."""

from __future__ import annotations


class PlaneSSLError(Exception):
    """Base class of errors caused by user input (files, arguments, configuration).

    The command line prints ``planessl: error: <message>`` and exits with status 2.
    """


class GeometryError(PlaneSSLError, ValueError):
    """Inconsistent or missing image geometry."""


class InputFileError(PlaneSSLError):
    """A file that cannot be used; the message names the file and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
