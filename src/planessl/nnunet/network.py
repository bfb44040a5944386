"""The network nnU-Net plans, as a planessl backbone.

``model.network = "nnunet:PLANS.json[:CONFIGURATION]"`` (``planessl pretrain --network``)
builds the network of a 2D configuration (default ``2d``) exactly as nnU-Net's trainer
does: the plans are read with nnU-Net's ``PlansManager``, the input and output channel
counts come from the ``dataset.json`` beside the plans (nnU-Net's preprocessed folder holds
both) through nnU-Net's own helpers, and the network is made by nnU-Net's
``get_network_from_plans`` (``dynamic-network-architectures``: ``PlainConvUNet``,
``ResidualEncoderUNet``...). :class:`NnUNetBackbone` exposes its ``encoder`` (every
stage's features, shallow to deep) and ``decoder`` (its full-resolution features, before
the segmentation layer) as planessl's tasks expect; the deep-supervision and segmentation
output layers are not used in pretraining and are left to nnU-Net.

Parameter names are nnU-Net's own (``encoder.stages...``, ``decoder.stages...``,
``decoder.transpconvs...``); nnU-Net's decoder also holds the encoder, so
``decoder.encoder.*`` names the same tensors as ``encoder.*``.

The input grid follows the plans: square crops whose side is the larger patch side (rounded
up to the network's total stride), at the plans' in-plane spacing. Intensities: the plans'
``ZScoreNormalization`` (nnU-Net's scheme for MR) is supported, as a z-score of each image
without percentile clipping; other schemes (CT normalisation, rescaling) are refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from planessl.errors import PlaneSSLError
from planessl.nnunet import require_nnunet

PREFIX = "nnunet:"
DEFAULT_CONFIGURATION = "2d"
SUPPORTED_NORMALISATION = ("ZScoreNormalization",)


@dataclass(frozen=True)
class NetworkSpec:
    """A parsed ``nnunet:PLANS.json[:CONFIGURATION]``."""

    plans: Path
    configuration: str = DEFAULT_CONFIGURATION

    @property
    def dataset_json(self) -> Path:
        return self.plans.parent / "dataset.json"

    def __str__(self) -> str:
        return f"{PREFIX}{self.plans}:{self.configuration}"


def is_nnunet(network: str | None) -> bool:
    """Whether ``model.network`` names an nnU-Net plans file."""
    return bool(network) and str(network).startswith(PREFIX)


def parse_network(network: str) -> NetworkSpec:
    """``nnunet:PLANS.json[:CONFIGURATION]`` -> :class:`NetworkSpec` (plans made absolute)."""
    if not is_nnunet(network):
        raise PlaneSSLError(f"model.network {network!r}: expected 'unet' or "
                            f"'nnunet:PLANS.json[:CONFIGURATION]'")
    rest = network[len(PREFIX):]
    configuration = DEFAULT_CONFIGURATION
    if not rest.endswith(".json") and ":" in rest:
        rest, configuration = rest.rsplit(":", 1)
    if not rest:
        raise PlaneSSLError(f"--network {network}: no plans file given")
    return NetworkSpec(Path(rest).expanduser().resolve(), configuration or DEFAULT_CONFIGURATION)


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        hint = (" (nnU-Net writes it beside the plans in nnUNet_preprocessed/DatasetNNN_Name/)"
                if path.name == "dataset.json" else "")
        raise PlaneSSLError(f"{path}: {what} not found{hint}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlaneSSLError(f"{path}: not a valid {what} ({exc})") from None


@dataclass(frozen=True)
class PlannedNetwork:
    """What a 2D nnU-Net configuration says about the network and its input.

    Attributes:
        spec: the plans file and configuration.
        arch_class_name, arch_kwargs, arch_kwargs_req_import: nnU-Net's network description.
        input_channels, output_channels: as nnU-Net's trainer determines them.
        patch_size: (rows, cols) pixels.
        spacing_mm: (rows, cols) in-plane spacing, mm.
        total_stride: the network's downsampling per axis (pixels).
        normalization: the normalisation scheme of the single input channel.
    """

    spec: NetworkSpec
    arch_class_name: str
    arch_kwargs: dict
    arch_kwargs_req_import: tuple
    input_channels: int
    output_channels: int
    patch_size: tuple[int, int]
    spacing_mm: tuple[float, float]
    total_stride: tuple[int, int]
    normalization: str

    @property
    def image_size(self) -> int:
        """Side of planessl's square crops: the larger patch side, rounded up to a multiple
        of the larger total stride (pixels)."""
        step = max(self.total_stride)
        return int(math.ceil(max(self.patch_size) / step) * step)

    @property
    def image_spacing_mm(self) -> float:
        """planessl resamples to square pixels: the plans' in-plane spacing (their mean if
        the two differ), mm."""
        return float(sum(self.spacing_mm) / 2.0)


def read_plans(spec: NetworkSpec | str) -> PlannedNetwork:
    """The 2D configuration ``spec`` names, read through nnU-Net's ``PlansManager``."""
    spec = parse_network(spec) if isinstance(spec, str) else spec
    require_nnunet(f"--network {spec}")
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = _read_json(spec.plans, "nnU-Net plans file")
    dataset = _read_json(spec.dataset_json, "nnU-Net dataset.json")
    if spec.configuration not in plans.get("configurations", {}):
        known = ", ".join(plans.get("configurations", {})) or "none"
        raise PlaneSSLError(f"{spec.plans}: no configuration {spec.configuration!r} (has {known})")
    try:
        manager = PlansManager(plans)
        conf = manager.get_configuration(spec.configuration)
        patch = tuple(int(p) for p in conf.patch_size)
        n_in = int(determine_num_input_channels(manager, conf, dataset))
        n_out = int(manager.get_label_manager(dataset).num_segmentation_heads)
        strides = conf.network_arch_init_kwargs.get("strides")
        spacing = tuple(float(s) for s in conf.spacing)
        norm = list(conf.normalization_schemes)
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        raise PlaneSSLError(f"{spec.plans}: cannot read configuration {spec.configuration!r} "
                            f"({type(exc).__name__}: {exc})") from None
    if len(patch) != 2:
        raise PlaneSSLError(f"{spec.plans}: configuration {spec.configuration!r} is "
                            f"{len(patch)}D; planessl pretrains 2D networks (use a 2d "
                            f"configuration)")
    if n_in != 1:
        raise PlaneSSLError(f"{spec.dataset_json}: {n_in} input channels; planessl pretrains "
                            f"single-channel (MR magnitude) networks")
    if norm[0] not in SUPPORTED_NORMALISATION:
        raise PlaneSSLError(f"{spec.plans}: normalisation {norm[0]!r} is not supported (planessl "
                            f"supports {', '.join(SUPPORTED_NORMALISATION)}, nnU-Net's scheme for MR)")
    total = [1, 1]
    for s in strides or ():
        s = [s, s] if isinstance(s, int) else list(s)
        total = [total[0] * int(s[0]), total[1] * int(s[1])]
    return PlannedNetwork(spec, conf.network_arch_class_name, dict(conf.network_arch_init_kwargs),
                          tuple(conf.network_arch_init_kwargs_req_import), n_in, n_out, patch,
                          spacing[-2:], (total[0], total[1]), norm[0])


