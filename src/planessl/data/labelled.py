"""Labelled samples for fine-tuning: images with their label maps (segmentation) or their
study-level class (classification), on the same input grid as pretraining.

Images and label maps are resampled with the pretraining transforms
(:mod:`planessl.data.transforms`): the network sees the same pixel spacing, field of view and
intensity normalisation as when it was pretrained. Label maps are resampled with nearest
neighbour on the same plane, so they stay aligned with the image. Segmentation images are
resampled once and held in memory (:class:`InMemorySegmentationDataset`), augmented on the
fly with MONAI (:mod:`planessl.data.augment`).
"""

from __future__ import annotations

import os
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


def margin_size(image_size: int, margin: float) -> int:
    """Side (pixels) of the in-memory grid: at least ``image_size``, larger by an even
    number of pixels so that its centre crop is exactly the input grid."""
    extra = max(0, int(round(image_size * (margin - 1.0) / 2.0)))
    return int(image_size) + 2 * extra


def margin_image(raw: np.ndarray, source: Plane, spec: GridSpec,
                 margin: float) -> tuple[np.ndarray, Plane]:
    """A 2D image resampled onto the input grid widened by ``margin`` (:func:`margin_size`),
    scaled to about [0, 1] by the 0.5 and 99.5 percentiles of its central input-grid part;
    returns the image and its grid plane."""
    size = spec.image_size
    big = margin_size(size, margin)
    pad = (big - size) // 2
    grid = input_plane(source, spec.spacing_mm, size).crop(-pad, -pad, big, big)
    raw = np.asarray(raw, dtype=np.float32)
    image = resample_to_plane(raw, source, grid, cval=float(raw.min()))
    centre = image[pad:pad + size, pad:pad + size]
    lo, hi = np.percentile(centre, [0.5, 99.5])
    return (image - lo) / max(float(hi - lo), 1e-6), grid


def transformed_item(transform, image: torch.Tensor, label: torch.Tensor | None,
                     percentiles: tuple[float, float]) -> dict[str, torch.Tensor]:
    """A margin-grid image (and label map) through the MONAI ``transform`` (with the
    transform's current random state), then clipped and z-scored like ``predict``'s
    inputs. Returns ``image`` (1, H, W) float32 and, with a label, ``label`` (1, H, W) int64."""
    from monai.data import get_track_meta, set_track_meta

    tracking = get_track_meta()
    set_track_meta(False)  # plain tensors: MONAI's metadata is not needed here
    try:
        data = {"image": image} if label is None else {"image": image, "label": label.float()}
        item = transform(data)
    finally:
        set_track_meta(tracking)
    out = normalise_intensity(torch.as_tensor(item["image"])[0].numpy(), percentiles)
    result = {"image": torch.from_numpy(np.ascontiguousarray(out[None]))}
    if label is not None:
        result["label"] = torch.as_tensor(item["label"]).round().long().contiguous()
    return result


class InMemorySegmentationDataset(Dataset):
    """Every labelled 2D image of the given studies, resampled once and held in memory.

    Each image is resampled onto the input grid that ``predict`` uses, widened by a margin
    (``margin_size``) so that augmentation samples real image, and scaled to about [0, 1]
    by the percentiles of its central input-grid part; its label map follows with nearest
    neighbour. An item applies the MONAI ``transform`` (spatial and intensity augmentation
    that returns the central ``image_size`` pixels; see :mod:`planessl.data.augment`), then
    the same per-image clipping and z-scoring as ``predict``.

    Items: ``image`` (1, H, W) float32, ``label`` (1, H, W) int64. Label values of
    ``n_classes`` and above become background. The randomness of an item comes from
    torch's generator (seeded by the engine), so a seeded run repeats exactly.
    """

    def __init__(self, cache: Cache, ids: Sequence[str], spec: GridSpec, transform,
                 margin: float = 1.0, n_classes: int = 4, edes_only: bool = False) -> None:
        self.spec, self.transform, self.n_classes = spec, transform, n_classes
        images, labels = [], []
        for sid in ids:
            study = cache.load(sid)
            for s_idx, frame in labelled_volumes(study, spec.input_views, edes_only):
                series = study.series[s_idx]
                for k in range(series.n_slices):
                    source = series.planes[k]
                    image, grid = margin_image(series.pixels[k, frame], source, spec, margin)
                    images.append(image)
                    label = labels_on_grid(series.labels[k, frame], source, grid)
                    label[label >= n_classes] = 0
                    labels.append(label.astype(np.uint8))
        if not images:
            raise PlaneSSLError(f"{cache.path}: no labelled {'/'.join(spec.input_views)} images "
                                f"in the {len(ids)} selected studies")
        self.images = torch.from_numpy(np.stack(images)[:, None].astype(np.float32))
        self.labels = torch.from_numpy(np.stack(labels)[:, None])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        # The transforms' random state is seeded once per process from torch's generator
        # (seeded by the engine, per worker by Lightning), then runs on: reproducible,
        # without re-seeding every transform per item.
        if self.__dict__.get("_seeded_pid") != os.getpid():
            if hasattr(self.transform, "set_random_state"):
                self.transform.set_random_state(seed=int(torch.randint(0, 2**31 - 1, (1,))))
            self._seeded_pid = os.getpid()
        return self.transformed(index)

    def transformed(self, index: int) -> dict[str, torch.Tensor]:
        """Item ``index`` drawn with the transform's current random state (no seeding;
        :mod:`planessl.data.semi_batches` seeds it per item for exact resume)."""
        return transformed_item(self.transform, self.images[index], self.labels[index],
                                self.spec.clip_percentiles)


