"""Target task: 2D segmentation (ACDC convention: background, RV, myocardium, LV) by
fine-tuning a (pretrained) U-Net backbone with a new 1x1-conv head.

Optimiser: Adam with two parameter groups — transferred parameters at
``lr * transferred_lr_scale`` and new parameters at ``lr`` — and the schedule of
:mod:`planessl.tasks.optim` (step decay, or warm-up + cosine).
Loss: MONAI ``DiceCELoss`` (weights ``lambda_ce`` / ``lambda_dice``; either may be 0).
Validation: per-structure Dice over all validation pixels together (overlap and sizes
summed over the images, as a volume Dice is), averaged over the foreground structures and
logged as ``val_dice`` for checkpoint selection; per-image Dice would weigh a tiny apical
slice as much as a mid-ventricular one and is much noisier.
"""

from __future__ import annotations

from typing import Iterable

import pytorch_lightning as pl
import torch
from torch import nn

from planessl.models.backbone import UNetBackbone


class SegmentationNet(nn.Module):
    """Backbone + 1x1 conv head to ``n_classes`` logits (B, n_classes, H, W)."""

    def __init__(self, backbone: UNetBackbone, n_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Conv2d(backbone.out_channels, n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[0])


def param_groups(model: nn.Module, transferred: Iterable[str], lr: float,
                 transferred_lr_scale: float, weight_decay: float = 0.0) -> list[dict]:
    """Adam parameter groups: ``backbone.<key>`` in ``transferred`` vs the rest. A scale of 0
    freezes the transferred parameters."""
    names = {f"backbone.{k}" for k in transferred}
    old, new = [], []
    for name, p in model.named_parameters():
        (old if name in names else new).append(p)
    groups = [{"params": new, "lr": lr, "weight_decay": weight_decay, "name": "new"}]
    if old:
        if transferred_lr_scale == 0:
            for p in old:
                p.requires_grad_(False)
        else:
            groups.append({"params": old, "lr": lr * transferred_lr_scale,
                           "weight_decay": weight_decay, "name": "transferred"})
    return groups


class SegmentationTask(pl.LightningModule):
    """Fine-tuning LightningModule for segmentation.

    Args:
        net: the network.
        transferred: backbone keys that were loaded from a pretrained run.
        lr, transferred_lr_scale, weight_decay, step_epochs, step_gamma: optimiser.
        lambda_ce, lambda_dice: loss weights of ``DiceCELoss``.
    """

    def __init__(self, net: SegmentationNet, transferred: Iterable[str] = (), lr: float = 1e-3,
                 transferred_lr_scale: float = 1.0, weight_decay: float = 0.0,
                 step_epochs: int = 0, step_gamma: float = 0.5, lambda_ce: float = 1.0,
                 lambda_dice: float = 1.0, schedule: str = "step", warmup_steps: int = 0,
                 total_steps: int = 0) -> None:
        super().__init__()
        from monai.losses import DiceCELoss

        self.net = net
        self.transferred = list(transferred)
        self.opt = dict(lr=lr, transferred_lr_scale=transferred_lr_scale, weight_decay=weight_decay,
                        step_epochs=step_epochs, step_gamma=step_gamma, schedule=schedule,
                        warmup_steps=warmup_steps, total_steps=total_steps)
        self.n_classes = net.head.out_channels
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False,
                               lambda_ce=lambda_ce, lambda_dice=lambda_dice)
        self._overlap = torch.zeros(self.n_classes - 1, dtype=torch.float64)
        self._sizes = torch.zeros(self.n_classes - 1, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch["image"]), batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["image"])
        loss = self.loss(logits, batch["label"])
        pred, truth = logits.argmax(1), batch["label"][:, 0]
        for c in range(1, self.n_classes):
            p, t = pred == c, truth == c
            self._overlap[c - 1] += float((p & t).sum())
            self._sizes[c - 1] += float(p.sum() + t.sum())
        self.log("val_loss", loss, batch_size=batch["image"].shape[0])

    def on_validation_epoch_end(self) -> None:
        # Every process validates on the whole (unsharded) validation set: no reduction.
        sizes, overlap = self._sizes, self._overlap
        dice = torch.where(sizes > 0, 2 * overlap / sizes.clamp(min=1), torch.zeros_like(sizes))
        self._overlap.zero_()
        self._sizes.zero_()
        self.log("val_dice", float(dice.mean()), prog_bar=True)

    def configure_optimizers(self):
        return finetune_optimiser(self.net, self.transferred, self.opt)


def finetune_optimiser(net: nn.Module, transferred: Iterable[str], opt: dict):
    """Adam over :func:`param_groups` with the schedule of ``opt`` (keys of the tasks'
    ``opt`` dict: lr, transferred_lr_scale, weight_decay, schedule, step_epochs,
    step_gamma, warmup_steps, total_steps)."""
    from planessl.tasks.optim import build_optimiser

    groups = param_groups(net, transferred, opt["lr"], opt["transferred_lr_scale"],
                          opt["weight_decay"])
    return build_optimiser(groups, opt["lr"], opt["weight_decay"], opt.get("schedule", "step"),
                           opt["step_epochs"], opt["step_gamma"], opt.get("warmup_steps", 0),
                           opt.get("total_steps", 0))