def build_planned_network(planned: PlannedNetwork) -> nn.Module:
    """The network nnU-Net's trainer builds for these plans (its own builder, weights
    initialised as it does), without deep supervision."""
    require_nnunet(f"--network {planned.spec}")
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    return get_network_from_plans(planned.arch_class_name, planned.arch_kwargs,
                                  planned.arch_kwargs_req_import, planned.input_channels,
                                  planned.output_channels, allow_init=True,
                                  deep_supervision=False)


class NnUNetBackbone(nn.Module):
    """nnU-Net's network as a planessl backbone: ``forward`` returns
    ``(decoder_features, encoder_features)``.

    ``decoder_features``: the last decoder stage's output (B, ``out_channels``, H, W) at full
    resolution, i.e. what nnU-Net's final segmentation layer sees; ``encoder_features``: the
    list of every encoder stage's output, shallow to deep. The segmentation layers take no
    part and get no gradient.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        for name in ("encoder", "decoder"):
            if not hasattr(network, name):
                raise PlaneSSLError(f"{type(network).__name__}: nnU-Net network without "
                                    f"{name}; planessl needs an encoder-decoder (U-Net) network")
        self.encoder = network.encoder
        self.decoder = network.decoder
        for p in self.decoder.seg_layers.parameters():
            p.requires_grad_(False)
        self.network_class = f"{type(network).__module__}.{type(network).__qualname__}"

    @property
    def out_channels(self) -> int:
        return int(self.encoder.output_channels[0])

    @property
    def deep_channels(self) -> int:
        return int(self.encoder.output_channels[-1])

    def decode(self, skips: list[torch.Tensor]) -> torch.Tensor:
        """The decoder's full-resolution features: nnU-Net's ``UNetDecoder.forward`` up to,
        not including, its segmentation layer."""
        x = skips[-1]
        for s, (up, stage) in enumerate(zip(self.decoder.transpconvs, self.decoder.stages)):
            x = stage(torch.cat((up(x), skips[-(s + 2)]), 1))
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = self.encoder(x)
        return self.decode(skips), skips


def build_nnunet_backbone(network: str) -> NnUNetBackbone:
    """The backbone for ``model.network = nnunet:PLANS.json[:CONFIGURATION]``."""
    return NnUNetBackbone(build_planned_network(read_plans(network)))
