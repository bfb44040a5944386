"""Labelled samples for fine-tuning: images with their label maps (segmentation) or their
study-level class (classification), on the same input grid as pretraining.

Images and label maps are resampled with the pretraining transforms
(:mod:`planessl.data.transforms`): the network sees the same pixel spacing, field of view and
intensity normalisation as when it was pretrained. Label maps are resampled with nearest
neighbour on the same (augmented) target plane, so they stay aligned with the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from planessl.cache import Cache
from planessl.data.studies import OpenStudies
from planessl.data.transforms import (PlaneAugment, input_plane, normalise_intensity,
                                      resample_to_plane)
from planessl.errors import PlaneSSLError
from planessl.geometry import Plane
from planessl.study import Series, Study


@dataclass(frozen=True)
class GridSpec:
    """The network's input grid: ``image_size`` pixels of ``spacing_mm`` (nominal mm when
    the source spacing is unknown), intensities clipped to percentiles then z-scored."""

    image_size: int = 128
    spacing_mm: float = 2.0
    clip_percentiles: tuple[float, float] = (1.0, 99.0)
    input_views: tuple[str, ...] = ("sax",)


def phase_of(series: Series, frame: int) -> str:
    """``"ED"``, ``"ES"`` or ``"F<frame>"`` for a frame of a series."""
    if series.ed_frame is not None and frame == series.ed_frame:
        return "ED"
    if series.es_frame is not None and frame == series.es_frame:
        return "ES"
    return f"F{frame}"


def labelled_volumes(study: Study, views: Sequence[str] = ("sax",),
                     edes_only: bool = False) -> list[tuple[int, int]]:
    """``(series index, frame)`` of every labelled frame of the study's ``views``
    (``edes_only``: only ED and ES where they are labelled, else every labelled frame)."""
    out = []
    for s_idx, s in enumerate(study.series):
        if s.view not in views or s.labels is None:
            continue
        frames = [int(f) for f in s.labelled_frames]
        edes = [f for f in frames if f in (s.ed_frame, s.es_frame)]
        out.extend((s_idx, f) for f in (edes if edes_only and edes else frames))
    return out


def image_on_grid(raw: np.ndarray, source: Plane, spec: GridSpec,
                  augment: PlaneAugment | None = None,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, Plane]:
    """A 2D image resampled onto the (optionally augmented) input grid and normalised."""
    target = input_plane(source, spec.spacing_mm, spec.image_size)
    if augment is not None:
        target = augment(target, rng if rng is not None else np.random.default_rng())
    raw = np.asarray(raw, dtype=np.float32)
    image = resample_to_plane(raw, source, target, cval=float(raw.min()))
    return normalise_intensity(image, spec.clip_percentiles).astype(np.float32, copy=False), target


def labels_on_grid(labels: np.ndarray, source: Plane, target: Plane) -> np.ndarray:
    """A label map resampled (nearest neighbour) from its plane onto ``target``."""
    out = resample_to_plane(np.asarray(labels, dtype=np.float32), source, target, order=0,
                            cval=0.0, antialias=False)
    return np.rint(out).astype(np.int64)


def labels_to_source(probs: np.ndarray, grid: Plane, source: Plane) -> np.ndarray:
    """Class probabilities ``(C, H, W)`` on the input grid → label map on the source grid
    (bilinear on each probability, then argmax; outside the grid: background)."""
    back = np.stack([resample_to_plane(p, grid, source, order=1, cval=1.0 if c == 0 else 0.0,
                                       antialias=False) for c, p in enumerate(probs)])
    return back.argmax(0).astype(np.uint8)


class SegmentationDataset(OpenStudies, Dataset):
    """Every labelled 2D image (slice x labelled frame) of the given studies.

    Items: ``image`` (1, H, W) float32, ``label`` (1, H, W) int64. Label values of
    ``n_classes`` and above (extra structures such as atria) become background.
    Augmentation randomness comes from torch's generator (seeded by the engine).
    """

    def __init__(self, cache: Cache, ids: Sequence[str], spec: GridSpec,
                 augment: PlaneAugment | None = None, n_classes: int = 4,
                 edes_only: bool = False) -> None:
        self.cache_path = cache.path
        self.spec, self.augment, self.n_classes = spec, augment, n_classes
        self.items: list[tuple[str, int, int, int]] = []
        for sid in ids:
            study = cache.load(sid)
            for s_idx, frame in labelled_volumes(study, spec.input_views, edes_only):
                self.items.extend((sid, s_idx, k, frame)
                                  for k in range(study.series[s_idx].n_slices))
        if not self.items:
            raise PlaneSSLError(f"{cache.path}: no labelled {'/'.join(spec.input_views)} images "
                                f"in the {len(ids)} selected studies")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sid, s_idx, k, frame = self.items[index]
        series = self._study(sid).series[s_idx]
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        image, target = image_on_grid(series.pixels[k, frame], series.planes[k], self.spec,
                                      self.augment, rng)
        label = labels_on_grid(series.labels[k, frame], series.planes[k], target)
        label[label >= self.n_classes] = 0
        return {"image": torch.from_numpy(image[None]), "label": torch.from_numpy(label[None])}


def study_target(study_entry: dict, key: str) -> int | None:
    """The integer class ``key`` of a study (manifest entry), or ``None``."""
    value = study_entry.get("targets", {}).get(key)
    return None if value is None else int(value)


class ClassificationDataset(OpenStudies, Dataset):
    """Study-level classification: each item is one image of a study with the study's class.

    Training draws a random slice and frame of an input view per item (``images_per_study``
    items per study and epoch); evaluation uses every image (see ``predict``).
    Items: ``image`` (1, H, W) float32, ``target`` () int64.
    """

    def __init__(self, cache: Cache, ids: Sequence[str], spec: GridSpec, key: str,
                 augment: PlaneAugment | None = None, images_per_study: int = 4) -> None:
        self.cache_path = cache.path
        self.spec, self.augment, self.key = spec, augment, key
        self.studies: list[tuple[str, int, list[tuple[int, int, int]]]] = []
        for sid in ids:
            target = study_target(cache.entry(sid), key)
            if target is None:
                raise PlaneSSLError(f"{cache.path}: study {sid} has no target {key!r}")
            study = cache.load(sid)
            images = [(s_idx, k, f) for s_idx, s in enumerate(study.series) if s.view in spec.input_views
                      for k in range(s.n_slices) for f in range(s.n_frames)]
            if not images:
                raise PlaneSSLError(f"{cache.path}: study {sid} has no {'/'.join(spec.input_views)} images")
            self.studies.append((sid, target, images))
        self.images_per_study = images_per_study

    def __len__(self) -> int:
        return len(self.studies) * self.images_per_study

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sid, target, images = self.studies[index // self.images_per_study]
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        s_idx, k, f = images[int(rng.integers(len(images)))]
        series = self._study(sid).series[s_idx]
        image, _ = image_on_grid(series.pixels[k, f], series.planes[k], self.spec, self.augment, rng)
        return {"image": torch.from_numpy(image[None]), "target": torch.tensor(target)}
