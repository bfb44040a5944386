"""Pretraining samples: geometry-exact augmentation, normalisation, targets, sampling."""

import numpy as np
import pytest

from planessl.cache import write_cache
from planessl.data import (EpochSampler, PlaneAugment, PretrainDataset, SampleSpec, input_plane,
                           make_sample, normalise_intensity, resample_to_plane)
from planessl.data.module import check_views, split_ids
from planessl.errors import PlaneSSLError
from planessl.targets import line_heatmap

from synthetic_studies import make_synthetic_study

SPEC = SampleSpec(image_size=32, spacing_mm=2.0, sigma_mm=5.0)


def test_resampled_image_follows_the_plane_through_augmentation():
    """Paint the 2CH line into a SAX image, augment: the painted line lands where the
    target heatmap (recomputed from the transformed plane) says."""
    study = make_synthetic_study(3, shape=(64, 72))
    sax, ch2 = study.series[0], study.series[1]
    source = sax.planes[2]
    painted = line_heatmap(source, ch2.planes[0], sigma_mm=6.0)
    aug = PlaneAugment(rotation_deg=40, zoom=(0.8, 1.3), shift_mm=8, flip=True)
    rng = np.random.default_rng(0)
    for _ in range(5):
        target = aug(input_plane(source, 1.5, 40), rng)
        moved = resample_to_plane(painted, source, target)
        expected = line_heatmap(target, ch2.planes[0], sigma_mm=6.0)
        inside = moved > 0  # the padded border is 0 in both images only near the line
        assert np.abs(moved - expected)[inside].max() < 0.08
        assert np.corrcoef(moved.ravel(), expected.ravel())[0, 1] > 0.97


def test_normalisation_clips_and_zscores_without_wrapping():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 4000, size=(50, 50)).astype(np.float32)
    image[0, 0] = 1e6  # outlier: clipped, not allowed to dominate
    out = normalise_intensity(image, (1, 99))
    assert out.dtype == np.float32
    assert abs(out.mean()) < 1e-4 and abs(out.std() - 1) < 1e-3
    # Order of intensities above 255 is kept (a uint8 cast would wrap 300 below 200).
    a, b = np.unravel_index(np.argsort(image, axis=None)[[1000, 2000]], image.shape)
    assert out[a[0], b[0]] < out[a[1], b[1]]


def test_sample_targets_masks_and_slice_location():
    study = make_synthetic_study(4, views=("sax", "4ch"))
    rng = np.random.default_rng(0)
    s = make_sample(study, 0, 1, 0, SPEC, None, rng)
    assert s["image"].shape == (1, 32, 32) and s["lines"].shape == (2, 32, 32)
    assert s["line_mask"].tolist() == [0.0, 1.0]          # no 2CH in this study
    assert float(s["lines"][0].abs().max()) == 0.0
    assert float(s["lines"][1].max()) > 0.9 and np.all(np.isfinite(s["line_abc"][1].numpy()))
    # Slice location: base (0) to apex (1) whatever the stored order.
    stack = study.series[0]
    locs = [float(make_sample(study, 0, k, 0, SPEC, None, rng)["slice"][0])
            for k in range(stack.n_slices)]
    apex_ward = [float(p.origin @ np.array([1, -1, -1])) for p in stack.planes]
    assert np.argmin(locs) == np.argmin(apex_ward) and np.argmax(locs) == np.argmax(apex_ward)
    assert sorted(locs) == pytest.approx(np.linspace(0, 1, stack.n_slices))


def test_nominal_geometry_has_no_lines_but_ordered_slices():
    study = make_synthetic_study(5, spacing_known=False)
    rng = np.random.default_rng(0)
    s = make_sample(study, 0, 4, 1, SPEC, None, rng)
    assert s["line_mask"].sum() == 0
    assert float(s["slice"][0]) == pytest.approx(1.0) and float(s["slice_mask"][0]) == 1.0


def test_dataset_is_lazy_reproducible_and_epoch_dependent(tmp_path):
    cache = write_cache(tmp_path / "c", [make_synthetic_study(k) for k in range(4)])
    ds = PretrainDataset(cache, cache.ids, SPEC, PlaneAugment(), seed=3)
    a, b, c = ds[(0, 1)], ds[(0, 1)], ds[(1, 1)]
    state = ds.__getstate__()  # what a worker process receives: no open cache, no study
    assert state["_caches"] is None and len(state["_studies"]) == 0 and len(ds._studies) > 0
    assert np.array_equal(a["image"].numpy(), b["image"].numpy())
    assert not np.array_equal(a["image"].numpy(), c["image"].numpy())
    every = PretrainDataset(cache, cache.ids, SPEC, None, sampling="all")
    assert len(every) == 4 * 5 * 2  # studies x SAX slices x frames


def test_epoch_sampler_shards_ranks_and_follows_epochs():
    ranks = [list(EpochSampler(7, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 4
    assert {i for _, i in ranks[0] + ranks[1]} == set(range(7))
    s = EpochSampler(7, seed=1)
    first = [i for _, i in s]
    s.set_epoch(1)
    assert [i for _, i in s] != first and all(e == 1 for e, _ in s)


def test_view_checks_and_split(tmp_path):
    cache = write_cache(tmp_path / "c", [make_synthetic_study(k, views=("sax",)) for k in range(3)])
    with pytest.raises(PlaneSSLError, match="2ch, 4ch"):
        check_views(cache, ["sax"], ["2ch", "4ch"], False)
    assert len(check_views(cache, ["sax"], [], True)) == 3
    with pytest.raises(PlaneSSLError, match="input view"):
        check_views(cache, ["4ch"], ["2ch"], False)
    train, val = split_ids([f"s{k}" for k in range(10)], 0.2, 0)
    assert len(val) == 2 and not set(train) & set(val) and len(train) == 8
