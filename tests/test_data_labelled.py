"""Labelled datasets: the in-memory segmentation set matches predict's input grid, its
augmentation keeps labels on their structures, and study handles stay bounded."""

import pickle

import numpy as np
import pytest
import torch

from planessl.cache import Cache
from planessl.data.augment import FinetuneAugmentConfig, build_segmentation_augment
from planessl.data.labelled import (ClassificationDataset, GridSpec, InMemorySegmentationDataset,
                                    image_on_grid, labels_on_grid, labelled_volumes, margin_size)

SPEC = GridSpec(image_size=32, spacing_mm=6.0)


def _plain(size=32, spacing=6.0):
    return build_segmentation_augment(FinetuneAugmentConfig(enabled=False), size, spacing)


@pytest.mark.parametrize("margin", [1.0, 1.5, 1.33])
def test_unaugmented_items_are_predicts_input_grid(phantom_cache, margin):
    """With augmentation off, an item is exactly what predict feeds the network, whatever
    the in-memory margin (no half-pixel shift from the margin crop)."""
    cache = Cache(phantom_cache)
    sid = cache.ids[0]
    ds = InMemorySegmentationDataset(cache, [sid], SPEC, _plain(), margin=margin)
    study = cache.load(sid)
    s_idx, frame = labelled_volumes(study, ("sax",))[0]
    series = study.series[s_idx]
    for k in (0, series.n_slices // 2):
        image, grid = image_on_grid(series.pixels[k, frame], series.planes[k], SPEC)
        label = labels_on_grid(series.labels[k, frame], series.planes[k], grid)
        label[label >= 4] = 0
        item = ds[k]
        assert item["image"].shape == (1, 32, 32) and item["label"].dtype == torch.int64
        np.testing.assert_allclose(item["image"][0].numpy(), image, atol=2e-4)
        np.testing.assert_array_equal(item["label"][0].numpy(), label)


def test_margin_size_is_even_extension():
    assert margin_size(96, 1.5) == 144
    assert margin_size(32, 1.0) == 32
    assert (margin_size(96, 1.33) - 96) % 2 == 0


def test_augmented_labels_follow_their_structures(phantom_cache):
    """Rotation, zoom, shift, flip and elastic deformation move image and label together:
    the image is made from the label map itself, so after augmentation the bright pixels
    must be the labelled ones."""
    cache = Cache(phantom_cache)
    cfg = FinetuneAugmentConfig(rotation_deg=180, zoom=[0.8, 1.25], shift_mm=12, flip=True,
                                elastic_magnitude=2.0, margin=1.5)
    ds = InMemorySegmentationDataset(cache, cache.ids[:1], SPEC,
                                     build_segmentation_augment(cfg, 32, 6.0), margin=1.5)
    ds.images = (ds.labels > 0).float()  # image = foreground mask
    torch.manual_seed(3)
    agree, moved = [], 0
    for k in range(12):
        item = ds[k % len(ds)]
        image = item["image"][0]
        bright = image > (image.max() + image.min()) / 2  # the mask's 0.5 level
        fg = item["label"][0] > 0
        if fg.sum() < 5:
            continue
        agree.append(float((bright == fg).float().mean()))
        plain = (ds.labels[k % len(ds), 0, 8:40, 8:40] > 0)
        moved += int(not torch.equal(plain, fg))
    assert len(agree) >= 6 and min(agree) > 0.97
    assert moved >= len(agree) - 1  # the augmentation did move things


def test_augmentation_is_reproducible_under_a_seed(phantom_cache):
    cache = Cache(phantom_cache)
    cfg = FinetuneAugmentConfig(elastic_magnitude=2.0, bias_prob=0.5, gamma_prob=0.5,
                                noise_prob=0.5, blur_prob=0.5, contrast_prob=0.5)
    make = lambda: InMemorySegmentationDataset(cache, cache.ids[:1], SPEC,  # noqa: E731
                                               build_segmentation_augment(cfg, 32, 6.0), 1.5)
    runs = []
    for _ in range(2):
        ds = make()
        torch.manual_seed(11)
        runs.append(torch.stack([ds[k]["image"] for k in range(6)]))
    torch.testing.assert_close(runs[0], runs[1])
    assert not torch.equal(runs[0][0], runs[0][1])


def test_open_studies_are_bounded_and_items_unchanged(phantom_cache):
    cache = Cache(phantom_cache)
    ds = ClassificationDataset(cache, cache.ids[:5], SPEC, "class", images_per_study=1)
    ds.max_open = 2
    first = {}
    for index in range(5):
        torch.manual_seed(0)
        first[index] = ds[index]["image"].numpy()
        assert len(ds._studies) <= 2
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone._studies) == 0
    for index in range(5):
        torch.manual_seed(0)
        np.testing.assert_array_equal(clone[index]["image"].numpy(), first[index])


@pytest.mark.parametrize("zoom, side", [(2.0, 16), (0.5, 4)])
def test_zoom_above_one_magnifies(zoom, side):
    """``augment.zoom`` > 1 zooms in (MONAI's scale acts on the sampling grid, inverted in
    build_segmentation_augment): an 8-pixel square becomes ``8 x zoom`` pixels wide."""
    cfg = FinetuneAugmentConfig(rotation_deg=0, zoom=[zoom, zoom], shift_mm=0, flip=False,
                                elastic_magnitude=0, bias_prob=0, gamma_prob=0,
                                contrast_prob=0, noise_prob=0, blur_prob=0)
    square = torch.zeros(1, 48, 48)
    square[0, 20:28, 20:28] = 1
    out = build_segmentation_augment(cfg, 32, 1.0)({"image": square.clone(), "label": square.clone()})
    rows = torch.nonzero(out["label"][0] > 0.5)[:, 0]
    assert abs(int(rows.max() - rows.min() + 1) - side) <= 2
