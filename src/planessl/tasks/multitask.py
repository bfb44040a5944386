"""The pretraining LightningModule: lines, slices, or both (α·L_lines + β·L_slice), with an
optional Models Genesis restoration term γ·L_restore (``task.restore_weight``) that also
pretrains the decoder of the slice task.

One module serves the three pretext tasks; the task decides which heads exist and the loss
weights (``lines``: α=1, β=0; ``slices``: α=0, β=1; ``multitask``: the configured α, β).
Parameter names: ``backbone.encoder.*``, ``backbone.decoder.*``, ``heads.lines.*``,
``heads.slices.*``; :meth:`PretrainModule.transferable_state_dict` drops the ``backbone.``
prefix, giving the ``encoder.* / decoder.* / heads.*`` keys that fine-tuning loads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from planessl.config import PretrainConfig
from planessl.errors import PlaneSSLError
from planessl.models.heads import LineHead, SliceHead
from planessl.tasks.pretext_base import PretextModule
from planessl.tasks.lines import line_loss, line_metrics
from planessl.tasks.names import GEOMETRY_TASKS, TASK_NAMES
from planessl.tasks.slices import slice_abs_errors, slice_loss

TASKS = GEOMETRY_TASKS


def task_weights(cfg: PretrainConfig) -> tuple[float, float]:
    """(α, β) of the configured task (0, 0 for the tasks that are neither lines nor slices)."""
    name = cfg.task.name
    if name == "lines":
        return 1.0, 0.0
    if name == "slices":
        return 0.0, 1.0
    if name == "multitask":
        return float(cfg.task.alpha), float(cfg.task.beta)
    if name in TASK_NAMES:
        return 0.0, 0.0
    raise PlaneSSLError(f"task.name must be one of {', '.join(TASK_NAMES)}, got {name!r}")


class PretrainModule(PretextModule):
    """Backbone + line and/or slice heads, trained on a pretext task.

    Args:
        config: the resolved configuration (a :class:`PretrainConfig` or its dict form,
            as stored in checkpoints).
    """

    metric_names = ("line_angle_deg", "line_dist_mm", "line_fit_failed", "slice_mae",
                    "restore_mse")

    def __init__(self, config: PretrainConfig | dict) -> None:
        super().__init__(config)
        config = self.cfg
        self.alpha, self.beta = task_weights(config)
        if self.alpha > 0:
            self.heads["lines"] = LineHead(self.backbone.out_channels, len(config.task.line_channels))
        if self.beta > 0:
            self.heads["slices"] = SliceHead(self.backbone.deep_channels, config.task.slice_hidden)
        self.gamma = float(config.task.restore_weight)
        if self.gamma > 0:  # restoration from a corrupted copy (Models Genesis, 2D)
            self.heads["restore"] = torch.nn.Conv2d(self.backbone.out_channels, 1, kernel_size=1)
        if "lines" not in self.heads and "restore" not in self.heads:
            self.freeze_decoder()  # the slice task alone trains the encoder only
        self._preview: dict[str, np.ndarray] | None = None
        self.preview_path: Path | None = None

    # ------------------------------------------------------------------ forward/loss
    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"lines": (B, C, H, W), "slices": (B, 1)}`` for the heads that exist."""
        if "lines" in self.heads:
            dec, enc = self.backbone(image)
        else:  # the slice task needs only the encoder
            dec, enc = None, self.backbone.encoder(image)
        out = {}
        if "lines" in self.heads:
            out["lines"] = self.heads["lines"](dec)
        if "slices" in self.heads:
            out["slices"] = self.heads["slices"](enc[-1])
        return out

    def clean_image(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The image the geometry heads see: with the restoration term the sample's input
        is the corrupted copy and ``target`` the clean image."""
        return batch["target"] if "restore" in self.heads else batch["image"]

    def outputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The geometry heads on the clean image, and ``restore`` (B, 1, H, W) from the
        corrupted one when the restoration term is on."""
        out = self(self.clean_image(batch))
        if "restore" in self.heads:
            out["restore"] = self.heads["restore"](self.backbone(batch["image"])[0])
        return out

    def losses(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
               ) -> dict[str, torch.Tensor]:
        parts = {}
        total = 0.0
        if "restore" in out:
            parts["restore_loss"] = F.mse_loss(out["restore"].float(), batch["target"])
            total = total + self.gamma * parts["restore_loss"]
        if "lines" in out:
            parts["line_loss"] = line_loss(out["lines"], batch)
            total = total + self.alpha * parts["line_loss"]
        if "slices" in out:
            parts["slice_loss"] = slice_loss(out["slices"], batch)
            total = total + self.beta * parts["slice_loss"]
        parts["loss"] = total
        return parts

    def step_losses(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        return self.losses(self.outputs(batch), batch)

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.outputs(batch)
        parts = self.losses(out, batch)
        bs = batch["image"].shape[0]
        if "restore" in out:
            self.val_metrics["restore_mse"].update(parts["restore_loss"].detach(), bs)
        self.val_metrics["loss"].update(parts["loss"].detach(), bs)
        if "lines" in out:
            m = line_metrics(out["lines"], batch)
            for key, name in (("angle_deg", "line_angle_deg"), ("dist_mm", "line_dist_mm"),
                              ("failed", "line_fit_failed")):
                if m[key]:
                    self.val_metrics[name].update(torch.tensor(m[key], dtype=torch.float32))
        if "slices" in out:
            err = slice_abs_errors(out["slices"], batch)
            if err.numel():
                self.val_metrics["slice_mae"].update(err)
        if batch_idx == 0 and "lines" in out:
            n = min(4, bs)
            self._preview = {k: batch[k][:n].detach().cpu().numpy()
                             for k in ("lines", "line_mask", "spacing")}
            self._preview["image"] = self.clean_image(batch)[:n].detach().cpu().numpy()
            self._preview["pred"] = out["lines"][:n].detach().float().cpu().numpy()

    def logged_metric_names(self) -> list[str]:
        # Which metrics exist depends only on the heads, so every DDP rank computes (and
        # synchronises) the same ones, even a rank that saw no valid line.
        names = ["loss"]
        if "lines" in self.heads:
            names += ["line_angle_deg", "line_dist_mm", "line_fit_failed"]
        if "slices" in self.heads:
            names += ["slice_mae"]
        if "restore" in self.heads:
            names += ["restore_mse"]
        return names

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if (self._preview is not None and self.preview_path is not None
                and self.trainer.is_global_zero and not self.trainer.sanity_checking):
            from planessl.evaluation.plots import save_heatmap_preview
            save_heatmap_preview(self.preview_path, self._preview, list(self.cfg.task.line_channels))
        self._preview = None
