"""Geometry-aware 2D transforms: every crop, zoom, rotation and flip is a new :class:`Plane`.

An image is resampled from its source plane onto a target plane built with the
:class:`~planessl.geometry.Plane` transforms, so targets computed from the target plane
(line heatmaps) stay exact under augmentation. Intensities are normalised per image:
clipped to percentiles, then z-scored, in float32 (never through an 8-bit cast).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from planessl.geometry import Plane


def input_plane(source: Plane, spacing_mm: float, size: int) -> Plane:
    """The network's input grid for an image: ``size x size`` pixels of ``spacing_mm``
    centred on the source field of view (cropped or padded)."""
    return source.resample((spacing_mm, spacing_mm)).centre_crop(size, size)


@dataclass(frozen=True)
class PlaneAugment:
    """Random in-plane augmentation of a target plane.

    Attributes:
        rotation_deg: rotation uniform in ``[-r, r]`` degrees about the image centre.
        zoom: magnification uniform in ``[lo, hi]`` (> 1 zooms in).
        shift_mm: shift of the field of view uniform in ``[-s, s]`` mm per axis.
        flip: left-right mirror with probability 0.5.
    """

    rotation_deg: float = 15.0
    zoom: tuple[float, float] = (0.9, 1.1)
    shift_mm: float = 10.0
    flip: bool = True

    def __call__(self, plane: Plane, rng: np.random.Generator) -> Plane:
        di, dj = plane.spacing
        rows, cols = plane.shape
        if self.shift_mm > 0:
            si, sj = rng.uniform(-self.shift_mm, self.shift_mm, size=2)
            plane = plane.crop(si / di, sj / dj, rows, cols)
        if self.rotation_deg > 0:
            plane = plane.rotate(float(rng.uniform(-self.rotation_deg, self.rotation_deg)))
        lo, hi = self.zoom
        if hi > lo or lo != 1.0:
            plane = plane.zoom(float(rng.uniform(lo, hi)))
        if self.flip and rng.random() < 0.5:
            plane = plane.flip_cols()
        return plane


def pixel_affine(source: Plane, target: Plane) -> tuple[np.ndarray, np.ndarray]:
    """``(matrix, offset)`` mapping a target pixel index ``(i, j)`` to the source pixel
    index of the same world point projected onto the source plane:
    ``src = matrix @ (i, j) + offset``."""
    ti, tj = target.spacing
    si, sj = source.spacing
    m = np.array([[ti * (target.col_dir @ source.col_dir) / si, tj * (target.row_dir @ source.col_dir) / si],
                  [ti * (target.col_dir @ source.row_dir) / sj, tj * (target.row_dir @ source.row_dir) / sj]])
    d = target.origin - source.origin
    off = np.array([d @ source.col_dir / si, d @ source.row_dir / sj])
    return m, off


def resample_to_plane(pixels: np.ndarray, source: Plane, target: Plane, order: int = 1,
                      cval: float = 0.0, antialias: bool = True) -> np.ndarray:
    """Resample a 2D image from its plane onto another plane of the same orientation
    family (in-plane transforms of it), float32, shape ``target.shape``.

    Points outside the source field of view get ``cval``. When the target pixels are much
    larger than the source pixels, the source is first smoothed with a Gaussian (sigma in
    source pixels = (ratio - 1) / 2) so that downsampling does not alias.
    """
    image = np.asarray(pixels, dtype=np.float32)
    m, off = pixel_affine(source, target)
    if antialias:
        ratio = np.linalg.norm(m, axis=1)  # source pixels per target pixel, per source axis
        sigma = np.where(ratio > 1.5, (ratio - 1) / 2, 0.0)
        if np.any(sigma > 0):
            image = ndimage.gaussian_filter(image, sigma=sigma, mode="nearest")
    return ndimage.affine_transform(image, m, offset=off, output_shape=target.shape, order=order,
                                    mode="constant", cval=cval, prefilter=False)


def normalise_intensity(image: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> np.ndarray:
    """Clip to the image's own ``percentiles`` then z-score; float32. A constant image
    becomes zeros."""
    image = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(image, percentiles)
    out = np.clip(image, np.float32(lo), np.float32(hi)).astype(np.float32, copy=False)
    mean, std = float(out.mean()), float(out.std())
    out -= mean
    if std > 1e-6:
        out /= std
    return out
