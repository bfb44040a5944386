"""What every pretext LightningModule shares: the configuration, the backbone, the optimiser
and the transferable weights.

Parameter names: ``backbone.encoder.*``, ``backbone.decoder.*``, ``heads.<name>.*``;
:meth:`PretextModule.transferable_state_dict` drops the ``backbone.`` prefix, giving the
``encoder.* / decoder.* / heads.*`` keys that fine-tuning loads. A method that trains only
the encoder still carries the (untrained) decoder, so every run's weights have one layout.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanMetric

from planessl.config import PretrainConfig, _merge, config_to_dict
from planessl.models.select import build_configured_backbone


class PretextModule(pl.LightningModule):
    """Backbone + task heads (subclasses add ``self.heads`` entries and the loss).

    Subclasses implement :meth:`step_losses` (returns a dict with ``loss`` and any parts,
    and updates validation metrics when ``stage == "val"``) and list their validation
    metric names in :attr:`metric_names`.
    """

    metric_names: Sequence[str] = ()

    def __init__(self, config: PretrainConfig | dict) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = _merge(PretrainConfig(), config)
        self.cfg = config
        self.save_hyperparameters({"config": config_to_dict(config)})
        self.backbone = build_configured_backbone(config.model)
        self.heads = nn.ModuleDict()
        self.val_metrics = nn.ModuleDict({k: MeanMetric() for k in ("loss", *self.metric_names)})

    def freeze_decoder(self) -> None:
        """For tasks that train the encoder only: the decoder gets no gradient, so DDP (which
        refuses parameters that a step does not use) and the optimiser skip it. Parameters
        the decoder shares with the encoder (nnU-Net's decoder holds its encoder) stay
        trainable."""
        encoder = {id(p) for p in self.backbone.encoder.parameters()}
        for p in self.backbone.decoder.parameters():
            if id(p) not in encoder:
                p.requires_grad_(False)

    # ------------------------------------------------------------------ steps
    def step_losses(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        parts = self.step_losses(batch, "train")
        bs = batch["image"].shape[0]
        for k, v in parts.items():
            self.log(f"train/{k}", v.detach(), prog_bar=(k == "loss"), batch_size=bs)
        return parts["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        parts = self.step_losses(batch, "val")
        self.val_metrics["loss"].update(parts["loss"].detach(), batch["image"].shape[0])

    def logged_metric_names(self) -> list[str]:
        """The validation metrics this module logs (the same on every DDP rank)."""
        return ["loss", *self.metric_names]

    def on_validation_epoch_end(self) -> None:
        # Which metrics exist depends only on the task, so every DDP rank computes the same.
        for name in self.logged_metric_names():
            metric = self.val_metrics[name]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
                value = metric.compute()
            self.log(f"val/{name}", value, prog_bar=name == "loss", sync_dist=False)
        for metric in self.val_metrics.values():
            metric.reset()

    # ------------------------------------------------------------------ optimiser
    def configure_optimizers(self):
        from planessl.tasks.optim import build_optimiser

        o = self.cfg.optim
        total = int(self.cfg.trainer.max_steps)
        if total <= 0 and o.schedule == "cosine":
            total = int(self.trainer.estimated_stepping_batches)
        return build_optimiser(self.parameters(), o.lr, o.weight_decay, o.schedule, o.step_epochs,
                               o.step_gamma, o.warmup_steps, total)

    # ------------------------------------------------------------------ transfer
    def transferable_state_dict(self) -> dict[str, torch.Tensor]:
        """``encoder.*``, ``decoder.*`` and ``heads.*`` tensors (contiguous, on CPU). A
        tensor that two names share (nnU-Net's ``decoder.encoder.*`` is ``encoder.*``) is
        kept once, under its first name."""
        out = {}
        seen: set[tuple[int, int]] = set()
        for k, v in self.state_dict().items():
            key = (v.untyped_storage().data_ptr(), v.storage_offset())
            if v.numel() and key in seen:
                continue
            seen.add(key)
            if k.startswith("backbone."):
                out[k[len("backbone."):]] = v.detach().cpu().contiguous()
            elif k.startswith("heads."):
                out[k] = v.detach().cpu().contiguous()
        return out


class PooledHead(nn.Module):
    """Deepest encoder features (B, F, h, w) -> global average pool -> MLP -> (B, out).
    ``hidden=0``: a single linear layer."""

    def __init__(self, in_channels: int, out: int, hidden: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if hidden > 0:
            layers += [nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out)]
        else:
            layers.append(nn.Linear(in_channels, out))
        self.net = nn.Sequential(*layers)

    def forward(self, deepest: torch.Tensor) -> torch.Tensor:
        return self.net(deepest)
