"""Knee views: pretext targets of sagittal / coronal / axial stacks from DICOM geometry.

The line channels are checked against an independent computation (signed distance of
every pixel centre to the other plane, divided by the sine of the angle between the
planes), the slice locations against the anatomical ends (LPS: +x left, +y posterior,
+z superior).
"""

import numpy as np
import pytest

from planessl.data import SampleSpec, input_plane, make_sample
from planessl.geometry import Plane
from planessl.study import Series, Study, normalise_laterality, slice_direction

from conftest import random_rotation

VIEWS = ("sagittal", "coronal", "axial")
SPEC = SampleSpec(input_views=VIEWS, line_channels=VIEWS, slice_location=True, image_size=32,
                  spacing_mm=3.0, sigma_mm=4.0, stack_line="mid")


def _stack(normal_axis: int, rot: np.ndarray, n: int, gap: float, centre: np.ndarray,
           reverse: bool, shape=(40, 44), spacing=(2.5, 2.2)) -> list[Plane]:
    """``n`` parallel planes whose normal is patient axis ``normal_axis`` turned by ``rot``."""
    axes = np.eye(3)
    others = [k for k in range(3) if k != normal_axis]
    row, col = rot @ axes[others[0]], rot @ axes[others[1]]
    if normal_axis == 1:  # keep a right-handed frame with the normal along the axis sign
        row, col = col, row
    normal = np.cross(row, col)
    ks = range(n - 1, -1, -1) if reverse else range(n)
    out = []
    for k in ks:
        c = centre + (k - (n - 1) / 2) * gap * normal
        origin = c - (shape[0] - 1) / 2 * spacing[0] * col - (shape[1] - 1) / 2 * spacing[1] * row
        out.append(Plane(origin, row, col, spacing, shape, 3.0))
    return out


def knee_study(seed: int, laterality: str | None = "right", tilt_deg: float = 10.0) -> Study:
    rng = np.random.default_rng(seed)
    rot = random_rotation(rng)
    # a small rotation: the planes stay within tilt_deg of the patient axes
    axis_angle = rng.normal(size=3)
    axis_angle *= np.deg2rad(tilt_deg) / np.linalg.norm(axis_angle)
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_rotvec(axis_angle).as_matrix()
    centre = rng.normal(size=3) * 20
    series = []
    for axis, view in enumerate(VIEWS):
        planes = _stack(axis, rot, 7, 3.5, centre + rng.normal(size=3) * 3, bool(rng.integers(2)))
        pixels = rng.random((len(planes), 1) + planes[0].shape).astype(np.float32)
        series.append(Series(name=view, view=view, planes=planes, pixels=pixels))
    return Study(id=f"knee{seed}", series=series, group="knee", laterality=laterality)


def _independent_heat(grid: Plane, other: Plane, sigma_mm: float) -> np.ndarray:
    i, j = np.meshgrid(np.arange(grid.shape[0]), np.arange(grid.shape[1]), indexing="ij")
    pts = grid.pixel_to_world(i, j)
    signed = (pts - other.origin) @ other.normal         # distance in 3D from the other plane
    sin = np.linalg.norm(np.cross(grid.normal, other.normal))
    return np.exp(-(signed / sin) ** 2 / (2 * sigma_mm ** 2))   # in-plane distance to the line


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knee_line_channels_match_independent_intersection(seed):
    study = knee_study(seed)
    rng = np.random.default_rng(0)
    for s_idx, series in enumerate(study.series):
        k = 2
        sample = make_sample(study, s_idx, k, 0, SPEC, None, rng)
        grid = input_plane(series.planes[k], SPEC.spacing_mm, SPEC.image_size)
        for c, view in enumerate(VIEWS):
            if view == series.view:  # its own plane: no line, masked
                assert sample["line_mask"][c] == 0 and float(sample["lines"][c].max()) == 0
                continue
            assert sample["line_mask"][c] == 1
            other_series = study.views(view)[0]
            other = other_series.planes[np.argsort(  # middle slice along the normal
                [p.origin @ other_series.planes[0].normal for p in other_series.planes])[3]]
            expected = _independent_heat(grid, other, SPEC.sigma_mm)
            got = sample["lines"][c].numpy()
            assert np.abs(got - expected).max() < 1e-4
            a, b, cc = sample["line_abc"][c].numpy()
            # the line a*i + b*j + c = 0 runs through the pixels on the other plane
            i, j = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
            on = expected > 0.999
            if on.any():
                assert np.abs(a * i[on] + b * j[on] + cc).max() / np.hypot(a, b) < 0.1


