"""2D U-Net backbone built from MONAI's U-Net blocks, with encoder and decoder separable.

Parameter names are stable and shared by every task: ``encoder.*`` and ``decoder.*`` are
what pretraining transfers to fine-tuning; heads live elsewhere (``planessl.models.heads``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.networks.nets.basic_unet import Down, TwoConv, UpCat
from torch import nn


@dataclass(frozen=True)
class BackbonePreset:
    """Architecture and input size of a backbone preset.

    Attributes:
        features: channels per level, shallow to deep (len - 1 poolings).
        image_size: input height = width in pixels.
        spacing_mm: in-plane pixel spacing images are resampled to, mm.
    """

    features: tuple[int, ...]
    image_size: int
    spacing_mm: float


PRESETS: dict[str, BackbonePreset] = {
    # The reference implementation: 64-1024 filters, 4 poolings, 224 x 224 at 1.367 mm.
    "paper": BackbonePreset((64, 128, 256, 512, 1024), 224, 1.367),
    # CPU-friendly default: learns usefully in minutes on 2 cores.
    "small": BackbonePreset((16, 32, 64, 128, 256), 128, 2.0),
    # For tests: tiny and fast.
    "tiny": BackbonePreset((4, 8, 16, 32), 32, 6.0),
}


class Encoder(nn.Module):
    """Convolutional encoder; returns the feature map of every level (shallow to deep)."""

    def __init__(self, in_channels: int, features: tuple[int, ...], norm, act, dropout: float) -> None:
        super().__init__()
        self.stem = TwoConv(2, in_channels, features[0], act, norm, True, dropout)
        self.downs = nn.ModuleList(
            Down(2, features[k], features[k + 1], act, norm, True, dropout)
            for k in range(len(features) - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        return feats


class Decoder(nn.Module):
    """U-Net decoder: upsamples the deepest features, concatenating the skips; returns the
    full-resolution feature map with ``features[0]`` channels."""

    def __init__(self, features: tuple[int, ...], norm, act, dropout: float) -> None:
        super().__init__()
        ups = []
        for k in range(len(features) - 1, 0, -1):
            ups.append(UpCat(2, features[k], features[k - 1], features[k - 1], act, norm, True,
                             dropout, upsample="deconv", halves=True))
        self.ups = nn.ModuleList(ups)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            x = up(x, skip)
        return x


class UNetBackbone(nn.Module):
    """Encoder + decoder. ``forward`` returns ``(decoder_features, encoder_features)``.

    Args:
        in_channels: input image channels (1 for MR magnitude).
        features: channels per level; ``len(features) - 1`` poolings, so the input size
            must be divisible by ``2 ** (len(features) - 1)``.
    """

    def __init__(self, in_channels: int = 1, features: tuple[int, ...] = PRESETS["small"].features,
                 norm: str | tuple = ("instance", {"affine": True}),
                 act: str | tuple = ("leakyrelu", {"negative_slope": 0.1, "inplace": True}),
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.features = tuple(features)
        self.encoder = Encoder(in_channels, self.features, norm, act, dropout)
        self.decoder = Decoder(self.features, norm, act, dropout)

    @property
    def out_channels(self) -> int:
        return self.features[0]

    @property
    def deep_channels(self) -> int:
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = self.encoder(x)
        return self.decoder(feats), feats


def build_backbone(preset: str = "small", in_channels: int = 1,
                   features: tuple[int, ...] | None = None) -> UNetBackbone:
    """A backbone from a named preset (``paper``, ``small``, ``tiny``) or explicit features."""
    if preset not in PRESETS and features is None:
        raise KeyError(f"unknown backbone preset {preset!r}; known: {', '.join(PRESETS)}")
    return UNetBackbone(in_channels, tuple(features or PRESETS[preset].features))
