"""Rotation prediction (Gidaris et al. 2018): which of four 90° rotations the input has.
The target comes with the sample (:func:`planessl.data.pretext_inputs.rotate_quarter`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from planessl.config import PretrainConfig
from planessl.tasks.pretext_base import PooledHead, PretextModule


class RotationModule(PretextModule):
    """Encoder + ``heads.rotation`` (pool, linear, 4 classes), cross entropy."""

    metric_names = ("rotation_accuracy",)

    def __init__(self, config: PretrainConfig | dict) -> None:
        super().__init__(config)
        self.heads["rotation"] = PooledHead(self.backbone.deep_channels, 4)
        self.freeze_decoder()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 4) logits."""
        return self.heads["rotation"](self.backbone.encoder(image)[-1])

    def step_losses(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        logits = self(batch["image"]).float()
        loss = F.cross_entropy(logits, batch["rotation"])
        if stage == "val":
            acc = (logits.argmax(1) == batch["rotation"]).float().mean()
            self.val_metrics["rotation_accuracy"].update(acc.detach(), logits.shape[0])
        return {"loss": loss}
