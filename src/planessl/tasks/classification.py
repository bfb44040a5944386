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


# ----------------------------------------------------------------------------- exam level
class ExamClassificationNet(nn.Module):
    """Exam-level classifier: every slice of the exam's input views through the backbone
    encoder -> global average pool of the deepest features (slice features) -> ``max`` or
    ``mean`` pooling over the slices -> linear logits (one per label, multi-label, or one
    per class). Input ``(B, N, 1, H, W)``: ``N`` slices per exam."""

    def __init__(self, backbone: UNetBackbone, n_outputs: int, pooling: str = "max") -> None:
        super().__init__()
        if pooling not in EXAM_POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(EXAM_POOLINGS)}, got {pooling!r}")
        self.backbone = backbone
        self.pooling = pooling
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(backbone.deep_channels, n_outputs)

    def slice_features(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[:2]
        deepest = self.backbone.encoder(x.reshape(b * n, *x.shape[2:]))[-1]
        return self.pool(deepest).flatten(1).reshape(b, n, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.slice_features(x)
        pooled = f.amax(1) if self.pooling == "max" else f.mean(1)
        return self.head(pooled)


#: Poolings over the slices of an exam (``finetune.pooling``; ``image``: the image-level
#: classifier above).
EXAM_POOLINGS = ("max", "mean")


class ExamClassificationTask(ClassificationTask):
    """Fine-tuning of :class:`ExamClassificationNet`: binary cross-entropy per label
    (``multilabel``) or cross-entropy. Validation: ``val_acc`` (mean accuracy over the
    labels at 0.5; checkpoint selection), ``val_auc`` (mean ROC AUC over the labels with
    both classes), ``val_loss``."""

    def __init__(self, net: ExamClassificationNet, transferred: Iterable[str] = (),
                 multilabel: bool = True, **opt) -> None:
        super().__init__(net, transferred, **opt)
        self.multilabel = multilabel
        self.loss = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
        self._probs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []

    def _target(self, batch: dict) -> torch.Tensor:
        return batch["target"].float() if self.multilabel else batch["target"].long()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch["image"]), self._target(batch))
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["image"])
        self.log("val_loss", self.loss(logits, self._target(batch)),
                 batch_size=batch["image"].shape[0])
        probs = torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, 1)
        self._probs.append(probs.detach().float().cpu())
        self._targets.append(batch["target"].detach().cpu())

    def on_validation_epoch_end(self) -> None:
        from planessl.evaluation.metrics import multilabel_metrics

        if not self._probs:
            return
        probs, targets = torch.cat(self._probs).numpy(), torch.cat(self._targets).numpy()
        self._probs, self._targets = [], []
        if self.multilabel:
            m = multilabel_metrics(probs, targets)
            acc, auc = m["accuracy"], m["auc"]
        else:
            acc = float((probs.argmax(1) == targets).mean())
            auc = float("nan")
        self.log("val_acc", acc, prog_bar=True)
        if auc == auc:
            self.log("val_auc", auc)
