"""Plane fitting for view planning: lifting 2D lines into 3D and fitting a plane to them."""

import math

import numpy as np
import pytest

from planessl.geometry import (Plane, intersection_line, intersection_line_world,
                               plane_angle_deg)
from planessl.planning.fit import (Line3D, fit_plane, fit_plane_robust, lift_line,
                                   line_in_pixels, plane_errors)

from conftest import random_rotation

HEART = np.array([20.0, -30.0, 40.0])


def plane_at(centre, row, col, spacing=(1.5, 1.5), shape=(192, 192), thickness=8.0) -> Plane:
    """A plane whose field-of-view centre is ``centre``."""
    row = np.asarray(row, float) / np.linalg.norm(row)
    col = np.asarray(col, float) - (np.asarray(col, float) @ row) * row
    col /= np.linalg.norm(col)
    origin = (np.asarray(centre, float) - (shape[0] - 1) / 2 * spacing[0] * col
              - (shape[1] - 1) / 2 * spacing[1] * row)
    return Plane(origin, row, col, spacing, shape, thickness)


def localizers(rng) -> list[Plane]:
    """Three roughly orthogonal localizers (tri-plane, turned a little) around the heart."""
    q = random_rotation(rng)
    turn = np.eye(3) * 0.9 + 0.1 * q  # a mild random turn of the world axes
    u, _, vt = np.linalg.svd(turn)
    turn = u @ vt
    x, y, z = turn[:, 0], turn[:, 1], turn[:, 2]
    off = lambda: HEART + rng.normal(0, 10, 3)  # noqa: E731
    return [plane_at(off(), x, y, (1.4, 1.4), (256, 256)),   # axial-ish
            plane_at(off(), x, -z, (1.6, 1.6), (224, 224)),  # coronal-ish
            plane_at(off(), y, -z, (1.5, 1.7), (200, 240))]  # sagittal-ish


def oblique_target(rng) -> Plane:
    q = random_rotation(rng)
    return plane_at(HEART + rng.normal(0, 8, 3), q[:, 0], q[:, 1], (1.8, 1.8), (208, 208))


def exact_lines(inputs, target):
    out = []
    for k, p in enumerate(inputs):
        line = intersection_line(p, target)
        out.append(None if line is None else lift_line(p, line, source=f"loc{k}"))
    return out


def test_lifted_line_lies_in_both_planes(rng):
    for _ in range(20):
        a, b = localizers(rng)[0], oblique_target(rng)
        line = intersection_line(a, b)
        lifted = lift_line(a, line)
        assert lifted is not None
        for p in (lifted.point, *lifted.segment, lifted.point + 57.0 * lifted.direction):
            assert abs(a.normal @ (p - a.origin)) < 1e-9
            assert abs(b.normal @ (p - b.origin)) < 1e-9
        point, direction = intersection_line_world(a, b)
        assert np.linalg.norm(np.cross(direction, lifted.direction)) < 1e-9
        # Both helpers pick the point of the line closest to A's field-of-view centre.
        assert np.allclose(point, lifted.point, atol=1e-8)
        # The segment ends on the border of A's field of view.
        for e in lifted.segment:
            i, j, _ = a.world_to_pixel(e)
            on_edge = min(abs(i + 0.5), abs(i - a.shape[0] + 0.5),
                          abs(j + 0.5), abs(j - a.shape[1] + 0.5))
            assert on_edge < 1e-8
        # Back to pixels: the same line (up to sign).
        abc = np.array(line_in_pixels(lifted, a))
        ref = np.array([line.a, line.b, line.c])
        assert min(np.abs(abc - ref).max(), np.abs(abc + ref).max()) < 1e-8


def test_lift_ignores_scale_and_rejects_lines_outside():
    a = plane_at(HEART, [1, 0, 0], [0, 1, 0])
    one = lift_line(a, (0.6, 0.8, -100.0))
    two = lift_line(a, (3.0, 4.0, -500.0))
    assert np.allclose(one.segment, two.segment)
    assert lift_line(a, (1.0, 0.0, 5000.0)) is None  # i = -5000: outside the image
    assert lift_line(a, (0.0, 0.0, 1.0)) is None
    assert lift_line(a, (np.nan, 1.0, 1.0)) is None


