"""Plane geometry: lines on both planes, one 3D line from both sides, rigid invariance,
transforms that commute with target computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from conftest import random_plane, random_rotation
from planessl.errors import GeometryError
from planessl.geometry import (Plane, distance_map_mm, distance_map_px, intersection_line,
                               intersection_line_world, line_endpoints, plane_angle_deg,
                               planes_from_affine)
from planessl.targets import line_heatmap


def _line_points_world(a: Plane, b: Plane) -> tuple[np.ndarray, np.ndarray]:
    """Two world points of the line b∩a computed in a's pixels (not necessarily in the FOV)."""
    line = intersection_line(a, b)
    i0, j0 = -line.c * line.a, -line.c * line.b  # foot of the perpendicular from (0, 0)
    p0 = a.pixel_to_world(i0, j0)
    p1 = a.pixel_to_world(i0 - 50 * line.b, j0 + 50 * line.a)
    return p0, p1


def _distance_to_world_line(points: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    u = (q - p) / np.linalg.norm(q - p)
    d = points - p
    return np.linalg.norm(d - (d @ u)[..., None] * u, axis=-1)


def test_random_pairs_line_lies_on_both_planes(rng):
    checked_fov = 0
    for _ in range(300):
        a, b = random_plane(rng), random_plane(rng)
        if plane_angle_deg(a, b) < 2:
            continue
        p0, p1 = _line_points_world(a, b)
        for p in (p0, p1):
            assert abs(a.world_to_pixel(p)[2]) < 1e-6
            assert abs(b.world_to_pixel(p)[2]) < 1e-6
        ends = line_endpoints(intersection_line(a, b), a.shape)
        if ends is not None:
            checked_fov += 1
            for i, j in ends:
                assert -0.5 - 1e-9 <= i <= a.shape[0] - 0.5 + 1e-9
                assert -0.5 - 1e-9 <= j <= a.shape[1] - 0.5 + 1e-9
                assert abs(b.world_to_pixel(a.pixel_to_world(i, j))[2]) < 1e-6
    assert checked_fov > 30


def test_line_in_a_and_line_in_b_are_the_same_3d_line(rng):
    for _ in range(100):
        a, b = random_plane(rng), random_plane(rng)
        if plane_angle_deg(a, b) < 2:
            continue
        pa0, pa1 = _line_points_world(a, b)
        pb0, pb1 = _line_points_world(b, a)
        assert np.all(_distance_to_world_line(np.stack([pa0, pa1]), pb0, pb1) < 1e-6)
        ua = (pa1 - pa0) / np.linalg.norm(pa1 - pa0)
        ub = (pb1 - pb0) / np.linalg.norm(pb1 - pb0)
        assert abs(abs(ua @ ub) - 1) < 1e-9
        point, direction = intersection_line_world(a, b)
        assert _distance_to_world_line(point[None], pa0, pa1)[0] < 1e-6
        assert abs(abs(direction @ ua) - 1) < 1e-9


def _move(plane: Plane, rot: np.ndarray, shift: np.ndarray) -> Plane:
    return Plane(rot @ plane.origin + shift, rot @ plane.row_dir, rot @ plane.col_dir,
                 plane.spacing, plane.shape, plane.thickness)


def test_invariant_when_the_whole_world_moves_and_rotates(rng):
    for _ in range(50):
        a, b = random_plane(rng), random_plane(rng)
        rot, shift = random_rotation(rng), rng.normal(size=3) * 300
        l1 = intersection_line(a, b)
        l2 = intersection_line(_move(a, rot, shift), _move(b, rot, shift))
        if l1 is None:
            assert l2 is None
            continue
        np.testing.assert_allclose([l2.a, l2.b, l2.c, l2.angle_deg],
                                   [l1.a, l1.b, l1.c, l1.angle_deg], atol=1e-7)
        h1 = line_heatmap(a, b, sigma_mm=5.0)
        h2 = line_heatmap(_move(a, rot, shift), _move(b, rot, shift), sigma_mm=5.0)
        np.testing.assert_allclose(h2, h1, atol=1e-5)


def test_parallel_within_tolerance_is_no_line():
    a = Plane([0, 0, 0], [1, 0, 0], [0, 1, 0], (1, 1), (10, 10))
    t = np.deg2rad(0.5)
    b = Plane([0, 0, 5], [np.cos(t), 0, np.sin(t)], [0, 1, 0], (1, 1), (10, 10))
    assert intersection_line(a, b) is None
    assert intersection_line(a, b, tolerance_deg=0.1) is not None
    assert distance_map_mm(a, b) is None and distance_map_px(a, b) is None
    assert intersection_line_world(a, b) is None


def test_distance_maps_against_world_distances(rng):
    a = random_plane(rng, shape=(30, 40), spacing=(0.7, 1.9))
    b = random_plane(rng)
    p0, p1 = _line_points_world(a, b)
    ii, jj = np.meshgrid(np.arange(30), np.arange(40), indexing="ij")
    expected = _distance_to_world_line(a.pixel_to_world(ii, jj), p0, p1)
    np.testing.assert_allclose(distance_map_mm(a, b), expected, atol=1e-6)
    line = intersection_line(a, b)
    np.testing.assert_allclose(distance_map_px(a, b), np.abs(line.a * ii + line.b * jj + line.c))


# ----------------------------------------------------------------- transforms commute
SIGMA_MM = 6.0


def _resample_image(image: np.ndarray, src: Plane, dst: Plane) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``image`` (on ``src``) onto ``dst``'s grid (cubic spline); also return a mask
    of dst pixels that map at least 4 pixels inside src (away from borders)."""
    ii, jj = np.meshgrid(np.arange(dst.shape[0]), np.arange(dst.shape[1]), indexing="ij")
    si, sj, off = src.world_to_pixel(dst.pixel_to_world(ii, jj))
    assert np.all(np.abs(off) < 1e-6)  # same plane in space
    out = map_coordinates(image.astype(np.float64), [si, sj], order=3, mode="nearest")
    inside = (si > 4) & (si < src.shape[0] - 5) & (sj > 4) & (sj < src.shape[1] - 5)
    return out, inside


def _source_and_cutter():
    a = Plane([10.0, -20.0, 5.0], [0.8, 0.6, 0.0], [0.0, 0.0, -1.0], (1.1, 0.9), (96, 112), 8.0)
    # an oblique cutting plane through pixel (48, 50) of a, 55 deg from it
    n = 0.7 * a.normal + 0.6 * a.row_dir + 0.4 * a.col_dir
    n /= np.linalg.norm(n)
    row = np.cross(n, a.normal)
    row /= np.linalg.norm(row)
    cutter = Plane(a.pixel_to_world(48, 50), row, np.cross(n, row), (1.5, 1.5), (64, 64), 6.0)
    return a, cutter


@pytest.mark.parametrize("make", [
    lambda p: p.rotate(23.0),
    lambda p: p.rotate(-71.0, centre=(40.0, 60.0)),
    lambda p: p.zoom(1.45),
    lambda p: p.zoom(0.8, centre=(30.0, 70.0)),
    lambda p: p.resample((1.37, 1.37)),
    lambda p: p.resample((0.7, 1.6), shape=(100, 60)),
    lambda p: p.flip_rows().rotate(10.0).zoom(1.2),
])
def test_resampled_targets_equal_targets_of_resampled_plane(make):
    src, cutter = _source_and_cutter()
    dst = make(src)
    heat_src = line_heatmap(src, cutter, sigma_mm=SIGMA_MM)
    moved, inside = _resample_image(heat_src, src, dst)
    direct = line_heatmap(dst, cutter, sigma_mm=SIGMA_MM)
    assert inside.sum() > 0.3 * inside.size
    assert direct[inside].max() > 0.99  # the line runs through the compared region
    # cubic-spline interpolation error only (~3e-5); a one-pixel offset would give ~0.1
    assert np.abs(moved - direct)[inside].max() < 2e-4


def test_commutation_check_fails_for_a_wrong_plane():
    """The check above can fail: the heatmap of a plane rotated the wrong way differs."""
    src, cutter = _source_and_cutter()
    moved, inside = _resample_image(line_heatmap(src, cutter, sigma_mm=SIGMA_MM), src,
                                    src.rotate(23.0))
    wrong = line_heatmap(src.rotate(-23.0), cutter, sigma_mm=SIGMA_MM)
    assert np.abs(moved - wrong)[inside].max() > 0.3


def test_crop_pad_flip_transpose_are_exact_array_operations():
    src, cutter = _source_and_cutter()
    h = line_heatmap(src, cutter, sigma_mm=SIGMA_MM)
    same = lambda plane: line_heatmap(plane, cutter, sigma_mm=SIGMA_MM)  # noqa: E731
    np.testing.assert_allclose(same(src.crop(10, 7, 50, 60)), h[10:60, 7:67], atol=2e-6)
    np.testing.assert_allclose(same(src.flip_rows()), h[::-1], atol=2e-6)
    np.testing.assert_allclose(same(src.flip_cols()), h[:, ::-1], atol=2e-6)
    np.testing.assert_allclose(same(src.transpose()), h.T, atol=2e-6)
    np.testing.assert_allclose(same(src.centre_crop(64, 80)), h[16:80, 16:96], atol=2e-6)
    padded = same(src.centre_crop(100, 120))  # pads 2 rows, 4 columns each side
    np.testing.assert_allclose(padded[2:98, 4:116], h, atol=2e-6)


def test_rotate_by_90_is_a_pixel_permutation():
    p = Plane([0, 0, 0], [1, 0, 0], [0, 1, 0], (1.0, 1.0), (9, 9))
    r = p.rotate(90.0)
    ii, jj = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    si, sj, _ = p.world_to_pixel(r.pixel_to_world(ii, jj))
    # every new pixel lands on an old pixel centre
    np.testing.assert_allclose(si, np.round(si), atol=1e-9)
    np.testing.assert_allclose(sj, np.round(sj), atol=1e-9)
    assert {(int(a), int(b)) for a, b in zip(si.ravel().round(), sj.ravel().round())} == \
        {(a, b) for a in range(9) for b in range(9)}


def test_resample_keeps_the_outer_corner_and_extent():
    p = Plane([5, 6, 7], [0, 1, 0], [0, 0, 1], (2.0, 1.0), (50, 60))
    q = p.resample((1.0, 1.5))
    assert q.shape == (100, 40)
    np.testing.assert_allclose(q.pixel_to_world(-0.5, -0.5), p.pixel_to_world(-0.5, -0.5))
    np.testing.assert_allclose(q.pixel_to_world(99.5, 39.5), p.pixel_to_world(49.5, 59.5))


def test_planes_from_affine_ras_to_lps_and_voxel_indexing():
    affine = np.array([[0.0, 2.0, 0.0, 10.0],
                       [-1.5, 0.0, 0.0, 20.0],
                       [0.0, 0.0, 8.0, -30.0],
                       [0, 0, 0, 1]])
    planes = planes_from_affine(affine, (4, 5, 3))
    assert len(planes) == 3 and planes[0].shape == (4, 5)
    for k, p in enumerate(planes):
        for i, j in ((0, 0), (3, 1), (2, 4)):
            ras = affine @ [i, j, k, 1]
            np.testing.assert_allclose(p.pixel_to_world(i, j), [-ras[0], -ras[1], ras[2]])
    assert planes[0].spacing == (1.5, 2.0) and planes[0].thickness == 8.0
    sheared = affine.copy()
    sheared[0, 0] = 1.0
    with pytest.raises(GeometryError, match="sheared"):
        planes_from_affine(sheared, (4, 5, 3))


def test_affine_from_planes_inverts_planes_from_affine():
    """Stack affine (RAS and LPS) round-trips through the per-slice planes; the RAS one
    maps voxel (i, j, k) to the world point of pixel (i, j) of slice k, flipped to RAS."""
    from planessl.geometry import affine_from_planes, planes_from_affine

    rng = np.random.default_rng(7)
    for ras in (True, False):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        affine = np.eye(4)
        affine[:3, :3] = q * np.array([1.3, 0.9, 7.5])
        affine[:3, 3] = rng.normal(size=3) * 50
        planes = planes_from_affine(affine, (20, 30, 6), ras=ras)
        np.testing.assert_allclose(affine_from_planes(planes, ras=ras), affine, atol=1e-9)
        lps = planes[4].pixel_to_world(3.0, 11.0)
        world = affine @ np.array([3.0, 11.0, 4.0, 1.0])
        expected = world[:3] * ([-1, -1, 1] if ras else 1)
        np.testing.assert_allclose(lps, expected, atol=1e-9)
    one = planes_from_affine(affine, (20, 30, 1), ras=False)
    np.testing.assert_allclose(affine_from_planes(one, ras=False)[:3, 2],
                               one[0].normal * one[0].thickness, atol=1e-9)
