"""Pretext-task samples from a cache: an input image on a fixed grid with its line heatmaps
and slice-location target, all computed from the (augmented) target plane.

Studies are loaded lazily per item (:meth:`Cache.load`, arrays memory-mapped), so memory
does not grow with the number of studies beyond the index. Every random choice of an item
comes from ``numpy.random.default_rng([seed, epoch, index])``: a run is reproducible and
resumes exactly, whatever the number of workers. Several caches can be mixed in one dataset
with per-cache weights (:mod:`planessl.data.mixing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from planessl.cache import Cache
from planessl.data.mixing import EpochMix
from planessl.data.pretext_inputs import (anatomy_regions, genesis_corrupt, intensity_jitter,
                                          rotate_quarter)
from planessl.data.studies import OpenStudies
from planessl.data.transforms import (PlaneAugment, input_plane, normalise_intensity,
                                      resample_to_plane)
from planessl.errors import PlaneSSLError
from planessl.geometry import Plane, intersection_line
from planessl.study import (DEFAULT_KNEE_LATERALITY, SLICE_LOCATION_VIEWS, Series, Study,
                            mid_slice_index, slice_direction)
from planessl.targets import line_heatmap, slice_location_targets


@dataclass(frozen=True)
class SampleSpec:
    """What one sample holds.

    Attributes:
        input_views: view types drawn as inputs.
        line_channels: view types of the line-heatmap channels (may be empty).
        slice_location: compute the slice-location target (inputs from a SAX stack).
        image_size: output height = width (pixels).
        spacing_mm: output pixel spacing before zoom (mm).
        sigma_mm: heatmap width (mm).
        sigma_thickness_factor: if set, sigma = factor x other view's thickness (mm).
        clip_percentiles: intensity clipping before z-scoring.
        pretext_input: what the input is made into (:mod:`planessl.data.pretext_inputs`):
            ``image`` (as rendered), ``rotation`` (rotated by k x 90°, target ``rotation``),
            ``genesis`` (corrupted, target ``target`` = the clean image) or ``two_views``
            (a second augmented view ``image2``; both views intensity-jittered).
        region_channels: view types whose planes cut the image into anatomical regions
            (target ``regions``, Bai et al.); empty: none.
        stack_line: the planes of a multi-slice series of a line channel's view: ``all``
            (every slice) or ``mid`` (its middle slice only, :func:`mid_slice_index`: the
            mid-ventricular SAX slice, one line with its ``line_abc``).
        knee_laterality: the knee (``left`` / ``right``) assumed for a knee study that does
            not say which it is (:attr:`planessl.study.Study.laterality`): it decides
            which end of a sagittal stack is medial.
    """

    input_views: tuple[str, ...] = ("sax",)
    line_channels: tuple[str, ...] = ("2ch", "4ch")
    slice_location: bool = True
    image_size: int = 128
    spacing_mm: float = 2.0
    sigma_mm: float = 7.56
    sigma_thickness_factor: float | None = None
    clip_percentiles: tuple[float, float] = (1.0, 99.0)
    pretext_input: str = "image"
    region_channels: tuple[str, ...] = ()
    stack_line: str = "all"
    knee_laterality: str = DEFAULT_KNEE_LATERALITY


PRETEXT_INPUTS = ("image", "rotation", "genesis", "two_views")
#: Values of :attr:`SampleSpec.stack_line`.
STACK_LINES = ("all", "mid")


def channel_planes(study: Study, view: str, exclude: Series | None = None,
                   stack_line: str = "all") -> list[Plane]:
    """Planes whose lines make the line channel of ``view``: those of every series of that
    view with known spacing except ``exclude`` (the input's own series); of a multi-slice
    series, every slice (``stack_line="all"``) or its middle slice (``"mid"``)."""
    if stack_line not in STACK_LINES:
        raise PlaneSSLError(f"stack_line must be one of {', '.join(STACK_LINES)}, got "
                            f"{stack_line!r}")
    out: list[Plane] = []
    for s in study.series:
        if s.view != view or not s.spacing_known or s is exclude:
            continue
        if stack_line == "mid" and len(s.planes) > 1:
            out.append(s.planes[mid_slice_index(s.planes)])
        else:
            out.extend(s.planes)
    return out


def input_images(study: Study, input_views: Sequence[str]) -> list[tuple[int, int, int]]:
    """Every ``(series index, slice, frame)`` of the study's input views."""
    out = []
    for s_idx, s in enumerate(study.series):
        if s.view in input_views:
            out.extend((s_idx, k, f) for k in range(s.n_slices) for f in range(s.n_frames))
    return out


def _series_slice_targets(series: Series, laterality: str | None = None) -> np.ndarray | None:
    """Relative slice location of each slice of a stack (:data:`SLICE_LOCATION_VIEWS`): SAX
    0 base, 1 apex; knee sagittal 0 medial, 1 lateral (``laterality``: which knee; ``None``:
    :data:`DEFAULT_KNEE_LATERALITY`), coronal 0 posterior, 1 anterior, axial 0 inferior,
    1 superior (:func:`planessl.study.slice_direction`). Without a known spacing the
    geometry is nominal, so the stored order is used (MRNet: as the files hold them)."""
    if series.view not in SLICE_LOCATION_VIEWS or series.n_slices < 2:
        return None
    if not series.spacing_known:
        return np.linspace(0.0, 1.0, series.n_slices, dtype=np.float32)
    try:
        return slice_location_targets(series.planes,
                                      toward=slice_direction(series.view, laterality))
    except PlaneSSLError:
        return None


def make_sample(study: Study, series_idx: int, slice_idx: int, frame: int, spec: SampleSpec,
                augment: PlaneAugment | None, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """One sample: ``image`` (1, H, W), ``lines`` (C, H, W), ``line_mask`` (C,),
    ``line_abc`` (C, 3) true line ``a*i + b*j + c = 0`` in output pixels (NaN when absent or
    made of several planes), ``slice`` (1,), ``slice_mask`` (1,), ``spacing`` (2,) mm."""
    series = study.series[series_idx]
    source = series.planes[slice_idx]
    grid = input_plane(source, spec.spacing_mm, spec.image_size)
    target = augment(grid, rng) if augment is not None else grid
    raw = np.asarray(series.pixels[slice_idx, frame], dtype=np.float32)

    def render(plane: Plane) -> np.ndarray:
        return normalise_intensity(resample_to_plane(raw, source, plane, cval=float(raw.min())),
                                   spec.clip_percentiles)

    image = render(target)

    n_ch = len(spec.line_channels)
    lines = np.zeros((n_ch, spec.image_size, spec.image_size), dtype=np.float32)
    mask = np.zeros(n_ch, dtype=np.float32)
    abc = np.full((n_ch, 3), np.nan, dtype=np.float32)
    if series.spacing_known:  # nominal geometry has no true lines
        for c, view in enumerate(spec.line_channels):
            others = channel_planes(study, view, series, spec.stack_line)
            if not others:
                continue
            sigma = spec.sigma_mm
            if spec.sigma_thickness_factor is not None and others[0].thickness is not None:
                sigma = spec.sigma_thickness_factor * others[0].thickness
            heat = line_heatmap(target, others, sigma_mm=sigma)
            if heat is None:
                continue
            lines[c], mask[c] = heat, 1.0
            if len(others) == 1:
                line = intersection_line(target, others[0])
                abc[c] = (line.a, line.b, line.c)

    slice_target = np.zeros(1, dtype=np.float32)
    slice_mask = np.zeros(1, dtype=np.float32)
    if spec.slice_location:
        rel = _series_slice_targets(series, study.laterality or spec.knee_laterality)
        if rel is not None:
            slice_target[0], slice_mask[0] = rel[slice_idx], 1.0
    sample = {"lines": torch.from_numpy(lines),
              "line_mask": torch.from_numpy(mask), "line_abc": torch.from_numpy(abc),
              "slice": torch.from_numpy(slice_target), "slice_mask": torch.from_numpy(slice_mask),
              "spacing": torch.tensor(target.spacing, dtype=torch.float32)}
    if spec.region_channels:
        cutting = []
        for view in spec.region_channels:
            planes = ([p for s in study.series if s.view == view and s.spacing_known
                       and s is not series for p in s.planes] if series.spacing_known else [])
            cutting.append(planes[len(planes) // 2] if planes else None)
        sample["regions"] = torch.from_numpy(anatomy_regions(target, cutting))
    if spec.pretext_input == "rotation":
        image, k = rotate_quarter(image, rng)
        sample["rotation"] = torch.tensor(k, dtype=torch.int64)
    elif spec.pretext_input == "genesis":
        sample["target"] = torch.from_numpy(image[None].copy())
        image = genesis_corrupt(image, rng)
    elif spec.pretext_input == "two_views":
        second = render(augment(grid, rng)) if augment is not None else image
        sample["image2"] = torch.from_numpy(intensity_jitter(second, rng)[None])
        image = intensity_jitter(image, rng)
    elif spec.pretext_input != "image":
        raise PlaneSSLError(f"unknown pretext input {spec.pretext_input!r}; known: "
                            f"{', '.join(PRETEXT_INPUTS)}")
    sample["image"] = torch.from_numpy(np.ascontiguousarray(image)[None])
    return sample


class PretrainDataset(OpenStudies, Dataset):
    """Pretext samples over studies of one cache, or of several mixed by weights.

    Args:
        cache: the cache, or several caches (only their paths and indexes are kept).
        ids: study ids to draw from; with several caches, one sequence per cache.
        spec: what a sample holds.
        augment: random plane augmentation, or ``None``.
        sampling: ``random``: an item is one random input image (slice, frame) of a study,
            ``repeats`` items per study and epoch; ``all``: every input image once.
        seed: base seed of every random choice.
        repeats: items per study (``random``) or image (``all``) in an epoch.
        weights: relative share of each cache in an epoch; ``None``: proportional to its
            studies (``all``: images), i.e. each once per epoch (see :mod:`planessl.data.mixing`).

    Items are addressed by an index or by ``(epoch, index)`` (see :class:`EpochSampler`);
    the randomness of an item, including which cache and study it is, depends only on
    ``(seed, epoch, index)``.
    """

    def __init__(self, cache: Cache | Sequence[Cache], ids: Sequence[str] | Sequence[Sequence[str]],
                 spec: SampleSpec, augment: PlaneAugment | None = None, sampling: str = "random",
                 seed: int = 0, repeats: int = 1, weights: Sequence[float] | None = None) -> None:
        if sampling not in ("random", "all"):
            raise PlaneSSLError(f"data.sampling must be 'random' or 'all', got {sampling!r}")
        caches = [cache] if isinstance(cache, Cache) else list(cache)
        id_lists = [list(ids)] if isinstance(cache, Cache) else [list(i) for i in ids]
        if len(id_lists) != len(caches):
            raise PlaneSSLError(f"{len(id_lists)} id lists for {len(caches)} caches")
        self.cache_paths = [c.path for c in caches]
        self.cache_path = self.cache_paths[0]
        self.ids = id_lists
        self.spec, self.augment, self.sampling = spec, augment, sampling
        self.seed, self.repeats = int(seed), int(repeats)
        # Units of each cache: study indices (random) or (study, series, slice, frame) rows.
        self.index: list[np.ndarray] | None = None
        if sampling == "all":
            self.index = [self._all_images(c, i) for c, i in zip(caches, id_lists)]
            sizes = [len(rows) for rows in self.index]
        else:
            sizes = [len(i) for i in id_lists]
        self.mix = EpochMix(sizes, weights, self.repeats, self.seed)

    def _all_images(self, cache: Cache, ids: list[str]) -> np.ndarray:
        rows = []
        for k, sid in enumerate(ids):
            for s_idx, s in enumerate(cache.meta(sid)["series"]):
                if s["view"] in self.spec.input_views:
                    n_s, n_f = s["shape"][0], s["shape"][1]
                    rows.extend((k, s_idx, a, b) for a in range(n_s) for b in range(n_f))
        return np.asarray(rows, dtype=np.int32).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.mix)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, idx = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, int(epoch), int(idx)])
        part, unit = self.mix.locate(int(epoch), int(idx))
        path, ids = self.cache_paths[part], self.ids[part]
        if self.index is not None:
            k, s_idx, slc, frame = (int(v) for v in self.index[part][unit])
            study = self._study(ids[k], path)
        else:
            study = self._study(ids[unit], path)
            choices = input_images(study, self.spec.input_views)
            if not choices:
                raise PlaneSSLError(f"{path}: study {study.id} has no input view "
                                    f"({', '.join(self.spec.input_views)})")
            # Uniform over slices, then a random frame (the reference's "random slice and frame").
            slices = sorted({(s, k) for s, k, _ in choices})
            s_idx, slc = slices[int(rng.integers(len(slices)))]
            frame = int(rng.integers(study.series[s_idx].n_frames))
        return make_sample(study, s_idx, slc, frame, self.spec, self.augment, rng)


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys: a seeded shuffle per epoch, split across processes
    (padded by repetition so every rank gets the same number, like DistributedSampler).
    Lightning calls :meth:`set_epoch` at the start of every epoch."""

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1, follow_epoch: bool = True) -> None:
        self.n, self.shuffle, self.seed = int(n), bool(shuffle), int(seed)
        self.follow_epoch = bool(follow_epoch)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Next epoch's keys (ignored with ``follow_epoch=False``: fixed validation items)."""
        if self.follow_epoch:
            self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.n // self.world_size)

    def __iter__(self):
        order = (np.random.default_rng([self.seed, self.epoch, 7919]).permutation(self.n)
                 if self.shuffle else np.arange(self.n))
        total = len(self) * self.world_size
        if total > self.n:
            order = np.concatenate([order, order[: total - self.n]])
        for idx in order[self.rank::self.world_size]:
            yield (self.epoch, int(idx))
