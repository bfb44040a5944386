"""Settings of semi-supervised fine-tuning (``finetune.semi``, ``finetune.unlabelled`` and
the ``semi.*`` section of a fine-tuning configuration), checked once with one-line errors.

Kept free of torch so that the configuration loads without the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from planessl.errors import PlaneSSLError

#: ``finetune.semi`` values: ``none`` (supervised only), ``fixmatch`` (weak-to-strong
#: consistency, FixMatch / UniMatch style), ``bcp`` (Bidirectional Copy-Paste with a mean
#: teacher, Bai et al., CVPR 2023).
SEMI_METHODS = ("none", "fixmatch", "bcp")
#: ``finetune.unlabelled`` entry meaning "the fine-tuning cache's own unused studies".
POOL = "pool"
FRAME_CHOICES = ("edes", "all")


@dataclass
class SemiConfig:
    """Semi-supervised fine-tuning (used when ``finetune.semi`` is not ``none``).

    Attributes:
        batch_size: unlabelled images per batch and process (0: ``data.batch_size``).
        weight: weight of the unlabelled terms at the end of the ramp-up, relative to the
            labelled loss (fixmatch: of the mean of its strong-view and feature-perturbed
            terms; bcp: of the pseudo-labelled parts of the mixed images); none: the
            method's own (fixmatch 1.0 as UniMatch, bcp 0.5 as BCP's ``u_weight``).
        supervised_steps: optimiser steps on the labelled images alone before the
            unlabelled loss starts (BCP's supervised pre-training stage; bcp's teacher is
            the student at its end).
        rampup_steps: then the unlabelled weight rises as ``weight * exp(-5 (1 - t)^2)``,
            ``t = (step - supervised_steps) / rampup_steps`` (Laine & Aila's sigmoid
            ramp-up), then stays; 0: full weight at once.
        threshold: fixmatch: pixels whose weak-view confidence (max softmax probability)
            is below this are left out of the unlabelled loss (UniMatch's 0.95 on ACDC).
        feature_dropout: fixmatch: channel dropout rate of UniMatch's feature perturbation
            (every encoder level's features, ``Dropout2d``, before the decoder; its
            prediction is also supervised by the weak-view pseudo-label); 0 turns it off.
        cutmix_prob: fixmatch: probability that a strong view gets a CutMix box from
            another unlabelled image of the batch (and its pseudo-label in the box).
        strong_prob: fixmatch: probability of each intensity perturbation of the strong
            view (bias field, gamma, contrast, noise, blur; ranges of ``augment.*``).
        ema_decay: bcp: the mean teacher is ``decay * teacher + (1 - decay) * student``
            after every optimiser step (BCP: 0.99).
        crop: bcp: side of the copy-paste box as a fraction of the image side (BCP: 2/3).
        frames: which frames of the unlabelled studies' input-view series are used:
            ``edes`` (end-diastole and end-systole where the series records them, else every
            frame) or ``all``.
    """

    batch_size: int = 0
    weight: float | None = None
    supervised_steps: int = 100
    rampup_steps: int = 100
    threshold: float = 0.95
    feature_dropout: float = 0.5
    cutmix_prob: float = 0.5
    strong_prob: float = 0.8
    ema_decay: float = 0.99
    crop: float = 0.6667
    frames: str = "edes"


def check_semi(method: str, unlabelled: list[str], semi: SemiConfig, task: str) -> str | None:
    """Refuse an inconsistent semi-supervised setting with one line naming the key; returns
    a warning for a setting that is ignored (``finetune.unlabelled`` with
    ``finetune.semi=none``, e.g. an experiment's supervised arm), else ``None``."""
    if method not in SEMI_METHODS:
        raise PlaneSSLError(f"finetune.semi must be one of {', '.join(SEMI_METHODS)}, got {method!r}")
    if method == "none":
        if unlabelled:
            return ("finetune.unlabelled is ignored: finetune.semi=none trains on the labelled "
                    "studies only")
        return None
    if task != "segmentation":
        raise PlaneSSLError(f"finetune.semi={method} is for segmentation; the task is {task}")
    if not unlabelled:
        raise PlaneSSLError(f"finetune.semi={method} needs unlabelled images: "
                            f"finetune.unlabelled=pool (the cache's unused studies) or a list "
                            f"of caches")
    if any(not str(u).strip() for u in unlabelled):
        raise PlaneSSLError("finetune.unlabelled holds an empty entry")
    checks = [
        ("batch_size", semi.batch_size >= 0, "a number of images >= 0 (0: data.batch_size)"),
        ("weight", semi.weight is None or semi.weight >= 0, ">= 0 (or none)"),
        ("supervised_steps", semi.supervised_steps >= 0, ">= 0"),
        ("rampup_steps", semi.rampup_steps >= 0, ">= 0"),
        ("threshold", 0.0 <= semi.threshold < 1.0, "in [0, 1)"),
        ("feature_dropout", 0.0 <= semi.feature_dropout < 1.0, "in [0, 1)"),
        ("cutmix_prob", 0.0 <= semi.cutmix_prob <= 1.0, "in [0, 1]"),
        ("strong_prob", 0.0 <= semi.strong_prob <= 1.0, "in [0, 1]"),
        ("ema_decay", 0.0 <= semi.ema_decay < 1.0, "in [0, 1)"),
        ("crop", 0.0 < semi.crop < 1.0, "in (0, 1)"),
        ("frames", semi.frames in FRAME_CHOICES, f"one of {', '.join(FRAME_CHOICES)}"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise PlaneSSLError(f"semi.{key} must be {what}, got {getattr(semi, key)!r}")
    return None
