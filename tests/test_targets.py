"""Pretext targets: line heatmaps (single, multi-line, channels with presence) and
relative slice locations."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_plane
from planessl.errors import GeometryError
from planessl.geometry import Plane, stack_geometry
from planessl.targets import (line_heatmap, line_targets, sigma_from_thickness,
                              slice_location_targets)


def _world_line_distance(a: Plane, b: Plane) -> np.ndarray:
    """In-plane distance (mm) of every pixel centre of a from the plane b, measured in
    world space: a pixel's distance to b is |n_b . (x - o_b)|, and within a it grows by
    sin(angle) per mm away from the line (independent of planessl's line formula)."""
    ii, jj = np.meshgrid(np.arange(a.shape[0]), np.arange(a.shape[1]), indexing="ij")
    off = np.abs((a.pixel_to_world(ii, jj) - b.origin) @ b.normal)
    sin = np.linalg.norm(np.cross(a.normal, b.normal))
    return off / sin


def test_heatmap_value_at_sigma_anisotropic_oblique(rng):
    for _ in range(20):
        a = random_plane(rng, shape=(48, 56), spacing=(0.6, 1.8))
        b = random_plane(rng)
        h = line_heatmap(a, b, sigma_mm=4.0, dtype=np.float64)
        if h is None:
            continue
        d = _world_line_distance(a, b)
        np.testing.assert_allclose(h, np.exp(-d ** 2 / (2 * 4.0 ** 2)), atol=1e-9)
        near = np.abs(d - 4.0) < 0.005  # slope there: 0.15 per mm
        if near.any():
            np.testing.assert_allclose(h[near], np.exp(-0.5), atol=1e-3)


def test_peak_is_exactly_one_on_the_line_and_exp_minus_half_at_sigma():
    a = Plane([0, 0, 0], [1, 0, 0], [0, 1, 0], (0.5, 2.0), (40, 30))  # anisotropic
    b = Plane([20.0, 0, 0], [0, 0, 1], [0, 1, 0], (1, 1), (10, 10))   # x = 20 mm: column 10
    h = line_heatmap(a, b, sigma_mm=4.0)                                 # 2 columns
    assert h.dtype == np.float32
    assert np.all(h[:, 10] == 1.0)
    np.testing.assert_allclose(h[:, 12], np.exp(-0.5), rtol=1e-6)
    np.testing.assert_allclose(h[:, 8], np.exp(-0.5), rtol=1e-6)
    hp = line_heatmap(a, b, sigma_px=4.0)                                # 4 columns
    np.testing.assert_allclose(hp[:, 14], np.exp(-0.5), rtol=1e-6)
    c = Plane([0, 10.0, 0], [1, 0, 0], [0, 0, 1], (1, 1), (10, 10))     # y = 10 mm: row 20
    hc = line_heatmap(a, c, sigma_mm=4.0)                                # 8 rows
    np.testing.assert_allclose(hc[28], np.exp(-0.5), rtol=1e-6)
    with pytest.raises(ValueError):
        line_heatmap(a, b, sigma_mm=1.0, sigma_px=1.0)
    with pytest.raises(ValueError):
        line_heatmap(a, b, sigma_mm=0.0)


def test_multi_line_heatmap_is_the_max_over_the_stack():
    lax = Plane([0, 0, 0], [1, 0, 0], [0, 0, -1], (1.0, 1.0), (60, 60))
    sax = [Plane([0, 0, -z], [1, 0, 0], [0, 1, 0], (1.5, 1.5), (40, 40), 8.0)
           for z in (10.0, 20.0, 30.0)]
    h = line_heatmap(lax, sax, sigma_mm=2.0)
    singles = np.stack([line_heatmap(lax, s, sigma_mm=2.0) for s in sax])
    np.testing.assert_array_equal(h, singles.max(axis=0))
    for row in (10, 20, 30):  # rows of the three SAX slices in the LAX image
        assert np.all(h[row] == 1.0)
    assert h[15, 0] == pytest.approx(np.exp(-25 / 8), rel=1e-6)
    parallel = Plane([0, 5, 0], [1, 0, 0], [0, 0, 1], (1, 1), (5, 5))
    np.testing.assert_array_equal(line_heatmap(lax, sax + [parallel], sigma_mm=2.0), h)
    assert line_heatmap(lax, [parallel], sigma_mm=2.0) is None


def test_line_targets_channels_and_presence_mask():
    sax = Plane([0, 0, 0], [1, 0, 0], [0, 1, 0], (1.25, 1.25), (32, 32))
    two = Plane([10, 0, 0], [0, 1, 0], [0, 0, 1], (1, 1), (8, 8))
    four = Plane([0, 12, 0], [1, 0, 0], [0, 0, 1], (1, 1), (8, 8))
    parallel = Plane([0, 0, 9], [1, 0, 0], [0, 1, 0], (1, 1), (8, 8))
    heat, present = line_targets(sax, {"2ch": two, "4ch": four, "3ch": None, "other": parallel,
                                       "empty": []},
                                 ["2ch", "3ch", "4ch", "other", "empty", "absent"],
                                 sigma_mm=3.0)
    assert heat.shape == (6, 32, 32) and heat.dtype == np.float32
    assert present.tolist() == [True, False, True, False, False, False]
    np.testing.assert_array_equal(heat[0], line_heatmap(sax, two, sigma_mm=3.0))
    np.testing.assert_array_equal(heat[2], line_heatmap(sax, four, sigma_mm=3.0))
    assert not heat[[1, 3, 4, 5]].any()
    assert np.all(heat[0][:, 8] == 1.0)  # x = 10 mm: column 8
    assert sigma_from_thickness(sax, Plane([0, 0, 0], [1, 0, 0], [0, 0, 1], (1, 1), (4, 4),
                                           7.5)) == 3.75
    with pytest.raises(ValueError):
        sigma_from_thickness(sax, Plane([0, 0, 0], [1, 0, 0], [0, 0, 1], (1, 1), (4, 4)))


def _apex_stack(n: int, gaps=None):
    apex = np.array([1.0, -1.0, -1.0]) / np.sqrt(3)
    u = np.cross(apex, [0, 0, 1.0])
    u /= np.linalg.norm(u)
    v = np.cross(apex, u)  # so that u x v = apex
    pos = np.cumsum([0.0] + list(gaps if gaps is not None else [8.0] * (n - 1)))
    return [Plane(p * apex + [3.0, 1.0, -2.0], u, v, (1.5, 1.5), (16, 16)) for p in pos], apex


def test_slice_location_base_to_apex_any_order_or_normal_sign():
    planes, apex = _apex_stack(5)
    assert np.allclose(planes[0].normal, apex) or np.allclose(planes[0].normal, -apex)
    np.testing.assert_allclose(slice_location_targets(planes), np.linspace(0, 1, 5))
    np.testing.assert_allclose(slice_location_targets(planes[::-1]), np.linspace(1, 0, 5))
    flipped = [Plane(p.origin, p.col_dir, p.row_dir, p.spacing, p.shape) for p in planes]
    np.testing.assert_allclose(slice_location_targets(flipped), np.linspace(0, 1, 5))
    shuffled = [planes[k] for k in (3, 0, 4, 1, 2)]
    np.testing.assert_allclose(slice_location_targets(shuffled), [0.75, 0, 1, 0.25, 0.5])
    geo = stack_geometry(shuffled)
    assert geo.order.tolist() == [1, 3, 4, 0, 2] and geo.spacing == pytest.approx(8.0)
    assert geo.is_regular


def test_one_slice_stack_has_no_target():
    planes, _ = _apex_stack(1)
    assert slice_location_targets(planes) is None
    assert stack_geometry(planes).relative is None


def test_non_parallel_stack_is_an_error():
    planes, _ = _apex_stack(3)
    tilted = planes[2].rotate(0.0)
    t = np.deg2rad(5)
    tilted = Plane(tilted.origin, np.cos(t) * tilted.row_dir + np.sin(t) * tilted.normal,
                   tilted.col_dir, tilted.spacing, tilted.shape)
    with pytest.raises(GeometryError, match="not parallel"):
        slice_location_targets(planes[:2] + [tilted])


def test_uneven_spacing_and_duplicates_are_reported():
    planes, _ = _apex_stack(5, gaps=[8.0, 8.0, 16.0, 8.0])
    geo = stack_geometry(planes)
    assert not geo.is_regular and any("uneven" in p for p in geo.problems)
    np.testing.assert_allclose(geo.relative, [0, 0.2, 0.4, 0.8, 1.0])
    dup, _ = _apex_stack(3, gaps=[8.0, 0.0])
    assert any("duplicate" in p for p in stack_geometry(dup).problems)


def test_float32_heatmap_matches_float64_and_far_field_is_tiny(rng):
    worst = 0.0
    for _ in range(40):
        a, b = random_plane(rng, shape=(96, 112)), random_plane(rng)
        s = rng.uniform(2.0, 10.0)
        h32 = line_heatmap(a, b, sigma_mm=s)
        if h32 is None:
            continue
        d = _world_line_distance(a, b)
        exact = np.exp(-d ** 2 / (2 * s ** 2))
        worst = max(worst, float(np.abs(h32 - exact).max()))
        far = exact < 1e-38
        assert np.all(h32[far] <= 1.3e-38) and np.all(h32 > 0)
    assert worst < 2e-5  # float32 rounding of the distance only
