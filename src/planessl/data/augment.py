"""Fine-tuning augmentation with MONAI's dictionary transforms: one spatial resampling
(rotation, zoom, shift and elastic deformation together), a left-right flip, then intensity
transforms (bias field, gamma, contrast, noise, blur).

Images enter on a margin grid larger than the network input (see
:class:`planessl.data.labelled.InMemorySegmentationDataset`), intensities scaled to about
[0, 1]; the spatial transform samples the central ``image_size`` pixels of it, so with no
augmentation the output is exactly the input grid that ``predict`` uses. Labels follow
every spatial transform with nearest-neighbour interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planessl.config import AugmentConfig


@dataclass
class FinetuneAugmentConfig(AugmentConfig):
    """Augmentation of fine-tuning images (the spatial keys are those of pretraining).

    The defaults are the recipe chosen on ACDC validation patients
    (``benchmarks/results/acdc_fewlabel/tuning.csv``): rotations within ±30° and no mirror
    (SAX images keep the RV on one side), zoom 0.8-1.25, shifts of 12 mm, a mild elastic
    deformation and every intensity transform.

    Attributes:
        margin: the in-memory grid is ``margin x image_size`` pixels, so rotations, shifts
            and zoom-outs sample real image rather than padding.
        elastic_spacing_mm: distance between the deformation's control points (mm).
        elastic_magnitude: standard deviation of the control points' random displacements
            is uniform in ``[0, elastic_magnitude]`` pixels (MONAI ``Rand2DElastic``
            ``magnitude_range``); 0 turns the elastic deformation off.
        bias_prob, bias_coeff: probability and coefficient range of a smooth multiplicative
            bias field (MONAI ``RandBiasField``).
        gamma_prob, gamma: probability and range of a gamma change (``RandAdjustContrast``).
        contrast_prob, contrast: probability and ± range of an intensity scaling.
        noise_prob, noise_std: probability and maximum standard deviation of Gaussian noise,
            relative to the image's [0, 1] range.
        blur_prob, blur_sigma_px: probability and range of a Gaussian blur (pixels).
    """

    rotation_deg: float = 30.0
    zoom: list[float] = field(default_factory=lambda: [0.8, 1.25])
    shift_mm: float = 12.0
    flip: bool = False
    margin: float = 1.5
    elastic_spacing_mm: float = 24.0
    elastic_magnitude: float = 2.0
    bias_prob: float = 0.3
    bias_coeff: float = 0.3
    gamma_prob: float = 0.3
    gamma: list[float] = field(default_factory=lambda: [0.7, 1.5])
    contrast_prob: float = 0.3
    contrast: float = 0.2
    noise_prob: float = 0.2
    noise_std: float = 0.05
    blur_prob: float = 0.2
    blur_sigma_px: list[float] = field(default_factory=lambda: [0.5, 1.0])


def build_segmentation_augment(cfg: FinetuneAugmentConfig, image_size: int, spacing_mm: float):
    """A MONAI ``Compose`` over ``{"image", "label"}`` (channel-first tensors of the margin
    grid) returning ``image_size x image_size`` crops; ``cfg.enabled = False`` gives the
    plain central crop."""
    from monai.transforms import CenterSpatialCropd, Compose

    keys = ("image", "label")
    size = (int(image_size), int(image_size))
    if not cfg.enabled:
        return Compose([CenterSpatialCropd(keys, size)])
    return Compose(spatial_transforms(cfg, image_size, spacing_mm, keys)
                   + intensity_transforms(cfg))


def spatial_transforms(cfg: FinetuneAugmentConfig, image_size: int, spacing_mm: float,
                       keys: tuple[str, ...] = ("image", "label")) -> list:
    """The spatial part of the augmentation: one MONAI ``Rand2DElasticd`` (rotation, zoom,
    shift, elastic deformation; central ``image_size`` crop; ``label`` nearest neighbour)
    and, with ``cfg.flip``, a left-right flip."""
    from monai.transforms import Rand2DElasticd, RandFlipd

    size = (int(image_size), int(image_size))
    lo, hi = cfg.zoom
    # MONAI's scale acts on the sampling grid: a factor s shows the image 1/s times as large.
    scale = (1.0 / hi - 1.0, 1.0 / lo - 1.0)
    shift_px = cfg.shift_mm / spacing_mm
    control_px = max(4.0, cfg.elastic_spacing_mm / spacing_mm)
    modes = tuple("nearest" if k == "label" else "bilinear" for k in keys)
    spatial = Rand2DElasticd(
        keys, spacing=(control_px, control_px), prob=1.0,
        magnitude_range=(0.0, max(0.0, cfg.elastic_magnitude)),
        rotate_range=math.radians(cfg.rotation_deg), scale_range=(scale, scale),
        translate_range=(shift_px, shift_px), spatial_size=size,
        mode=modes, padding_mode="zeros")
    transforms = [spatial]
    if cfg.flip:
        transforms.append(RandFlipd(keys, prob=0.5, spatial_axis=1))
    return transforms


def intensity_transforms(cfg: FinetuneAugmentConfig, prob: float | None = None) -> list:
    """The intensity part on ``image``: bias field, gamma, contrast, noise, blur (MONAI),
    each with its ``cfg.*_prob`` or, when ``prob`` is given, with that probability."""
    from monai.transforms import (RandAdjustContrastd, RandBiasFieldd, RandGaussianNoised,
                                  RandGaussianSmoothd, RandScaleIntensityd)

    intensity = [
        (cfg.bias_prob, lambda p: RandBiasFieldd("image", coeff_range=(0.0, cfg.bias_coeff), prob=p)),
        (cfg.gamma_prob, lambda p: RandAdjustContrastd("image", gamma=tuple(cfg.gamma), prob=p)),
        (cfg.contrast_prob, lambda p: RandScaleIntensityd("image", factors=cfg.contrast, prob=p)),
        (cfg.noise_prob, lambda p: RandGaussianNoised("image", std=cfg.noise_std, prob=p,
                                                      sample_std=True)),
        (cfg.blur_prob, lambda p: RandGaussianSmoothd("image", sigma_x=tuple(cfg.blur_sigma_px),
                                                      sigma_y=tuple(cfg.blur_sigma_px), prob=p)),
    ]
    if prob is not None:
        return [make(prob) for _, make in intensity] if prob > 0 else []
    return [make(p) for p, make in intensity if p > 0]