def test_exact_lines_recover_the_plane_exactly(rng):
    for _ in range(25):
        locs, target = localizers(rng), oblique_target(rng)
        lines = exact_lines(locs, target)
        assert sum(ln is not None for ln in lines) >= 2
        fit = fit_plane(lines, reference=locs[0])
        assert fit.ok, fit.reason
        angle, dist = plane_errors(fit, target)
        assert angle < 1e-6 and dist < 1e-6
        assert fit.residual_rms_mm < 1e-6
        # Independent check: every input line's points lie in the proposed plane.
        for ln in lines:
            if ln is not None:
                assert ln.distance_to(fit.plane.origin, fit.plane.normal) < 1e-6


def test_parallel_slices_of_a_stack_determine_the_plane(rng):
    """The lines of a long-axis plane on the slices of a SAX stack are parallel but
    distinct: they determine the plane."""
    for _ in range(10):
        q = random_rotation(rng)
        stack = [plane_at(HEART + k * 10.0 * q[:, 2], q[:, 0], q[:, 1],
                          (2.0, 2.0), (128, 128)) for k in range(-4, 5)]
        target = plane_at(HEART + rng.normal(0, 5, 3), q[:, 2] + 0.3 * q[:, 0], q[:, 1],
                          (1.8, 1.8))
        lines = exact_lines(stack, target)
        fit = fit_plane(lines, reference=stack[0])
        assert fit.ok, fit.reason
        assert fit.max_line_angle_deg < 1e-6  # parallel lines
        angle, dist = plane_errors(fit, target)
        assert angle < 1e-6 and dist < 1e-6


def _noisy(plane: Plane, line, sigma_px: float, rng) -> tuple[float, float, float]:
    """The line through its two field-of-view end points, each moved across the line by
    N(0, sigma) pixels: both an offset and a tilt."""
    from planessl.geometry import line_endpoints

    (i0, j0), (i1, j1) = line_endpoints(line, plane.shape)
    e0, e1 = rng.normal(0, sigma_px, 2)
    i0, j0 = i0 + e0 * line.a, j0 + e0 * line.b
    i1, j1 = i1 + e1 * line.a, j1 + e1 * line.b
    ti, tj = i1 - i0, j1 - j0
    n = math.hypot(ti, tj)
    a, b = -tj / n, ti / n
    return a, b, -(a * i0 + b * j0)


def test_noisy_lines_degrade_gracefully():
    rng = np.random.default_rng(7)
    cases = [(localizers(rng), oblique_target(rng)) for _ in range(40)]
    medians = []
    for sigma in (0.0, 0.25, 0.5, 1.0, 2.0):
        angles, dists = [], []
        noise = np.random.default_rng(int(sigma * 100))
        for locs, target in cases:
            lines = []
            for k, p in enumerate(locs):
                line = intersection_line(p, target)
                if line is None or lift_line(p, line) is None:  # parallel, or outside
                    continue
                lines.append(lift_line(p, _noisy(p, line, sigma, noise), source=f"loc{k}"))
            fit = fit_plane(lines, reference=locs[0])
            assert fit.ok, fit.reason
            a, d = plane_errors(fit, target)
            angles.append(a)
            dists.append(d)
        medians.append((float(np.median(angles)), float(np.median(dists)),
                        float(np.max(angles)), float(np.max(dists))))
    ma = [m[0] for m in medians]
    md = [m[1] for m in medians]
    assert ma[0] < 1e-6 and md[0] < 1e-6
    # Grows with the noise, roughly in proportion (smoothly: no jump).
    assert all(x < y for x, y in zip(ma, ma[1:])), ma
    assert all(x < y for x, y in zip(md, md[1:])), md
    for k in range(1, 4):
        assert 1.2 < ma[k + 1] / ma[k] < 3.5, ma
    # 1 px noise on ~1.5 mm pixels: well under a few degrees / millimetres.
    a1, d1, amax1, dmax1 = medians[3]
    assert a1 < 1.5 and d1 < 1.5, medians[3]
    assert amax1 < 4.0 and dmax1 < 4.0, medians[3]


def test_too_few_lines_are_reported_not_guessed(rng):
    locs, target = localizers(rng), oblique_target(rng)
    lines = exact_lines(locs, target)
    none = fit_plane([])
    assert not none.ok and "at least 2 lines, got 0" in none.reason
    one = fit_plane([lines[0], None])
    assert not one.ok and "at least 2 lines, got 1" in one.reason
    assert one.plane is None and one.image_position is None
    assert one.to_dict()["ImageOrientationPatient"] is None


