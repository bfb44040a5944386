"""Torch datasets and geometry-aware transforms over a planessl cache."""

from planessl.data.loader import EpochLoader
from planessl.data.pretrain import EpochSampler, PretrainDataset, SampleSpec, make_sample
from planessl.data.transforms import (PlaneAugment, input_plane, normalise_intensity,
                                      resample_to_plane)

__all__ = ["EpochLoader", "EpochSampler", "PretrainDataset", "SampleSpec", "make_sample",
           "PlaneAugment", "input_plane", "normalise_intensity", "resample_to_plane"]
