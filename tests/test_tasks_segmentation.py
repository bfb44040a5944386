"""Validation Dice of segmentation fine-tuning: overlap summed over all images."""

import torch

from planessl.models.backbone import UNetBackbone
from planessl.tasks.segmentation import SegmentationNet, SegmentationTask


class _Logged(SegmentationTask):
    def log(self, name, value, **kw):
        self.logged = getattr(self, "logged", {})
        self.logged[name] = float(value)


def _task():
    return _Logged(SegmentationNet(UNetBackbone(1, (2, 4)), 4))


def _run(task, preds, truths):
    for pred, truth in zip(preds, truths):
        logits = torch.nn.functional.one_hot(pred, 4).permute(0, 3, 1, 2).float() * 10
        task.forward = lambda x, logits=logits: logits
        task.validation_step({"image": torch.zeros(pred.shape[0], 1, *pred.shape[1:]),
                              "label": truth[:, None]}, 0)
    task.on_validation_epoch_end()
    return task.logged["val_dice"]


def test_perfect_prediction_scores_one_and_state_resets():
    t = _task()
    lab = torch.zeros(2, 8, 8, dtype=torch.long)
    lab[:, 2:6, 2:4], lab[:, 2:6, 4:5], lab[:, 2:6, 5:7] = 1, 2, 3
    assert _run(t, [lab], [lab]) == 1.0
    assert float(t._sizes.sum()) == 0.0


def test_dice_pools_pixels_over_images():
    """Image 1: LV of 16 px predicted exactly; image 2: LV of 1 px missed. Pooled LV Dice is
    2*16/(16+17); a per-image mean would give (1 + 0)/2."""
    t = _task()
    truth = torch.zeros(2, 8, 8, dtype=torch.long)
    truth[0, 0:4, 0:4] = 3
    truth[1, 7, 7] = 3
    pred = truth.clone()
    pred[1, 7, 7] = 0
    for c in (1, 2):  # RV and myocardium perfect in both
        truth[:, 5, c] = c
        pred[:, 5, c] = c
    got = _run(t, [pred], [truth])
    assert abs(got - (1 + 1 + 32 / 33) / 3) < 1e-6
