"""The backbone a configuration names: planessl's U-Net or the network an nnU-Net plans file
describes (``model.network``)."""

from __future__ import annotations

from torch import nn

from planessl.errors import PlaneSSLError
from planessl.models.backbone import PRESETS, build_backbone

UNET = "unet"


def build_configured_backbone(model) -> nn.Module:
    """The backbone of a :class:`planessl.config.ModelConfig`: ``network = unet`` (the
    preset, or explicit ``features``) or ``nnunet:PLANS.json[:CONFIGURATION]``."""
    network = getattr(model, "network", UNET) or UNET
    if network == UNET:
        if model.preset not in PRESETS and model.features is None:
            raise PlaneSSLError(f"model.preset must be one of {', '.join(PRESETS)}, "
                                f"got {model.preset!r}")
        features = model.features or PRESETS[model.preset].features
        return build_backbone(model.preset, features=tuple(features))
    from planessl.nnunet.network import build_nnunet_backbone, is_nnunet

    if not is_nnunet(network):
        raise PlaneSSLError(f"model.network must be 'unet' or 'nnunet:PLANS.json[:CONFIGURATION]', "
                            f"got {network!r}")
    return build_nnunet_backbone(network)
