"""Wiring of semi-supervised segmentation fine-tuning (``finetune.semi=fixmatch|bcp``) into
:func:`planessl.finetune.finetune`: the unlabelled studies, the per-step batches and the
task. Writes ``unlabelled.json`` (the unlabelled studies of every source) into the run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from planessl.evaluation.protocol import Split
from planessl.runinfo import write_text_atomic

UNLABELLED_JSON = "unlabelled.json"


def semi_sources(cfg, cache, split: Split) -> list[tuple]:
    """``(cache, study ids)`` of the unlabelled images of a run: ``finetune.unlabelled``
    without the split's test, validation and labelled training studies (checked before
    the run folder is written; PlaneSSLError when there are none)."""
    from planessl.data.unlabelled import unlabelled_sources

    excluded = sorted(set(split.test) | set(split.val) | set(split.train))
    sources = unlabelled_sources(cache, cfg.finetune.unlabelled, excluded, cfg.data.input_views)
    leaked = set(split.test) & {i for _, ids in sources for i in ids}
    assert not leaked, f"test studies among the unlabelled: {sorted(leaked)}"
    return sources


def build_semi(cfg, sources: list[tuple], split: Split, spec, labelled_ds, net,
               transferred: list[str], opt: dict, out: Path, echo=print):
    """``(module, train_loader)`` of a semi-supervised run.

    Args:
        cfg: the resolved :class:`planessl.finetune.FinetuneConfig`.
        sources: the unlabelled studies (:func:`semi_sources`); split: the few-label split.
        spec: the input grid; labelled_ds: the labelled training images.
        net, transferred: the network and its transferred keys; opt: optimiser settings.
        out: the run folder.
    """
    from monai.transforms import CenterSpatialCropd, Compose

    from planessl.data.augment import intensity_transforms, spatial_transforms
    from planessl.data.loader import EpochLoader
    from planessl.data.semi_batches import SemiBatches, StepSampler
    from planessl.data.unlabelled import InMemoryUnlabelledDataset
    from planessl.tasks.semi import SemiSegmentationTask

    ft, semi, aug = cfg.finetune, cfg.semi, cfg.augment
    excluded = sorted(set(split.test) | set(split.val) | set(split.train))
    used = {str(c.path): ids for c, ids in sources}
    write_text_atomic(out / UNLABELLED_JSON, json.dumps(
        {"sources": ft.unlabelled, "excluded": excluded, "studies": used}, indent=1))
    unlabelled = InMemoryUnlabelledDataset(sources, spec, aug.margin if aug.enabled else 1.0,
                                           semi.frames)
    digest = hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()[:16]
    batch_u = int(semi.batch_size) or int(cfg.data.batch_size)
    echo(f"semi-supervised ({ft.semi}): {len(unlabelled)} unlabelled images of "
         f"{sum(len(v) for v in used.values())} studies, {batch_u} per batch")
    size = spec.image_size
    if aug.enabled:
        weak = Compose(spatial_transforms(aug, size, spec.spacing_mm, ("image",)))
    else:
        weak = Compose([CenterSpatialCropd(("image",), (size, size))])
    strong = Compose(intensity_transforms(aug, semi.strong_prob))
    interval = max(1, min(ft.val_every_n_steps, ft.steps))
    batches = SemiBatches(labelled_ds, unlabelled, weak, strong, ft.semi, cfg.data.batch_size,
                          batch_u, cfg.seed, semi.cutmix_prob, semi.crop)
    workers = int(cfg.data.num_workers)
    sampler = StepSampler(interval)
    loader = EpochLoader(batches, batch_size=None, sampler=sampler,
                         num_workers=workers, persistent_workers=workers > 0)
    module = SemiSegmentationTask(net, transferred, method=ft.semi, semi=semi, seed=cfg.seed,
                                  stream={"count": len(unlabelled), "digest": digest,
                                          "batch_size": batch_u},
                                  step_sampler=sampler,
                                  lambda_ce=ft.lambda_ce, lambda_dice=ft.lambda_dice, **opt)
    return module, loader

