"""Core geometry: lines lie on both planes, heatmap widths, stack orientation."""

import numpy as np
import pytest

from planessl.errors import GeometryError
from planessl.geometry import (Plane, intersection_line, line_endpoints, stack_geometry,
                               distance_map_mm)
from planessl.targets import line_heatmap, slice_location_targets


def random_plane(rng, shape=(64, 80)):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return Plane(rng.normal(size=3) * 40, q[:, 0], q[:, 1],
                 (rng.uniform(0.6, 2.0), rng.uniform(0.6, 2.0)), shape, 8.0)


def test_line_points_lie_on_both_planes():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(200):
        a, b = random_plane(rng), random_plane(rng)
        line = intersection_line(a, b)
        assert line is not None
        assert abs(line.a ** 2 + line.b ** 2 - 1) < 1e-12
        ends = line_endpoints(line, a.shape)
        if ends is None:
            continue
        for i, j in ends:
            p = a.pixel_to_world(i, j)
            assert abs(b.world_to_pixel(p)[2]) < 1e-6
            assert abs(a.world_to_pixel(p)[2]) < 1e-6
        checked += 1
    assert checked > 20


def test_parallel_planes_have_no_line():
    a = Plane([0, 0, 0], [1, 0, 0], [0, 1, 0], (1, 1), (10, 10))
    b = Plane([0, 0, 5], [0, 1, 0], [1, 0, 0], (1, 1), (10, 10))
    assert intersection_line(a, b) is None
    assert line_heatmap(a, b, sigma_px=2) is None


def test_heatmap_at_sigma_is_exp_minus_half():
    a = Plane([0, 0, 0], [1, 0, 0], [0, 1, 0], (1.5, 1.5), (50, 50))
    b = Plane([10 * 1.5, 0, 0], [0, 0, 1], [0, 1, 0], (1, 1), (10, 10))  # x = 15 mm: column 10
    h = line_heatmap(a, b, sigma_mm=3.0)  # 2 pixels
    assert h[20, 10] == pytest.approx(1.0)
    assert h[20, 12] == pytest.approx(np.exp(-0.5), rel=1e-6)
    assert h[20, 8] == pytest.approx(np.exp(-0.5), rel=1e-6)
    d = distance_map_mm(a, b)
    assert d[0, 14] == pytest.approx(6.0)


def test_stack_oriented_base_to_apex_whatever_the_scanner_order():
    n = np.array([1.0, -1.0, -1.0]) / np.sqrt(3)
    u = np.cross(n, [0, 0, 1.0]); u /= np.linalg.norm(u)
    v = np.cross(n, u)
    planes = [Plane(k * 8 * n, u, v, (1, 1), (8, 8)) for k in range(6)]
    rel = slice_location_targets(planes[::-1])
    np.testing.assert_allclose(rel, np.linspace(1, 0, 6))
    flipped = [Plane(k * 8 * n, v, u, (1, 1), (8, 8)) for k in range(6)]  # normal = -n
    np.testing.assert_allclose(slice_location_targets(flipped), np.linspace(0, 1, 6))
    assert slice_location_targets(planes[:1]) is None
    uneven = planes[:3] + [Plane(40 * n, u, v, (1, 1), (8, 8))]
    assert not stack_geometry(uneven).is_regular


def test_non_orthonormal_orientation_is_rejected():
    with pytest.raises(GeometryError, match="orthonormal"):
        Plane([0, 0, 0], [1, 0, 0], [0.1, 1, 0], (1, 1), (4, 4))
