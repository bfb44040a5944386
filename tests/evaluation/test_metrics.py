"""Metrics against hand-computed values, including empty masks and missing structures."""

import math

import numpy as np
import pytest

from planessl.evaluation.metrics import (classification_metrics, dice, flatten_metrics,
                                         segmentation_metrics, summarise, surface_distances)


def _vol(shape=(1, 12, 12)):
    return np.zeros(shape, dtype=np.uint8)


def test_dice_hand_computed():
    p, t = _vol(), _vol()
    p[0, 2:4, 2:4] = 1          # 4 pixels
    t[0, 2:4, 2:5] = 1          # 6 pixels, containing p
    assert dice(p, t) == pytest.approx(2 * 4 / 10)


def test_empty_rules():
    e = _vol()
    one = _vol()
    one[0, 3, 3] = 1
    assert dice(e, e) == 1.0
    assert surface_distances(e, e, None) == (0.0, 0.0)
    assert dice(one, e) == 0.0 and dice(e, one) == 0.0
    hd, sd = surface_distances(e, one, (5.0, 1.0, 1.0))
    assert math.isnan(hd) and math.isnan(sd)


def test_distance_in_mm_uses_spacing_per_axis():
    p, t = _vol(), _vol()
    t[0, 5, 5] = 1
    p[0, 5, 8] = 1                       # 3 columns apart
    hd, sd = surface_distances(p, t, (10.0, 1.0, 2.0))
    assert hd == pytest.approx(6.0) and sd == pytest.approx(6.0)
    hd_px, sd_px = surface_distances(p, t, None)
    assert hd_px == pytest.approx(3.0) and sd_px == pytest.approx(3.0)


def test_distance_through_plane_in_mm():
    p, t = _vol((2, 8, 8)), _vol((2, 8, 8))
    t[0, 4, 4] = 1
    p[1, 4, 4] = 1
    hd, sd = surface_distances(p, t, (8.0, 1.5, 1.5))
    assert hd == pytest.approx(8.0) and sd == pytest.approx(8.0)


def test_asymmetric_assd_and_percentile():
    p, t = _vol(), _vol()
    t[0, 5, 5:7] = 1                     # two boundary pixels
    p[0, 5, 5] = 1                       # one
    hd, sd = surface_distances(p, t, (1.0, 1.0, 1.0))
    # pred->truth: [0]; truth->pred: [0, 1]; 95th percentile (linear) of [0, 1] = 0.95
    assert hd == pytest.approx(0.95)
    assert sd == pytest.approx(1 / 3)


def test_pixels_pooled_over_slices():
    p, t = _vol((3, 8, 8)), _vol((3, 8, 8))
    t[0, 2, 2] = 1; p[0, 2, 4] = 1      # 2 px apart
    t[1, 2, 2] = 1; p[1, 2, 2] = 1      # exact
    p[2, 6, 6] = 1                       # only in pred on slice 2: no 2D distance there
    hd, sd = surface_distances(p, t, None)
    assert hd == pytest.approx(1.9)      # quantile(0.95) of [0, 2]
    assert sd == pytest.approx(1.0)


def test_segmentation_metrics_per_structure_and_unit():
    truth = _vol((2, 10, 10))
    truth[:, 2:5, 2:5] = 3
    truth[:, 6:8, 6:8] = 1
    pred = truth.copy()
    pred[pred == 1] = 0                  # RV missed entirely; myocardium absent in both
    r = segmentation_metrics(pred, truth, spacing=None)
    assert r["unit"] == "px"
    assert r["LV"]["dice"] == 1.0 and r["LV"]["hd95"] == 0.0 and r["LV"]["assd"] == 0.0
    assert r["RV"]["dice"] == 0.0 and math.isnan(r["RV"]["hd95"])
    assert r["myocardium"] == {"dice": 1.0, "hd95": 0.0, "assd": 0.0}
    flat = flatten_metrics(r)
    assert flat["mean_dice"] == pytest.approx(2 / 3)
    assert segmentation_metrics(pred, truth, spacing=(8, 1.2, 1.2))["unit"] == "mm"
    with pytest.raises(ValueError):
        segmentation_metrics(pred[:1], truth)


def test_summarise_excludes_and_counts_nan():
    s = summarise([{"a": 1.0}, {"a": 3.0}, {"a": float("nan")}], ["a"])["a"]
    assert s["mean"] == 2.0 and s["std"] == 1.0 and s["n"] == 2 and s["n_undefined"] == 1


def test_classification_binary_hand_computed():
    probs1 = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.stack([1 - probs1, probs1], 1)
    r = classification_metrics(probs, np.array([0, 0, 1, 1]))
    assert r["accuracy"] == pytest.approx(0.75)
    assert r["auc"] == pytest.approx(0.75)


def test_classification_multiclass_and_single_class():
    probs = np.eye(3)[[0, 1, 2, 2]] * 0.8 + 0.2 / 3
    r = classification_metrics(probs, np.array([0, 1, 2, 2]))
    assert r["accuracy"] == 1.0 and r["auc"] == pytest.approx(1.0)
    r1 = classification_metrics(probs[:2], np.array([0, 0]))
    assert r1["accuracy"] == 0.5 and math.isnan(r1["auc"])


def test_mm_distances_equal_monai_metric_classes():
    from monai.metrics import HausdorffDistanceMetric, SurfaceDistanceMetric
    import torch

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24]
    t = np.stack([((yy - 12) ** 2 + (xx - 11) ** 2 < 30 + 10 * k) for k in range(3)])
    p = np.stack([((yy - 13) ** 2 / 1.5 + (xx - 12) ** 2 < 40 + 5 * k) for k in range(3)])
    p[1, rng.integers(0, 24, 5), rng.integers(0, 24, 5)] = True  # stray pixels
    spacing = (7.0, 1.3, 1.6)
    hd, sd = surface_distances(p, t, spacing)
    yp, yt = torch.as_tensor(p)[None, None].float(), torch.as_tensor(t)[None, None].float()
    ref_hd = float(HausdorffDistanceMetric(percentile=95)(yp, yt, spacing=list(spacing))[0, 0])
    ref_sd = float(SurfaceDistanceMetric(symmetric=True)(yp, yt, spacing=list(spacing))[0, 0])
    assert hd == pytest.approx(ref_hd, rel=1e-5) and sd == pytest.approx(ref_sd, rel=1e-5)
