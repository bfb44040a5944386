"""View planning: from lines on input images (localizers) to target imaging planes.

* :mod:`planessl.planning.fit`: lift 2D lines into 3D and fit a plane to them.
* :mod:`planessl.planning.plan`: the ``planessl plan`` pipeline (inputs, line sources,
  report).
"""

from planessl.planning.fit import (Line3D, PlaneFit, fit_plane, lift_line, line_in_pixels,
                                   plane_errors)

__all__ = ["Line3D", "PlaneFit", "fit_plane", "lift_line", "line_in_pixels", "plane_errors"]
