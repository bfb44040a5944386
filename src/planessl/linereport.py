"""The line of one image's plane in another's pixels, as a report for people and programs."""

from __future__ import annotations

from dataclasses import dataclass

from planessl.geometry import (DEFAULT_PARALLEL_TOLERANCE_DEG, Plane, intersection_line,
                               line_endpoints, plane_angle_deg)


@dataclass(frozen=True)
class LineReport:
    """Where plane B cuts plane A, in A's pixel indices.

    Attributes:
        angle_deg: angle between the planes, degrees in [0, 90].
        parallel: ``True`` when the angle is below the tolerance (then no line).
        a, b, c: the line ``a*i + b*j + c = 0`` with ``a**2 + b**2 = 1`` (``None`` if parallel).
        endpoints: ``((i0, j0), (i1, j1))`` where the line crosses A's field of view
            ``[-0.5, rows-0.5] x [-0.5, cols-0.5]``, or ``None`` when it misses it.
    """

    angle_deg: float
    parallel: bool
    a: float | None = None
    b: float | None = None
    c: float | None = None
    endpoints: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def in_fov(self) -> bool:
        return self.endpoints is not None

    def to_dict(self) -> dict:
        return {"angle_deg": self.angle_deg, "parallel": self.parallel,
                "a": self.a, "b": self.b, "c": self.c, "in_fov": self.in_fov,
                "endpoints": None if self.endpoints is None
                else [[float(x) for x in p] for p in self.endpoints]}

    def summary(self) -> str:
        """One line: the equation and end points, or why there is no line."""
        if self.parallel:
            return f"parallel (angle {self.angle_deg:.3f} deg): no line"
        eq = f"{self.a:+.6f}*i {self.b:+.6f}*j {self.c:+.4f} = 0"
        if self.endpoints is None:
            return f"{eq}, misses the field of view (angle {self.angle_deg:.2f} deg)"
        (i0, j0), (i1, j1) = self.endpoints
        return (f"{eq}, from (i={i0:.2f}, j={j0:.2f}) to (i={i1:.2f}, j={j1:.2f}), "
                f"angle {self.angle_deg:.2f} deg")


def describe_line(a: Plane, b: Plane,
                  tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG) -> LineReport:
    """The :class:`LineReport` of plane ``b`` in plane ``a``'s pixels."""
    line = intersection_line(a, b, tolerance_deg)
    if line is None:
        return LineReport(angle_deg=plane_angle_deg(a, b), parallel=True)
    ends = line_endpoints(line, a.shape)
    if ends is not None:
        ends = tuple((float(i), float(j)) for i, j in ends)
    return LineReport(angle_deg=line.angle_deg, parallel=False, a=float(line.a),
                      b=float(line.b), c=float(line.c), endpoints=ends)