def test_knee_multi_line_channels_hold_every_slice():
    study = knee_study(3)
    spec = SampleSpec(input_views=VIEWS, line_channels=VIEWS, image_size=32, spacing_mm=3.0,
                      sigma_mm=1.0, stack_line="all")
    s = make_sample(study, 0, 2, 0, spec, None, np.random.default_rng(0))  # sagittal input
    grid = input_plane(study.series[0].planes[2], 3.0, 32)
    for c in (1, 2):
        expected = np.max([_independent_heat(grid, p, 1.0) for p in study.series[c].planes], 0)
        assert np.abs(s["lines"][c].numpy() - expected).max() < 1e-4
        assert np.isnan(s["line_abc"][c].numpy()).all()  # several lines: no single (a, b, c)


@pytest.mark.parametrize("laterality", ["right", "left", None])
def test_knee_slice_location_runs_between_anatomical_ends(laterality):
    study = knee_study(4, laterality)
    rng = np.random.default_rng(0)
    lateral_x = 1.0 if laterality == "left" else -1.0   # None: the default, a right knee
    toward = {"sagittal": np.array([lateral_x, 0, 0]),   # medial -> lateral
              "coronal": np.array([0, -1.0, 0]),         # posterior -> anterior
              "axial": np.array([0, 0, 1.0])}            # inferior -> superior
    for s_idx, series in enumerate(study.series):
        locs = np.array([float(make_sample(study, s_idx, k, 0, SPEC, None, rng)["slice"][0])
                         for k in range(series.n_slices)])
        pos = np.array([p.origin @ toward[series.view] for p in series.planes])
        assert locs[np.argmin(pos)] == pytest.approx(0.0) and locs[np.argmax(pos)] == pytest.approx(1.0)
        assert np.all(np.diff(locs[np.argsort(pos)]) > 0)
        np.testing.assert_allclose(slice_direction(series.view, laterality), toward[series.view])


def test_laterality_from_header_text():
    assert normalise_laterality("L") == "left" and normalise_laterality("R") == "right"
    assert normalise_laterality("RIGHT KNEE") == "right" and normalise_laterality("knee_lt") == "left"
    assert normalise_laterality("B") is None and normalise_laterality("KNEE") is None
    assert normalise_laterality("left and right") is None


def test_line_task_refused_without_geometry(tmp_path):
    """MRNet-like studies (nominal planes) give slice locations, never lines."""
    from planessl.cache import Cache, write_cache
    from planessl.data.module import check_caches
    from planessl.errors import PlaneSSLError

    study = knee_study(5)
    for s in study.series:
        s.spacing_known = False
    write_cache(tmp_path / "c", [study])
    cache = Cache(tmp_path / "c")
    with pytest.raises(PlaneSSLError, match="line task is not available"):
        check_caches([cache], VIEWS, VIEWS, False)
    assert check_caches([cache], VIEWS, (), True) == [[study.id]]
    s = make_sample(study, 0, 0, 0, SPEC, None, np.random.default_rng(0))
    assert float(s["line_mask"].sum()) == 0 and float(s["slice_mask"][0]) == 1.0


def test_laterality_survives_the_cache(tmp_path):
    from planessl.cache import Cache, write_cache

    write_cache(tmp_path / "c", [knee_study(6, "left"), knee_study(7, None)])
    cache = Cache(tmp_path / "c")
    assert cache.load("knee6").laterality == "left" and cache.load("knee7").laterality is None
