"""bSSFP-like image formation: tissue intensities, blur, coil bias field, Rician noise.

Balanced SSFP cine contrast is T2/T1-weighted: blood and fat are bright, myocardium and
skeletal muscle grey, liver a little brighter than muscle, lungs and air dark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from planessl.phantom.anatomy import TISSUES

#: Mean relative intensity of each tissue (blood = 1), in :data:`TISSUES` order.
BASE_INTENSITY = {"air": 0.0, "fat": 0.85, "muscle": 0.2, "lung": 0.05, "liver": 0.32,
                  "blood": 1.0, "myocardium": 0.24, "marrow": 0.5, "fluid": 0.9,
                  "cortex": 0.04}


@dataclass(frozen=True)
class Contrast:
    """Per-subject image formation parameters.

    Attributes:
        table: intensity of each tissue code (arbitrary scanner units).
        snr: blood signal over the noise standard deviation.
        bias_coef: linear and quadratic coefficients of the log bias field (per 100 mm).
        bias_centre: world point (LPS mm) where the bias field is 1.
        blur_px: Gaussian blur of the point-spread function, pixels.
    """

    table: np.ndarray
    snr: float
    bias_coef: np.ndarray
    bias_centre: np.ndarray
    blur_px: float


def sample_contrast(rng: np.random.Generator, centre: np.ndarray) -> Contrast:
    """Random contrast, gain, SNR (12-35) and bias field for one subject."""
    gain = rng.uniform(300, 1200)
    table = np.array([BASE_INTENSITY[t] * rng.uniform(0.85, 1.15) for t in TISSUES])
    table[TISSUES.index("blood")] = 1.0
    return Contrast(table=(table * gain).astype(np.float32), snr=float(rng.uniform(12, 35)),
                    bias_coef=rng.normal(0, 1, 6) * np.array([0.25, 0.25, 0.25, 0.08, 0.08, 0.08]),
                    bias_centre=np.asarray(centre, dtype=np.float64) + rng.normal(0, 30, 3),
                    blur_px=float(rng.uniform(0.5, 0.9)))


def bias_field(points: np.ndarray, contrast: Contrast) -> np.ndarray:
    """Smooth multiplicative coil sensitivity at world points (..., 3): one field for the
    whole subject, so every view sees the same coil."""
    d = (points - contrast.bias_centre) / 100.0
    k = contrast.bias_coef
    return np.exp(d @ k[:3] - (d * d) @ np.abs(k[3:])).astype(np.float32)


def render(tissue: np.ndarray, bias: np.ndarray, contrast: Contrast,
           rng: np.random.Generator, noise: bool = True) -> np.ndarray:
    """Intensities (float32, same shape as ``tissue``: ``(..., H, W)``) of tissue maps.

    ``bias`` broadcasts against ``tissue`` (e.g. ``(S, 1, H, W)`` for a cine stack).
    """
    img = contrast.table[tissue]
    sigma = [0.0] * (img.ndim - 2) + [contrast.blur_px, contrast.blur_px]
    img = gaussian_filter(img, sigma=sigma, mode="nearest") * bias
    if noise:
        sd = np.float32(contrast.table.max() / contrast.snr / 1.0)
        re = img + rng.standard_normal(img.shape, dtype=np.float32) * sd
        im = rng.standard_normal(img.shape, dtype=np.float32) * sd
        img = np.sqrt(re * re + im * im)  # magnitude of complex Gaussian noise: Rician
    return img.astype(np.float32, copy=False)
