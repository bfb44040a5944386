"""Models Genesis-style restoration (Zhou et al. 2019) in 2D: the encoder-decoder restores
the clean image from its corrupted copy
(:func:`planessl.data.pretext_inputs.genesis_corrupt`); mean squared error."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from planessl.config import PretrainConfig
from planessl.tasks.pretext_base import PretextModule


class GenesisModule(PretextModule):
    """Encoder + decoder + ``heads.restore`` (1x1 convolution to one channel)."""

    metric_names = ("restore_mse",)

    def __init__(self, config: PretrainConfig | dict) -> None:
        super().__init__(config)
        self.heads["restore"] = nn.Conv2d(self.backbone.out_channels, 1, kernel_size=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) restored image."""
        return self.heads["restore"](self.backbone(image)[0])

    def step_losses(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        loss = F.mse_loss(self(batch["image"]).float(), batch["target"])
        if stage == "val":
            self.val_metrics["restore_mse"].update(loss.detach(), batch["image"].shape[0])
        return {"loss": loss}
