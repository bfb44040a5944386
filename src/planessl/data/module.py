"""LightningDataModule for pretraining: study split, view checks, loaders."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pytorch_lightning as pl

from planessl.cache import Cache
from planessl.config import AugmentConfig, DataConfig
from planessl.data.loader import EpochLoader
from planessl.data.pretrain import EpochSampler, PretrainDataset, SampleSpec
from planessl.data.transforms import PlaneAugment
from planessl.errors import PlaneSSLError


def split_ids(ids: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded split of study ids into (train, validation); at least one of each when there
    are two or more studies (one study: it serves both)."""
    ids = sorted(ids)
    if len(ids) < 2:
        return list(ids), list(ids)
    n_val = min(len(ids) - 1, max(1, int(round(val_fraction * len(ids)))))
    perm = np.random.default_rng([seed, 104729]).permutation(len(ids))
    val = sorted(ids[k] for k in perm[:n_val])
    train = sorted(ids[k] for k in perm[n_val:])
    return train, val


def _view_counts(caches: Sequence[Cache]) -> str:
    present: dict[str, int] = {}
    for cache in caches:
        for e in cache.entries:
            for v in e["views"]:
                present[v] = present.get(v, 0) + 1
    return ", ".join(f"{v} ({n} studies)" for v, n in sorted(present.items())) or "none"


def _has_stack(entry: dict) -> bool:
    """A SAX stack of two or more slices (per series) in the study."""
    sax = entry["views"].get("sax", {})
    return sax.get("slices", 0) >= 2 * sax.get("series", 1)


def check_caches(caches: Sequence[Cache], input_views: Sequence[str],
                 line_channels: Sequence[str], slice_location: bool) -> list[list[str]]:
    """Usable study ids (those with an input view) of each cache.

    The task's needs are checked on the union of the caches (e.g. slice locations from a
    SAX-only archive, lines from a multi-view phantom), then each cache must give some
    target of the task.

    Raises:
        PlaneSSLError: one line naming the cache (or caches) and what the task lacks.
    """
    names = ", ".join(str(c.path) for c in caches)
    have = _view_counts(caches)
    for cache in caches:
        if len(cache) == 0:
            raise PlaneSSLError(f"{cache.path}: the cache holds no studies")
    usable = [[e["id"] for e in c.entries if any(v in e["views"] for v in input_views)]
              for c in caches]
    for cache, ids in zip(caches, usable):
        if not ids:
            raise PlaneSSLError(f"{cache.path}: no study has the input view(s) "
                                f"{', '.join(input_views)} (views in the cache: "
                                f"{_view_counts([cache])})")
    if line_channels and not any(v in e["views"] for c in caches for e in c.entries
                                 for v in line_channels):
        raise PlaneSSLError(f"{names}: the task needs view(s) {', '.join(line_channels)} "
                            f"besides the input; the "
                            f"{'cache has' if len(caches) == 1 else 'caches have'} none of them "
                            f"(views: {have})")
    if slice_location and ("sax" not in input_views
                           or not any(_has_stack(e) for c in caches for e in c.entries)):
        raise PlaneSSLError(f"{names}: the task needs SAX stacks of two or more "
                            f"slices as inputs (input views: {', '.join(input_views)}; "
                            f"views: {have})")
    if not line_channels and not slice_location:  # the input image alone is the target
        return usable
    for cache, ids in zip(caches, usable):
        entries = [cache.entry(i) for i in ids]
        lines = bool(line_channels) and any(v in e["views"] for e in entries for v in line_channels)
        stacks = slice_location and "sax" in input_views and any(_has_stack(e) for e in entries)
        if not (lines or stacks):
            wanted = []
            if line_channels:
                wanted.append(f"a line (view {', '.join(line_channels)} beside the input)")
            if slice_location:
                wanted.append("a slice location (a SAX stack of two or more slices)")
            raise PlaneSSLError(f"{cache.path}: no study gives a target for this task "
                                f"({' or '.join(wanted)}; views in the cache: "
                                f"{_view_counts([cache])}); drop this cache or change the task")
    return usable


def check_views(cache: Cache, input_views: Sequence[str], line_channels: Sequence[str],
                slice_location: bool) -> list[str]:
    """Study ids of one cache usable as inputs; raise a PlaneSSLError naming what the task
    lacks (:func:`check_caches` for one cache)."""
    return check_caches([cache], input_views, line_channels, slice_location)[0]


class PretrainDataModule(pl.LightningDataModule):
    """Training and validation loaders over one cache or several.

    Training: one random input image per study per epoch (``sampling=random``) or every
    image (``all``), augmented; several caches are mixed by ``weights``
    (:mod:`planessl.data.mixing`). Validation: each cache is split on its own
    (:func:`split_ids`); ``val_images_per_study`` fixed images of every held-out study of
    every cache, not augmented, not weighted.

    Args:
        cache: the cache, or several.
        data, augment, spec: loader, augmentation and sample settings.
        seed: base seed of the split and of every sample.
        ids: usable study ids (several caches: one sequence per cache); default all.
        weights: relative share of each cache in a training epoch; ``None``: proportional
            to its training studies (``all``: images).
    """

    def __init__(self, cache: Cache | Sequence[Cache], data: DataConfig, augment: AugmentConfig,
                 spec: SampleSpec, seed: int = 0,
                 ids: Sequence[str] | Sequence[Sequence[str]] | None = None,
                 weights: Sequence[float] | None = None) -> None:
        super().__init__()
        caches = [cache] if isinstance(cache, Cache) else list(cache)
        if ids is None:
            ids = [c.ids for c in caches]
        elif isinstance(cache, Cache):
            ids = [ids]
        self.caches, self.data_cfg, self.spec, self.seed = caches, data, spec, int(seed)
        splits = [split_ids(list(i), data.val_fraction, seed) for i in ids]
        self.train_ids = [t for t, _ in splits]
        self.val_ids = [v for _, v in splits]
        aug = None
        if augment.enabled:
            aug = PlaneAugment(augment.rotation_deg, tuple(augment.zoom), augment.shift_mm,
                               augment.flip)
        self.train_set = PretrainDataset(caches, self.train_ids, spec, aug, data.sampling, seed,
                                         weights=weights)
        self.val_set = PretrainDataset(caches, self.val_ids, spec, None, "random", seed + 1,
                                       repeats=max(1, data.val_images_per_study))

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, dataset: PretrainDataset, shuffle: bool) -> EpochLoader:
        rank, world = self._rank_world()
        sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=self.seed, rank=rank,
                               world_size=world, follow_epoch=shuffle)
        workers = int(self.data_cfg.num_workers)
        # EpochLoader: exact resume with workers (the sampler is read after set_epoch).
        return EpochLoader(dataset, batch_size=self.data_cfg.batch_size, sampler=sampler,
                           num_workers=workers, persistent_workers=workers > 0,
                           pin_memory=False, drop_last=False)

    def train_dataloader(self) -> EpochLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> EpochLoader:
        return self._loader(self.val_set, shuffle=False)
