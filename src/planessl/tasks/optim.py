"""Optimiser and learning-rate schedule of every training run (pretraining and fine-tuning).

Adam over the given parameter groups, with one of three schedules:

- ``step``: the learning rate times ``step_gamma`` every ``step_epochs`` epochs (constant
  when ``step_epochs`` is 0), as the reference implementation;
- ``cosine``: linear warm-up from 0 over ``warmup_steps`` optimiser steps, then a cosine
  decay to 0 at ``total_steps`` (MONAI's ``WarmupCosineSchedule``), stepped every step;
- ``constant``: no schedule.
"""

from __future__ import annotations

import torch

from planessl.errors import PlaneSSLError

SCHEDULES = ("step", "cosine", "constant")


def build_optimiser(groups, lr: float, weight_decay: float = 0.0, schedule: str = "step",
                    step_epochs: int = 0, step_gamma: float = 0.5, warmup_steps: int = 0,
                    total_steps: int = 0):
    """What a LightningModule's ``configure_optimizers`` returns.

    Args:
        groups: parameters, or parameter groups (each may carry its own ``lr``).
        lr: learning rate of groups without their own.
        total_steps: optimiser steps of the run (needed by ``cosine``).
    """
    if schedule not in SCHEDULES:
        raise PlaneSSLError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    optimiser = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if schedule == "step" and step_epochs > 0:
        sched = torch.optim.lr_scheduler.StepLR(optimiser, step_epochs, step_gamma)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
    if schedule == "cosine":
        from monai.optimizers import WarmupCosineSchedule

        if total_steps <= 0:
            raise PlaneSSLError("optim.schedule=cosine needs a run length in steps "
                                "(trainer.max_steps or finetune.steps)")
        warmup = min(max(0, int(warmup_steps)), max(0, int(total_steps) - 1))
        sched = WarmupCosineSchedule(optimiser, warmup_steps=warmup, t_total=int(total_steps))
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
    return optimiser
