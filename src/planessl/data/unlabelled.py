"""Unlabelled images for semi-supervised fine-tuning.

Which studies: ``finetune.unlabelled`` lists ``pool`` (every study of the fine-tuning cache
that is neither test, nor validation, nor one of the N labelled training studies) and/or
other caches. A study whose id is a test, validation or labelled-training id is left out
of every unlabelled cache, so a test patient's images never reach training even when
another cache holds the same patient under the same id. Label maps of the unlabelled
studies are never read (only ``Series.pixels``).

Images are resampled once onto the margin grid of the labelled data
(:func:`planessl.data.labelled.margin_image`) and held in memory as float16 (half the
memory of float32; the values are scaled to about [0, 1], where float16 keeps 3 decimal
digits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from planessl.cache import Cache
from planessl.data.labelled import GridSpec, margin_image
from planessl.errors import PlaneSSLError
from planessl.tasks.semi_config import POOL


def unlabelled_sources(cache: Cache, unlabelled: Sequence[str], excluded: Sequence[str],
                       input_views: Sequence[str]) -> list[tuple[Cache, list[str]]]:
    """``(cache, study ids)`` of every unlabelled source.

    Args:
        cache: the fine-tuning cache (``pool`` draws from it).
        unlabelled: ``pool`` and / or cache folders.
        excluded: ids never used (test, validation and labelled training studies).
        input_views: only studies with one of these views are kept.

    Raises:
        PlaneSSLError: a folder that is not a cache, or no unlabelled study at all.
    """
    excluded_set = set(excluded)
    sources: list[tuple[Cache, list[str]]] = []
    seen: set[Path] = set()
    for item in unlabelled:
        src = cache if str(item) == POOL else Cache(item)
        where = Path(src.path).resolve()
        if where in seen:
            continue
        seen.add(where)
        ids = [e["id"] for e in src.entries
               if e["id"] not in excluded_set and any(v in e["views"] for v in input_views)]
        if ids:
            sources.append((src, ids))
    if not sources:
        raise PlaneSSLError(f"finetune.unlabelled={list(unlabelled)}: no unlabelled study with "
                            f"a {'/'.join(input_views)} series outside the test, validation "
                            f"and labelled studies")
    return sources


def unlabelled_frames(series, frames: str) -> list[int]:
    """Frames of a series to use: ``edes`` (its ED and ES frames where known, else every
    frame) or ``all``."""
    if frames == "edes":
        known = sorted({f for f in (series.ed_frame, series.es_frame) if f is not None})
        if known:
            return [int(f) for f in known]
    return list(range(series.n_frames))


class InMemoryUnlabelledDataset(Dataset):
    """Every input-view image (each slice of the chosen frames) of the unlabelled studies,
    on the margin grid, in memory.

    Items: ``(1, big, big)`` float32 images scaled to about [0, 1] (big = the margin grid
    side); augmentation and normalisation are applied by the caller
    (:mod:`planessl.data.semi_batches`).
    """

    def __init__(self, sources: Sequence[tuple[Cache, Sequence[str]]], spec: GridSpec,
                 margin: float = 1.0, frames: str = "edes") -> None:
        images = []
        self.ids: list[tuple[str, str]] = []
        for cache, ids in sources:
            for sid in ids:
                study = cache.load(sid)
                for series in study.series:
                    if series.view not in spec.input_views:
                        continue
                    for frame in unlabelled_frames(series, frames):
                        for k in range(series.n_slices):
                            image, _ = margin_image(series.pixels[k, frame], series.planes[k],
                                                    spec, margin)
                            images.append(image.astype(np.float16))
                self.ids.append((str(cache.path), sid))
        if not images:
            raise PlaneSSLError("finetune.unlabelled: the unlabelled studies hold no "
                                f"{'/'.join(spec.input_views)} images")
        self.images = torch.from_numpy(np.stack(images)[:, None])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index].float()
