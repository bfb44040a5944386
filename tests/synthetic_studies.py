"""Small random multi-view studies for tests: orthogonal planes around a centre point."""

from __future__ import annotations

import numpy as np

from planessl.geometry import CARDIAC_APEX_DIRECTION, Plane
from planessl.study import Series, Study


def _plane_through(centre, row, col, spacing, shape, thickness=8.0) -> Plane:
    row, col = np.asarray(row, float), np.asarray(col, float)
    origin = centre - (shape[0] - 1) / 2 * spacing * col - (shape[1] - 1) / 2 * spacing * row
    return Plane(origin, row, col, (spacing, spacing), shape, thickness)


def make_synthetic_study(seed: int, study_id: str | None = None, views=("sax", "2ch", "4ch"),
                         n_slices: int = 5, n_frames: int = 2, shape=(36, 40),
                         spacing_known: bool = True) -> Study:
    """A study whose long axis points roughly base→apex; SAX slices 8 mm apart, stored
    apex-first half of the time (the targets must not care); random pixels."""
    rng = np.random.default_rng(seed)
    axis = CARDIAC_APEX_DIRECTION + rng.normal(scale=0.2, size=3)
    axis /= np.linalg.norm(axis)
    helper = np.array([0.0, 0.0, 1.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    centre = rng.normal(scale=20, size=3)
    spacing = float(rng.uniform(1.2, 1.8))
    series = []
    if "sax" in views:
        offsets = (np.arange(n_slices) - (n_slices - 1) / 2) * 8.0
        if rng.random() < 0.5:
            offsets = offsets[::-1]
        planes = [_plane_through(centre + o * axis, u, v, spacing, shape) for o in offsets]
        pix = rng.normal(size=(n_slices, n_frames) + tuple(shape)).astype(np.float32) * 50 + 200
        series.append(Series("sax", "sax", planes, pix, spacing_known=spacing_known))
    for name, angle in (("2ch", 0.0), ("4ch", 75.0), ("3ch", 130.0)):
        if name not in views:
            continue
        t = np.deg2rad(angle + rng.normal(scale=5))
        in_plane = np.cos(t) * u + np.sin(t) * v
        plane = _plane_through(centre + rng.normal(scale=3, size=3), in_plane, axis, spacing, shape)
        pix = rng.normal(size=(1, n_frames) + tuple(shape)).astype(np.float32) * 50 + 200
        series.append(Series(name, name, [plane], pix, spacing_known=spacing_known))
    return Study(study_id or f"s{seed:03d}", series)
