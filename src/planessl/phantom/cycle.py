"""The cardiac cycle of the phantom: how far the ventricles have contracted at each frame.

Contraction ``c`` is 0 at end-diastole (ED, frame 0, the R wave) and 1 at end-systole (ES).
After ES the ventricles relax: rapid filling, a slow diastasis and the atrial kick bring
``c`` back to 0 at the next R wave. Everything that moves in :mod:`planessl.phantom.anatomy`
is a function of ``c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CardiacCycle:
    """Timing of one cine acquisition.

    Attributes:
        frames: number of frames over one R-R interval.
        rr_ms: R-R interval in milliseconds.
        es_frame: index of the end-systolic frame (ED is frame 0).
    """

    frames: int
    rr_ms: float
    es_frame: int

    @property
    def ed_frame(self) -> int:
        return 0

    def frame_times(self) -> list[float]:
        """Trigger time of each frame after the R wave, ms."""
        return [round(k * self.rr_ms / self.frames, 2) for k in range(self.frames)]

    def contraction(self) -> np.ndarray:
        """Contraction ``c`` in [0, 1] for every frame (0 at ED, exactly 1 at ES)."""
        return contraction_curve(self.frames, self.es_frame)


def contraction_curve(frames: int, es_frame: int) -> np.ndarray:
    """Contraction per frame: a half-cosine systole to ``es_frame``, then rapid filling
    (70 % of the refill in the first 40 % of diastole), diastasis and the atrial kick."""
    if frames < 2:
        return np.zeros(max(frames, 0))
    es_frame = int(np.clip(es_frame, 1, frames - 1))
    t = np.arange(frames, dtype=np.float64)
    c = np.empty(frames)
    sys = t <= es_frame
    c[sys] = 0.5 * (1 - np.cos(np.pi * t[sys] / es_frame))
    # Diastole: fraction of diastole elapsed, 0 at ES and 1 at the next R wave.
    d = (t[~sys] - es_frame) / (frames - es_frame)
    rapid = 0.7 * np.clip(d / 0.4, 0, 1) ** 0.7
    kick = 0.3 * np.clip((d - 0.75) / 0.25, 0, 1) ** 2
    slow = 0.1 * np.clip((d - 0.4) / 0.35, 0, 1)  # diastasis: a little more filling
    c[~sys] = np.clip(1 - rapid - slow - kick * (0.2 / 0.3), 0, 1)
    return c


def make_cycle(rng: np.random.Generator, frames: int) -> CardiacCycle:
    """A random heart rate (55-90 bpm) with ES at 30-40 % of the R-R interval."""
    rr = float(rng.uniform(650.0, 1100.0))
    es = int(round(frames * rng.uniform(0.30, 0.40)))
    return CardiacCycle(frames=int(frames), rr_ms=rr, es_frame=int(np.clip(es, 1, frames - 1)))
