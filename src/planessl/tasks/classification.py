"""Target task: study-level classification from single images, by fine-tuning the encoder
of a (pretrained) backbone with a new pooled linear head. A study's prediction is the mean
of its images' class probabilities (see :mod:`planessl.commands.predict`).

Loss: cross-entropy. Validation: image-level accuracy logged as ``val_acc``
(checkpoint selection) and ``val_loss``.
"""

from __future__ import annotations

from typing import Iterable

import pytorch_lightning as pl
import torch
from torch import nn

from planessl.models.backbone import UNetBackbone
from planessl.tasks.segmentation import finetune_optimiser


class ClassificationNet(nn.Module):
    """Backbone encoder -> global average pool of the deepest features -> linear logits.
    The decoder is kept (so that backbone keys match a pretrained run) but unused."""

    def __init__(self, backbone: UNetBackbone, n_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(backbone.deep_channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deepest = self.backbone.encoder(x)[-1]
        return self.head(self.pool(deepest).flatten(1))


class ClassificationTask(pl.LightningModule):
    """Fine-tuning LightningModule for classification (same optimiser groups as
    :class:`planessl.tasks.segmentation.SegmentationTask`)."""

    def __init__(self, net: ClassificationNet, transferred: Iterable[str] = (), lr: float = 1e-3,
                 transferred_lr_scale: float = 1.0, weight_decay: float = 0.0,
                 step_epochs: int = 0, step_gamma: float = 0.5, schedule: str = "step",
                 warmup_steps: int = 0, total_steps: int = 0) -> None:
        super().__init__()
        self.net = net
        self.transferred = list(transferred)
        self.opt = dict(lr=lr, transferred_lr_scale=transferred_lr_scale, weight_decay=weight_decay,
                        step_epochs=step_epochs, step_gamma=step_gamma, schedule=schedule,
                        warmup_steps=warmup_steps, total_steps=total_steps)
        self.loss = nn.CrossEntropyLoss()
        self._correct = 0
        self._seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch["image"]), batch["target"])
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["image"])
        self.log("val_loss", self.loss(logits, batch["target"]), batch_size=batch["image"].shape[0])
        self._correct += int((logits.argmax(1) == batch["target"]).sum())
        self._seen += int(batch["target"].numel())

    def on_validation_epoch_end(self) -> None:
        self.log("val_acc", self._correct / max(self._seen, 1), prog_bar=True)
        self._correct = self._seen = 0

    def configure_optimizers(self):
        return finetune_optimiser(self.net, self.transferred, self.opt)
