"""Inputs and targets of the competing pretext methods, made per sample from the item's
seeded generator (so runs stay reproducible and resume exactly):

- :func:`rotate_quarter`: rotation prediction (Gidaris et al. 2018), 4 classes of 90°;
- :func:`genesis_corrupt`: Models Genesis (Zhou et al. 2019) restoration in 2D: non-linear
  intensity mapping, local pixel shuffling, in-painting or out-painting;
- :func:`intensity_jitter`: the colour-style augmentation of the two contrastive views
  (MONAI's random intensity transforms, seeded per item);
- :func:`anatomy_regions`: the anatomical-position target of Bai et al. (2019), the region
  of a SAX image that the long-axis planes cut it into.

Models Genesis' corruptions are not in MONAI (which has only coarse shuffling and dropout
without the Bézier intensity map and out-painting), so they are written here after the
paper's description, in 2D.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from planessl.geometry import Plane


# ----------------------------------------------------------------------------- rotation
def rotate_quarter(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``(image rotated by k x 90° counter-clockwise, k)`` with ``k`` uniform in 0..3."""
    k = int(rng.integers(4))
    return np.ascontiguousarray(np.rot90(image, k)), k


# ----------------------------------------------------------------------------- Models Genesis
def _bezier_map(values01: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Monotone cubic Bézier intensity map of [0, 1] onto itself with random inner control
    points, inverted with probability 0.5 (Models Genesis' non-linear transformation)."""
    p1, p2 = rng.random(2), rng.random(2)
    t = np.linspace(0.0, 1.0, 256)
    xs = 3 * (1 - t) ** 2 * t * p1[0] + 3 * (1 - t) * t ** 2 * p2[0] + t ** 3
    ys = 3 * (1 - t) ** 2 * t * p1[1] + 3 * (1 - t) * t ** 2 * p2[1] + t ** 3
    order = np.argsort(xs)
    out = np.interp(values01, xs[order], ys[order])
    if rng.random() < 0.5:
        out = 1.0 - out
    return out


def _local_shuffle(x: np.ndarray, rng: np.random.Generator, blocks: int = 40,
                   max_block: int = 8) -> np.ndarray:
    """Shuffle the pixels inside ``blocks`` random small windows (at most ``max_block`` px)."""
    out = x.copy()
    h, w = x.shape
    for _ in range(blocks):
        bh, bw = (int(v) for v in rng.integers(2, max_block + 1, size=2))
        i, j = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        window = out[i:i + bh, j:j + bw].ravel().copy()
        out[i:i + bh, j:j + bw] = rng.permutation(window).reshape(bh, bw)
    return out


def _painting(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """In-painting (random boxes replaced by noise) or out-painting (everything outside a
    random box replaced by noise), with probability 0.5 each."""
    h, w = x.shape
    out = x.copy()
    if rng.random() < 0.5:  # in-painting: a few boxes of 1/8 to 1/4 of the side
        for _ in range(int(rng.integers(1, 4))):
            bh, bw = int(rng.integers(h // 8, h // 4 + 1)), int(rng.integers(w // 8, w // 4 + 1))
            i, j = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
            out[i:i + bh, j:j + bw] = rng.random((bh, bw))
    else:  # out-painting: keep one box of 1/2 to 3/4 of the side
        noise = rng.random((h, w))
        bh, bw = int(rng.integers(h // 2, 3 * h // 4 + 1)), int(rng.integers(w // 2, 3 * w // 4 + 1))
        i, j = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        noise[i:i + bh, j:j + bw] = out[i:i + bh, j:j + bw]
        out = noise
    return out


def genesis_corrupt(image: np.ndarray, rng: np.random.Generator, p_nonlinear: float = 0.9,
                    p_shuffle: float = 0.5, p_paint: float = 0.9) -> np.ndarray:
    """A corrupted copy of a (z-scored) image for restoration; float32, same scale.

    The image is mapped to [0, 1] by its range, corrupted as in Models Genesis (each
    corruption with its probability; at least the intensity map when none was drawn), and
    mapped back, so the network sees inputs on the fine-tuning scale.
    """
    x = np.asarray(image, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo if hi > lo else 1.0
    y = (x - lo) / span
    applied = False
    if rng.random() < p_shuffle:
        y, applied = _local_shuffle(y, rng), True
    if rng.random() < p_nonlinear or not applied:
        y = _bezier_map(y, rng)
    if rng.random() < p_paint:
        y = _painting(y, rng)
    return (y * span + lo).astype(np.float32)


# ----------------------------------------------------------------------------- contrastive views
_JITTER = None


def _jitter_chain():
    """The MONAI intensity chain of :func:`intensity_jitter`, built once per process."""
    global _JITTER
    if _JITTER is None:
        from monai.transforms import (Compose, RandAdjustContrast, RandGaussianNoise,
                                      RandGaussianSmooth, RandScaleIntensity)
        _JITTER = Compose([RandAdjustContrast(prob=0.8, gamma=(0.6, 1.6)),
                           RandScaleIntensity(factors=0.3, prob=0.8),
                           RandGaussianSmooth(sigma_x=(0.25, 1.0), sigma_y=(0.25, 1.0),
                                              prob=0.3),
                           RandGaussianNoise(prob=0.5, std=0.1)])
    return _JITTER


def intensity_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random gamma, scale, Gaussian noise and blur (MONAI transforms, seeded from ``rng``),
    then z-scored again; float32 (H, W)."""
    x = np.asarray(image, dtype=np.float32)
    lo = float(x.min())
    pos = x - lo  # gamma needs non-negative values
    chain = _jitter_chain()
    # The noise level follows the image; the chain is reseeded from the item's generator.
    chain.transforms[-1].std = 0.1 * float(pos.std() or 1.0)
    chain.set_random_state(seed=int(rng.integers(2 ** 31 - 1)))
    out = np.asarray(chain(pos[None]), dtype=np.float32)[0]
    out -= out.mean()
    std = float(out.std())
    return out / std if std > 1e-6 else out


# ----------------------------------------------------------------------------- anatomical positions
def side_of_plane(target: Plane, other: Plane) -> np.ndarray:
    """``True`` where a pixel centre of ``target`` lies on the positive side of ``other``
    (along ``other``'s normal, DICOM row x column direction); shape ``target.shape``."""
    i = np.arange(target.shape[0], dtype=np.float64)[:, None]
    j = np.arange(target.shape[1], dtype=np.float64)[None, :]
    di, dj = target.spacing
    n = other.normal
    signed = (float(n @ (target.origin - other.origin)) + i * di * float(n @ target.col_dir)
              + j * dj * float(n @ target.row_dir))
    return signed > 0


def anatomy_regions(target: Plane, cutting: Sequence[Plane | None]) -> np.ndarray:
    """Region index of every pixel of ``target``: bit ``c`` is the side of cutting plane ``c``
    (``2 ** len(cutting)`` regions; Bai et al. cut the SAX image by the long-axis planes).
    Pixels are ``-1`` (ignored) when a cutting plane is missing or parallel to the image."""
    out = np.zeros(target.shape, dtype=np.int64)
    for c, plane in enumerate(cutting):
        if plane is None or abs(float(plane.normal @ target.normal)) > np.cos(np.deg2rad(10.0)):
            return np.full(target.shape, -1, dtype=np.int64)
        out += side_of_plane(target, plane).astype(np.int64) << c
    return out
