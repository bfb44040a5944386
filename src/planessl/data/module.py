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


def check_views(cache: Cache, input_views: Sequence[str], line_channels: Sequence[str],
                slice_location: bool) -> list[str]:
    """Study ids usable as inputs; raise a PlaneSSLError naming what the task lacks."""
    if len(cache) == 0:
        raise PlaneSSLError(f"{cache.path}: the cache holds no studies")
    present: dict[str, int] = {}
    usable = []
    for e in cache.entries:
        for v in e["views"]:
            present[v] = present.get(v, 0) + 1
        if any(v in e["views"] for v in input_views):
            usable.append(e["id"])
    have = ", ".join(f"{v} ({n} studies)" for v, n in sorted(present.items())) or "none"
    if not usable:
        raise PlaneSSLError(f"{cache.path}: no study has the input view(s) "
                            f"{', '.join(input_views)} (views in the cache: {have})")
    if line_channels:
        missing = [v for v in line_channels if v not in present]
        if len(missing) == len(line_channels):
            raise PlaneSSLError(f"{cache.path}: the lines task needs view(s) "
                                f"{', '.join(line_channels)} besides the input; the cache has "
                                f"none of them (views in the cache: {have})")
    if slice_location:
        stacks = [e["id"] for e in cache.entries
                  if e["views"].get("sax", {}).get("slices", 0) >= 2 * e["views"]["sax"].get("series", 1)]
        if "sax" not in input_views or not stacks:
            raise PlaneSSLError(f"{cache.path}: the slices task needs SAX stacks of two or more "
                                f"slices as inputs (input views: {', '.join(input_views)}; "
                                f"views in the cache: {have})")
    return usable


class PretrainDataModule(pl.LightningDataModule):
    """Training and validation loaders over a cache.

    Training: one random input image per study per epoch (``sampling=random``) or every
    image (``all``), augmented. Validation: ``val_images_per_study`` fixed images of each
    held-out study, not augmented.
    """

    def __init__(self, cache: Cache, data: DataConfig, augment: AugmentConfig, spec: SampleSpec,
                 seed: int = 0, ids: Sequence[str] | None = None) -> None:
        super().__init__()
        self.cache, self.data_cfg, self.spec, self.seed = cache, data, spec, int(seed)
        ids = list(cache.ids if ids is None else ids)
        self.train_ids, self.val_ids = split_ids(ids, data.val_fraction, seed)
        aug = None
        if augment.enabled:
            aug = PlaneAugment(augment.rotation_deg, tuple(augment.zoom), augment.shift_mm,
                               augment.flip)
        self.train_set = PretrainDataset(cache, self.train_ids, spec, aug, data.sampling, seed)
        self.val_set = PretrainDataset(cache, self.val_ids, spec, None, "random", seed + 1,
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
