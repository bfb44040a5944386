"""Contrastive pretraining: SimCLR, the partition-based global loss of Chaitanya et al.
(``gcl``) and positional contrastive learning of Zeng et al. (``pcl``).

Each sample brings two augmented views of one image (``image``, ``image2``) and its relative
slice location (``slice``, ``slice_mask``). The encoder's deepest features are pooled and
projected (``heads.projection``, dropped at transfer); the loss
(:mod:`planessl.tasks.contrastive_loss`) runs over the views of every process's batch.
"""

from __future__ import annotations

import torch

from planessl.config import PretrainConfig
from planessl.tasks.contrastive_loss import (gather_across_processes, multi_positive_nt_xent,
                                             positive_mask, world_size)
from planessl.tasks.pretext_base import PooledHead, PretextModule


class ContrastiveModule(PretextModule):
    """Encoder + projection head trained with the multi-positive NT-Xent of
    ``task.name`` (``simclr``, ``gcl`` or ``pcl``)."""

    metric_names = ("positives_per_anchor",)

    def __init__(self, config: PretrainConfig | dict) -> None:
        super().__init__(config)
        deep = self.backbone.deep_channels
        self.heads["projection"] = PooledHead(deep, self.cfg.task.projection_dim, hidden=deep)
        self.freeze_decoder()

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """(B, projection_dim) projections (not normalised)."""
        return self.heads["projection"](self.backbone.encoder(image)[-1])

    def step_losses(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        t = self.cfg.task
        b = batch["image"].shape[0]
        z = self.embed(torch.cat([batch["image"], batch["image2"]], dim=0)).float()
        pos = batch["slice"][:, 0].float().repeat(2)
        known = (batch["slice_mask"][:, 0] > 0).repeat(2)
        z_all, rank = gather_across_processes(z)
        pos_all, _ = gather_across_processes(pos)
        known_all, _ = gather_across_processes(known.to(torch.uint8))
        # Ids of the source images, unique across processes: view k of image i on rank r.
        n_local = 2 * b
        ids = torch.arange(z_all.shape[0], device=z.device) % n_local % b
        ids = ids + b * (torch.arange(z_all.shape[0], device=z.device) // n_local)
        mask = positive_mask(t.name, ids, pos_all, known_all.bool(), t.partitions,
                             t.position_threshold)
        loss = multi_positive_nt_xent(z_all, mask, t.temperature)
        if stage == "val":
            self.val_metrics["positives_per_anchor"].update(
                (mask.sum(1) - 1).float().mean().detach())
        # Every process holds the global loss; DDP averages gradients, hence x world size.
        scaled = loss * world_size() if stage == "train" else loss
        return {"loss": scaled, "contrastive_loss": loss.detach()}