def exam_slices(series: Series, count: int, rng: np.random.Generator | None = None) -> list[int]:
    """``count`` slice indices spread evenly over a stack (in its stored order; repeated
    when the stack has fewer slices); with ``rng``, each moved by up to one slice."""
    n = series.n_slices
    idx = np.rint(np.linspace(0, n - 1, count)).astype(int)
    if rng is not None and n > 1:
        idx = np.clip(idx + rng.integers(-1, 2, size=count), 0, n - 1)
    return [int(k) for k in idx]


def study_targets(study_entry: dict, keys: Sequence[str]) -> list[int] | None:
    """The integer targets ``keys`` of a study (manifest entry), or ``None`` if one lacks."""
    values = [study_target(study_entry, k) for k in keys]
    return None if any(v is None for v in values) else [int(v) for v in values]


def exam_images(study: Study, spec: GridSpec, count: int, augment: PlaneAugment | None = None,
                rng: np.random.Generator | None = None) -> np.ndarray | None:
    """``(V * count, 1, H, W)`` images of an exam: ``count`` slices of the first series of
    each input view (in ``spec.input_views`` order; frame: ED when known, else 0) on the
    input grid; ``None`` when a view is missing."""
    out = []
    for view in spec.input_views:
        series = next((s for s in study.series if s.view == view), None)
        if series is None:
            return None
        frame = series.ed_frame if series.ed_frame is not None else 0
        for k in exam_slices(series, count, rng if augment is not None else None):
            img, _ = image_on_grid(series.pixels[k, frame], series.planes[k], spec, augment, rng)
            out.append(img)
    return np.stack(out)[:, None].astype(np.float32)


class ExamClassificationDataset(OpenStudies, Dataset):
    """Exam-level classification: each item is an exam, ``slices`` slices of every input
    view (see :func:`exam_images`) with the study's targets.

    Items: ``image`` (V * slices, 1, H, W) float32; ``target`` (K,) int64 for several
    ``keys`` (multi-label), else () int64.
    """

    def __init__(self, cache: Cache, ids: Sequence[str], spec: GridSpec, keys: Sequence[str],
                 augment: PlaneAugment | None = None, slices: int = 8,
                 multilabel: bool = True) -> None:
        self.cache_path = cache.path
        self.spec, self.augment, self.keys, self.slices = spec, augment, list(keys), int(slices)
        self.multilabel = multilabel
        self.studies: list[tuple[str, list[int]]] = []
        for sid in ids:
            entry = cache.entry(sid)
            targets = study_targets(entry, self.keys)
            if targets is None:
                raise PlaneSSLError(f"{cache.path}: study {sid} lacks target(s) "
                                    f"{', '.join(k for k in self.keys if study_target(entry, k) is None)}")
            missing = [v for v in spec.input_views if v not in entry["views"]]
            if missing:
                raise PlaneSSLError(f"{cache.path}: study {sid} has no {'/'.join(missing)} series "
                                    f"(exam-level classification pools over "
                                    f"{'/'.join(spec.input_views)})")
            self.studies.append((sid, targets))

    def __len__(self) -> int:
        return len(self.studies)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sid, targets = self.studies[index]
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        images = exam_images(self._study(sid), self.spec, self.slices, self.augment, rng)
        target = torch.tensor(targets if self.multilabel else targets[0], dtype=torch.int64)
        return {"image": torch.from_numpy(images), "target": target}
