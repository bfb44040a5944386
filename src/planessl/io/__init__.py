"""Readers: DICOM, NIfTI and the dataset layouts built on them. Every reader converts the
source's geometry to :class:`planessl.geometry.Plane` (LPS, mm) once, here."""
