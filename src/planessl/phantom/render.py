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


#: Range of each tissue's intensity relative to blood (drawn per subject), TISSUES order.
INTENSITY_RANGE = {"air": (0.0, 0.0), "fat": (0.6, 1.05), "muscle": (0.13, 0.3),
                   "lung": (0.02, 0.1), "liver": (0.2, 0.45), "blood": (1.0, 1.0),
                   "myocardium": (0.15, 0.34), "marrow": (0.35, 0.65), "fluid": (0.7, 1.0),
                   "cortex": (0.02, 0.06)}

#: Amplitude of the tissue texture (fraction of the tissue's intensity), TISSUES order.
TEXTURE_AMPLITUDE = {"air": 0.0, "fat": 0.12, "muscle": 0.15, "lung": 0.6, "liver": 0.10,
                     "blood": 0.04, "myocardium": 0.07, "marrow": 0.2, "fluid": 0.03,
                     "cortex": 0.0}


@dataclass(frozen=True)
class Contrast:
    """Per-subject image formation parameters.

    Attributes:
        table: intensity of each tissue code (arbitrary scanner units).
        snr: blood signal over the noise standard deviation.
        bias_coef: linear and quadratic coefficients of the log bias field (per 100 mm).
        bias_centre: world point (LPS mm) where the bias field is 1.
        blur_px: Gaussian blur of the point-spread function, pixels.
        waves, phases: the texture field's wave vectors (K, 3) rad/mm and phases (K,) rad.
        texture_amp: texture amplitude of each tissue code (fraction of its intensity).
    """

    table: np.ndarray
    snr: float
    bias_coef: np.ndarray
    bias_centre: np.ndarray
    blur_px: float
    waves: np.ndarray
    phases: np.ndarray
    texture_amp: np.ndarray = None  # type: ignore[assignment]  # default: TEXTURE_AMPLITUDE


def sample_contrast(rng: np.random.Generator, centre: np.ndarray) -> Contrast:
    """Random contrast for one subject: gain, each tissue's intensity relative to blood
    (:data:`INTENSITY_RANGE`, e.g. myocardium 0.15-0.34, fat 0.6-1.05, lung 0.02-0.1), SNR
    12-40, a bias field up to about x1.7 across the field of view, point-spread blur 0.4-1.3
    px, texture amplitudes x0.6-1.5 (blood 0.02-0.12: flow)."""
    gain = rng.uniform(300, 1200)
    table = np.array([rng.uniform(*INTENSITY_RANGE[t]) for t in TISSUES])
    amp = np.array([TEXTURE_AMPLITUDE[t] for t in TISSUES]) * rng.uniform(0.6, 1.5, len(TISSUES))
    amp[TISSUES.index("blood")] = rng.uniform(0.02, 0.12)
    amp[TISSUES.index("lung")] = rng.uniform(0.25, 0.6)
    return Contrast(table=(table * gain).astype(np.float32), snr=float(rng.uniform(12, 40)),
                    bias_coef=rng.normal(0, 1, 6) * np.array([0.3, 0.3, 0.3, 0.1, 0.1, 0.1]),
                    bias_centre=np.asarray(centre, dtype=np.float64) + rng.normal(0, 40, 3),
                    blur_px=float(rng.uniform(0.4, 1.3)),
                    waves=_waves(rng, 12), phases=rng.uniform(0, 2 * np.pi, 12),
                    texture_amp=amp.astype(np.float32))


def _waves(rng: np.random.Generator, count: int) -> np.ndarray:
    direction = rng.normal(size=(count, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    wavelength = rng.uniform(5.0, 25.0, count)  # mm
    return direction * (2 * np.pi / wavelength)[:, None]


def texture(points: np.ndarray, contrast: Contrast) -> np.ndarray:
    """A smooth random field of unit variance at world points (..., 3) mm: tissue
    texture that is one 3D pattern seen by every view."""
    arg = points.astype(np.float32) @ contrast.waves.T.astype(np.float32) + \
        contrast.phases.astype(np.float32)
    return (np.cos(arg).sum(axis=-1) * np.float32(np.sqrt(2.0 / len(contrast.phases))))


def bias_field(points: np.ndarray, contrast: Contrast) -> np.ndarray:
    """Smooth multiplicative coil sensitivity at world points (..., 3): one field for the
    whole subject, so every view sees the same coil."""
    d = (points - contrast.bias_centre) / 100.0
    k = contrast.bias_coef
    return np.exp(d @ k[:3] - (d * d) @ np.abs(k[3:])).astype(np.float32)


def render(tissue: np.ndarray, bias: np.ndarray, contrast: Contrast,
           rng: np.random.Generator, noise: bool = True,
           tex: np.ndarray | None = None) -> np.ndarray:
    """Intensities (float32, same shape as ``tissue``: ``(..., H, W)``) of tissue maps.

    ``bias`` and ``tex`` (the :func:`texture` field) broadcast against ``tissue`` (e.g.
    ``(S, 1, H, W)`` for a cine stack).
    """
    img = contrast.table[tissue]
    if tex is not None:
        amp = (contrast.texture_amp if contrast.texture_amp is not None else
               np.array([TEXTURE_AMPLITUDE[t] for t in TISSUES], np.float32))[tissue]
        img = img * np.clip(1 + amp * tex, 0.2, None)
        # Lung vessels: thin bright ridges of the texture field inside the lungs.
        vessels = (tissue == TISSUES.index("lung")) & (np.abs(tex - 1.2) < 0.08)
        img[vessels] = contrast.table[TISSUES.index("liver")]
    sigma = [0.0] * (img.ndim - 2) + [contrast.blur_px, contrast.blur_px]
    img = gaussian_filter(img, sigma=sigma, mode="nearest") * bias
    if noise:
        sd = np.float32(contrast.table.max() / contrast.snr / 1.0)
        re = img + rng.standard_normal(img.shape, dtype=np.float32) * sd
        im = rng.standard_normal(img.shape, dtype=np.float32) * sd
        img = np.sqrt(re * re + im * im)  # magnitude of complex Gaussian noise: Rician
    return img.astype(np.float32, copy=False)
