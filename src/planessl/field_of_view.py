"""The input grid that a cache's field of view asks for: a network input of ``size x size``
pixels of ``spacing`` mm that is much wider than the images is mostly padding, and costs
compute in proportion to its area (a 145 mm knee field of view on the 256 mm cardiac default
grid, 128 px at 2 mm, fills a third of it)."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from planessl.cache import Cache


def field_of_view_mm(cache: Cache, ids: Iterable[str], views: Sequence[str]) -> float | None:
    """The median over studies of each study's widest field of view among its series of
    ``views`` (max of rows x row spacing, columns x column spacing; mm, or the nominal unit
    of sources without a spacing); ``None`` when no study has such a series."""
    per_study = []
    for sid in ids:
        widest = 0.0
        for s in cache.meta(sid)["series"]:
            if s["view"] not in views or not s["planes"]:
                continue
            di, dj = s["planes"][0]["spacing"]
            rows, cols = s["shape"][2], s["shape"][3]
            widest = max(widest, rows * float(di), cols * float(dj))
        if widest > 0:
            per_study.append(widest)
    return float(np.median(per_study)) if per_study else None


def image_size_for(fov_mm: float, spacing_mm: float, depth: int, default: int) -> int:
    """The smallest size in pixels, a multiple of ``2**depth`` (the backbone's poolings), that
    covers ``fov_mm`` at ``spacing_mm``, never above ``default`` (a grid is only narrowed)."""
    step = 2 ** depth
    size = step * math.ceil(fov_mm / spacing_mm / step)
    return int(min(default, max(step, size)))
