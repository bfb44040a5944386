"""Mixing several caches in one pretraining epoch: how many items each cache gets, and
which of its units (studies, or images with ``sampling=all``) an item is.

An epoch has ``sum(units) x repeats`` items, as with one cache (the reference's one sample
per study per epoch). They are shared among the caches in proportion to their weights by
largest remainders, so the mix is exact in every epoch rather than a random draw. Within a
cache, ``n`` items over ``S`` units take every unit ``n // S`` times and a seeded random
subset (per epoch) of ``n % S`` units for the rest: with the default weights (proportional to
the units) each unit comes exactly once per epoch, and one cache behaves as before mixing.

Why not ``ConcatDataset`` + ``WeightedRandomSampler``: their draws come from a generator
whose state advances with every iterator and is not in Lightning's checkpoint, so a resumed
run (or a different number of workers or ranks) would see other samples. Here an item is a
pure function of ``(seed, epoch, index)``: runs are reproducible and resume exactly.
"""

from __future__ import annotations

import bisect
from fractions import Fraction
from math import floor
from typing import Sequence

import numpy as np

from planessl.errors import PlaneSSLError


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` items in proportion to ``weights`` (largest remainders, ties to the
    earlier entry; exact rational arithmetic, so the result never depends on rounding)."""
    fr = [Fraction(w) for w in weights]
    s = sum(fr)
    if not fr or s <= 0 or any(f < 0 for f in fr):
        raise PlaneSSLError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
    quotas = [total * f / s for f in fr]
    counts = [floor(q) for q in quotas]
    left = total - sum(counts)
    order = sorted(range(len(fr)), key=lambda k: (-(quotas[k] - counts[k]), k))
    for k in order[:left]:
        counts[k] += 1
    return counts


class EpochMix:
    """Items of an epoch over several parts (caches) of ``sizes`` units each.

    Args:
        sizes: units per part (training studies, or images with ``sampling=all``).
        weights: relative share of each part in an epoch; ``None``: proportional to
            ``sizes`` (every unit once per epoch and repeat).
        repeats: items per unit in an epoch (the epoch has ``sum(sizes) * repeats`` items).
        seed: seed of the per-epoch choice of units for a part's remainder.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float] | None = None,
                 repeats: int = 1, seed: int = 0) -> None:
        self.sizes = [int(n) for n in sizes]
        self.seed = int(seed)
        weights = self.sizes if weights is None else list(weights)
        if len(weights) != len(self.sizes):
            raise PlaneSSLError(f"{len(weights)} cache weights for {len(self.sizes)} caches")
        self.counts = allocate(sum(self.sizes) * int(repeats), weights)
        for k, (n, size) in enumerate(zip(self.counts, self.sizes)):
            if n and not size:
                raise PlaneSSLError(f"cache {k + 1} has a weight but nothing to draw from")
        self.offsets = [0]
        for n in self.counts:
            self.offsets.append(self.offsets[-1] + n)
        self._perm: tuple[tuple[int, int], np.ndarray] | None = None

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, epoch: int, index: int) -> tuple[int, int]:
        """``(part, unit)`` of item ``index`` of ``epoch``."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of an epoch of {len(self)}")
        part = bisect.bisect_right(self.offsets, index) - 1
        k, size = index - self.offsets[part], self.sizes[part]
        full = (self.counts[part] // size) * size
        if k < full:
            return part, k % size
        key = (int(epoch), part)
        if self._perm is None or self._perm[0] != key:
            rng = np.random.default_rng([self.seed, key[0], part, 7927])
            self._perm = (key, rng.permutation(size))
        return part, int(self._perm[1][k - full])