def test_nearly_parallel_lines_are_reported_with_their_angle():
    # Two lines through one point 0.5 degrees apart: the plane could turn about them.
    p = plane_at(HEART, [1, 0, 0], [0, 1, 0])
    q = plane_at(HEART, [1, 0, 0], [0, 0, 1])
    d = np.array([1.0, 0.0, 0.0])
    t = math.radians(0.5)
    d2 = np.array([math.cos(t), math.sin(t), 0.0])
    seg = lambda v: (HEART - 120 * v, HEART + 120 * v)  # noqa: E731
    lines = [Line3D(HEART, d, seg(d), "a"), Line3D(HEART, d2, seg(d2), "b")]
    fit = fit_plane(lines)
    assert not fit.ok
    assert "nearly parallel" in fit.reason and "0.50 deg" in fit.reason
    assert fit.max_line_angle_deg == pytest.approx(0.5, abs=1e-9)
    # The same line seen on two images that share it: parallel and coincident.
    line_p = lift_line(p, intersection_line(p, q))
    fit2 = fit_plane([line_p, line_p])
    assert not fit2.ok and "0.00 deg" in fit2.reason
    # Two distinct parallel lines far enough apart are fine; too close are not.
    far = [Line3D(HEART, d, seg(d)), Line3D(HEART + [0, 0, 40], d, seg(d) + np.array([0, 0, 40.0]))]
    assert fit_plane(far).ok
    near = [Line3D(HEART, d, seg(d)), Line3D(HEART + [0, 0, 4], d, seg(d) + np.array([0, 0, 4.0]))]
    bad = fit_plane(near)
    assert not bad.ok and "2.0 mm" in bad.reason


def test_dicom_output_and_orientation_follow_the_reference(rng):
    locs, target = localizers(rng), oblique_target(rng)
    ref = locs[0]
    fit = fit_plane(exact_lines(locs, target), reference=ref)
    ipp, iop = np.array(fit.image_position), np.array(fit.image_orientation)
    row, col = iop[:3], iop[3:]
    assert abs(row @ col) < 1e-12 and abs(np.linalg.norm(row) - 1) < 1e-12
    assert np.allclose(np.cross(row, col), fit.normal)
    # Row: the reference row projected into the plane; column on the reference's side.
    proj = ref.row_dir - (ref.row_dir @ fit.normal) * fit.normal
    assert np.allclose(row, proj / np.linalg.norm(proj))
    assert col @ ref.col_dir > 0
    # IPP is the first pixel's centre of a reference-sized image centred on the lines.
    rows, cols = ref.shape
    di, dj = ref.spacing
    centre = ipp + (rows - 1) / 2 * di * col + (cols - 1) / 2 * dj * row
    assert np.allclose(centre, fit.centre)
    d = fit.to_dict()
    assert d["Rows"] == rows and d["PixelSpacing"] == list(ref.spacing)
    # Without a reference: a valid right-handed frame too.
    bare = fit_plane(exact_lines(locs, target))
    assert bare.ok and bare.plane.shape == (256, 256)
    assert plane_angle_deg(bare.plane, target) < 1e-6


def test_plane_errors_metric():
    target = plane_at(HEART, [1, 0, 0], [0, 1, 0])
    t = math.radians(3.0)
    tilted = plane_at(HEART, [math.cos(t), 0, math.sin(t)], [0, 1, 0])
    angle, dist = plane_errors(tilted, target)
    assert angle == pytest.approx(3.0, abs=1e-9) and dist < 1e-9
    shifted = plane_at(HEART + [0, 0, -5.0], [0, 1, 0], [1, 0, 0])  # flipped normal too
    angle, dist = plane_errors(shifted, target)
    assert angle < 1e-9 and dist == pytest.approx(5.0)


def test_lines_that_do_not_lie_in_one_plane_can_be_refused():
    d, e = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    seg = lambda p, v: (p - 100 * v, p + 100 * v)  # noqa: E731
    up = HEART + [0, 0, 30]
    skew = [Line3D(HEART, d, seg(HEART, d)), Line3D(up, e, seg(up, e))]
    loose = fit_plane(skew)
    assert loose.ok and loose.residual_rms_mm == pytest.approx(15.0, rel=1e-6)
    strict = fit_plane(skew, max_residual_rms_mm=10.0)
    assert not strict.ok and "do not lie in one plane: 15.0 mm" in strict.reason
    assert strict.plane is not None and strict.image_position is None


