"""Networks: a U-Net backbone with separable encoder and decoder, and task heads."""

from planessl.models.backbone import PRESETS, UNetBackbone, build_backbone
from planessl.models.heads import LineHead, SliceHead

__all__ = ["PRESETS", "UNetBackbone", "build_backbone", "LineHead", "SliceHead"]
