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
from planessl.study import SLICE_LOCATION_VIEWS


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


def _has_stack(entry: dict, input_views: Sequence[str] = ("sax",)) -> bool:
    """A stack of two or more slices (per series) of a slice-location view
    (:data:`planessl.study.SLICE_LOCATION_VIEWS`: SAX, knee sagittal / coronal / axial)
    among ``input_views`` in the study."""
    for view in input_views:
        if view not in SLICE_LOCATION_VIEWS:
            continue
        v = entry["views"].get(view, {})
        if v.get("slices", 0) >= 2 * v.get("series", 1):
            return True
    return False


def _has_geometry(cache: Cache, views: Sequence[str]) -> bool | None:
    """Whether some study of the cache has a series of ``views`` with known geometry
    (``None``: no study has those views at all). Stops at the first such series."""
    seen = False
    for e in cache.entries:
        if not any(v in e["views"] for v in views):
            continue
        seen = True
        if any(s["view"] in views and s.get("spacing_known", True)
               for s in cache.meta(e["id"])["series"]):
            return True
    return False if seen else None


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
    if line_channels:
        geometry = [_has_geometry(c, line_channels) for c in caches]
        if not any(geometry):
            raise PlaneSSLError(f"{names}: the line task is not available: the views "
                                f"{', '.join(line_channels)} carry no geometry (e.g. MRNet "
                                f".npy files hold no positions or orientations), so no "
                                f"intersection lines can be computed; use task.name=slices")
    if slice_location and not any(_has_stack(e, input_views) for c in caches for e in c.entries):
        stack_views = ", ".join(v for v in SLICE_LOCATION_VIEWS)
        raise PlaneSSLError(f"{names}: the task needs stacks of two or more slices of a "
                            f"slice-location view ({stack_views}) as inputs (input views: "
                            f"{', '.join(input_views)}; views: {have})")
    if not line_channels and not slice_location:  # the input image alone is the target
        return usable
    for cache, ids in zip(caches, usable):
        entries = [cache.entry(i) for i in ids]
        lines = bool(line_channels) and any(v in e["views"] for e in entries for v in line_channels)
        stacks = slice_location and any(_has_stack(e, input_views) for e in entries)
        if not (lines or stacks):
            wanted = []
            if line_channels:
                wanted.append(f"a line (view {', '.join(line_channels)} beside the input)")
            if slice_location:
                wanted.append("a slice location (a stack of two or more slices)")
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
