"""planessl: self-supervised learning on MR images acquired in anatomy-oriented planes."""

from planessl.errors import GeometryError, InputFileError, PlaneSSLError
from planessl.geometry import Line, Plane, intersection_line, stack_geometry

__version__ = "0.1.0"

__all__ = ["GeometryError", "InputFileError", "Line", "Plane", "PlaneSSLError",
           "intersection_line", "stack_geometry", "__version__"]
