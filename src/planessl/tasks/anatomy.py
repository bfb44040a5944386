"""Anatomical position prediction (Bai et al., MICCAI 2019): segment a SAX image into the
regions that the long-axis planes (``task.line_channels``, e.g. 2CH and 4CH) cut it into,
``2 ** C`` classes (:func:`planessl.data.pretext_inputs.anatomy_regions`); pixels of images
without those views are ignored. Multi-view studies only (on SAX-only data it comes from
phantom pretraining, like the line task)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from planessl.config import PretrainConfig
from planessl.tasks.pretext_base import PretextModule


class AnatomyModule(PretextModule):
    """Encoder + decoder + ``heads.regions`` (1x1 convolution to ``2 ** C`` classes)."""

    metric_names = ("region_accuracy",)

    def __init__(self, config: PretrainConfig | dict) -> None:
        super().__init__(config)
        n = 2 ** len(self.cfg.task.line_channels)
        self.heads["regions"] = nn.Conv2d(self.backbone.out_channels, n, kernel_size=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 2 ** C, H, W) region logits."""
        return self.heads["regions"](self.backbone(image)[0])

    def step_losses(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        logits = self(batch["image"]).float()
        target = batch["regions"]
        valid = target >= 0
        if bool(valid.any()):
            loss = F.cross_entropy(logits, target, ignore_index=-1)
        else:  # no image of the batch has the cutting views
            loss = logits.sum() * 0.0
        if stage == "val" and bool(valid.any()):
            acc = (logits.argmax(1) == target)[valid].float().mean()
            self.val_metrics["region_accuracy"].update(acc.detach(), int(valid.sum()))
        return {"loss": loss}