def test_a_grossly_wrong_line_is_dropped_and_the_plane_recovered_exactly(rng):
    """Exact lines of a known plane on four images, plus one line 25 deg off and 20 mm away:
    the least-squares plane of all five is spoiled; the robust fit drops exactly the wrong
    line (and says so) and gives the plane back to rounding error."""
    for _ in range(5):
        target = oblique_target(rng)
        inputs = localizers(rng) + [oblique_target(rng)]
        lines = exact_lines(inputs, target)
        assert all(ln is not None for ln in lines)
        good = lines[0]
        # The wrong line: on the same image, turned 25 deg about a point 20 mm off the true one.
        img = inputs[0]
        turn = np.radians(25.0)
        d = (np.cos(turn) * good.direction
             + np.sin(turn) * np.cross(img.normal, good.direction))
        p = good.point + 20.0 * np.cross(img.normal, good.direction)
        wrong = Line3D(p, d, (p - 120 * d, p + 120 * d), source="wrong")
        both = lines + [wrong]
        plain = fit_plane(both, reference=target)
        assert plain.ok and plane_errors(plain, target)[0] > 1.0  # spoiled
        fit = fit_plane_robust(both, reference=target, outlier_rms_mm=1.0)
        assert fit.ok, fit.reason
        assert fit.dropped == ["wrong"] and fit.n_lines == len(lines)
        assert fit.dropped_residual_mm[0] > 5.0
        angle, dist = plane_errors(fit, target)
        assert angle < 1e-6 and dist < 1e-6
        assert fit.residual_rms_mm < 1e-6
        assert fit.to_dict()["dropped"] == [{"image": "wrong",
                                             "residual_rms_mm": fit.dropped_residual_mm[0]}]
        # Without outlier rejection, nothing is dropped.
        off = fit_plane_robust(both, reference=target, outlier_rms_mm=None)
        assert off.dropped == [] and off.residual_rms_mm == pytest.approx(plain.residual_rms_mm)


def test_robust_fit_keeps_the_refusal_rules():
    """Dropping never goes below two lines nor leaves lines that do not determine a plane;
    too few or (nearly) parallel lines are still refused, skew lines still fail the residual
    limit."""
    d, e = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    seg = lambda p, v: (p - 100 * v, p + 100 * v)  # noqa: E731
    up = HEART + [0, 0, 30]
    skew = [Line3D(HEART, d, seg(HEART, d), "a"), Line3D(up, e, seg(up, e), "b")]
    fit = fit_plane_robust(skew, max_residual_rms_mm=10.0, outlier_rms_mm=1.0)
    assert not fit.ok and fit.dropped == [] and "do not lie in one plane" in fit.reason
    one = fit_plane_robust(skew[:1], outlier_rms_mm=1.0)
    assert not one.ok and "needs at least 2 lines" in one.reason
    # Two lines on one line in space and a third far from their plane: dropping the third
    # would leave a plane that is not determined, so it stays and the fit is refused.
    near = HEART + [0, 0.5, 0]
    coaxial = [Line3D(HEART, d, seg(HEART, d), "a"), Line3D(near, d, seg(near, d), "b"),
               Line3D(up, e, seg(up, e), "c")]
    fit = fit_plane_robust(coaxial, max_residual_rms_mm=5.0, outlier_rms_mm=1.0)
    assert not fit.ok and "c" not in fit.dropped and len(fit.dropped) <= 1
    # Most lines disagree: at most half of them are dropped, then the residual decides.
    rng = np.random.default_rng(4)
    scattered = []
    for k in range(6):
        p = HEART + rng.normal(0, 30, 3)
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        scattered.append(Line3D(p, v, seg(p, v), f"s{k}"))
    fit = fit_plane_robust(scattered, max_residual_rms_mm=5.0, outlier_rms_mm=1.0)
    assert len(fit.dropped) == 3 and not fit.ok
    loose = fit_plane_robust(scattered, outlier_rms_mm=1.0, max_dropped_fraction=1.0)
    assert len(loose.dropped) == 4  # without the limit: down to two lines
