"""Typed run configuration: dataclasses with defaults, loaded from YAML, overridden from the CLI.

A configuration is a tree of dataclasses. :func:`load_config` starts from the defaults,
applies a YAML file, then dotted overrides such as ``optim.lr=3e-4`` or
``task.line_channels=[2ch,3ch]``; every value is checked against its field's type and an
unknown key is a :class:`~planessl.errors.PlaneSSLError` that names it.

Example:
    >>> cfg = load_config(PretrainConfig, overrides=["optim.lr=3e-4", "model.preset=tiny"])
    >>> cfg.optim.lr
    0.0003

The configuration dataclasses of pretraining live here so that other commands (fine-tuning)
reuse the shared parts (:class:`ModelConfig`, :class:`DataConfig`, :class:`AugmentConfig`,
:class:`OptimConfig`, :class:`TrainerConfig`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml

from planessl.errors import PlaneSSLError

T = TypeVar("T")


# ----------------------------------------------------------------------------- sections
@dataclass
class ModelConfig:
    """Backbone. ``network``: ``unet`` (planessl's U-Net, sized by ``preset``: ``paper``,
    ``small`` (CPU default) or ``tiny`` (tests); ``features`` overrides the preset's channels
    per level) or ``nnunet:PLANS.json[:CONFIGURATION]`` (the network nnU-Net builds from
    those plans, default configuration ``2d``; input grid and normalisation from the plans,
    ``preset``/``features`` unused; needs ``pip install 'planessl[nnunet]'``; see
    :mod:`planessl.nnunet.network`)."""

    network: str = "unet"
    preset: str = "small"
    features: list[int] | None = None


@dataclass
class DataConfig:
    """Which images, resampled how.

    Attributes:
        input_views: view types used as network inputs (e.g. ``[sax]`` or ``[2ch, 4ch]``).
        sampling: ``random`` (per epoch, per study one random slice and frame of an input
            view, as the reference) or ``all`` (every slice and frame of every input view).
        image_size: input height = width in pixels; ``None``: the model preset's.
        spacing_mm: pixel spacing images are resampled to (mm); ``None``: the preset's.
        clip_percentiles: intensities are clipped to these percentiles, then z-scored.
        val_fraction: share of studies held out for validation (by study, seeded).
        val_images_per_study: fixed images per validation study.
        batch_size: images per batch (per process).
        num_workers: DataLoader worker processes (0: load in the training process).
    """

    input_views: list[str] = field(default_factory=lambda: ["sax"])
    sampling: str = "random"
    image_size: int | None = None
    spacing_mm: float | None = None
    clip_percentiles: list[float] = field(default_factory=lambda: [1.0, 99.0])
    val_fraction: float = 0.1
    val_images_per_study: int = 2
    batch_size: int = 20
    num_workers: int = 0


@dataclass
class PretrainDataConfig(DataConfig):
    """:class:`DataConfig` of pretraining, which may draw from several caches.

    Attributes:
        caches: the caches (``planessl pretrain --data`` sets them; a run records the
            resolved folders, so its ``config.yaml`` says what it was trained on).
        cache_weights: relative share of each cache in a training epoch, in the order of
            ``caches`` (e.g. ``[1, 1]``: half the samples from each, ``[3, 1]``: three
            quarters from the first); empty: proportional to each cache's training studies
            (``sampling=all``: images), i.e. each once per epoch. A run records the weights
            it used (for the default, those counts). An epoch has as many samples as
            training studies (images) in all, shared exactly by weight
            (:mod:`planessl.data.mixing`).
    """

    caches: list[str] = field(default_factory=list)
    cache_weights: list[float] = field(default_factory=list)


@dataclass
class AugmentConfig:
    """Geometry-aware augmentation (targets are recomputed from the transformed plane).

    Attributes:
        enabled: apply augmentation to training images.
        rotation_deg: uniform in-plane rotation in ``[-r, r]`` degrees.
        zoom: uniform magnification range ``[lo, hi]`` (> 1 zooms in).
        shift_mm: uniform shift of the crop centre in ``[-s, s]`` mm along each axis.
        flip: mirror the image (left-right) with probability 0.5.
    """

    enabled: bool = True
    rotation_deg: float = 15.0
    zoom: list[float] = field(default_factory=lambda: [0.9, 1.1])
    shift_mm: float = 10.0
    flip: bool = True


@dataclass
class TaskConfig:
    """Pretext task.

    Attributes:
        name: the plane-geometry tasks ``lines``, ``slices``, ``multitask``; the
            competing methods ``anatomy`` (Bai et al. 2019), ``simclr``, ``gcl``
            (Chaitanya et al. 2020), ``pcl`` (Zeng et al. 2021), ``rotation``, ``genesis``
            (see :mod:`planessl.tasks.registry`).
        line_channels: view types whose intersection lines are predicted, one channel each.
        stack_line: which planes of a stack (e.g. the SAX stack) make its line channel:
            ``all`` (every slice: one line per slice, the default) or ``mid`` (only the
            middle slice, :func:`planessl.study.mid_slice_index`: for SAX the
            mid-ventricular slice; one line, as a view-planning target, e.g. with localizer
            inputs ``data.input_views=[loc_2ch,loc_4ch,loc_sax]
            task.line_channels=[2ch,3ch,4ch,sax] task.stack_line=mid``).
        sigma_mm: Gaussian width of the line heatmaps in mm (reference: 6 px x 1.26 mm).
        sigma_thickness_factor: when set, sigma = factor x the other view's slice thickness
            (the view-planning convention; e.g. 0.5), overriding ``sigma_mm`` where known.
        alpha: weight of the line loss in ``multitask``.
        beta: weight of the slice-location loss in ``multitask``.
        slice_hidden: width of the slice-location MLP.
        temperature: softmax temperature of the contrastive losses (``simclr``, ``gcl``,
            ``pcl``).
        projection_dim: output width of the contrastive projection head.
        partitions: ``gcl``: number of partitions of a stack (slices in the same partition
            of different studies are positives).
        position_threshold: ``pcl``: slices whose relative locations differ by less than
            this are positives.
        restore_weight: weight γ of a Models Genesis restoration term added to a
            plane-geometry task (``lines``, ``slices``, ``multitask``; 0 = none): the
            encoder-decoder also restores each image from a corrupted copy (mean squared
            error), so the decoder is pretrained too; the geometry heads see the clean image.
        knee_laterality: ``right`` or ``left``: the knee assumed for knee studies that do
            not record which knee they image (DICOM Laterality, ImageLaterality or a side
            named in BodyPartExamined / the series description); it decides which end of a
            sagittal stack is medial (slice location 0) and which lateral (1).
    """

    name: str = "multitask"
    line_channels: list[str] = field(default_factory=lambda: ["2ch", "4ch"])
    stack_line: str = "all"
    sigma_mm: float = 7.56
    sigma_thickness_factor: float | None = None
    alpha: float = 1.0
    beta: float = 1.0
    slice_hidden: int = 64
    temperature: float = 0.1
    projection_dim: int = 128
    partitions: int = 4
    position_threshold: float = 0.1
    restore_weight: float = 0.0
    knee_laterality: str = "right"


@dataclass
class OptimConfig:
    """Adam and its learning-rate schedule (see :mod:`planessl.tasks.optim`).

    Attributes:
        lr: learning rate.
        weight_decay: Adam's L2 penalty.
        schedule: ``step`` (``lr`` x ``step_gamma`` every ``step_epochs`` epochs when > 0),
            ``cosine`` (linear warm-up over ``warmup_steps`` steps, then cosine to 0 at the
            end of the run) or ``constant``.
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "step"
    step_epochs: int = 0
    step_gamma: float = 0.5
    warmup_steps: int = 0


@dataclass
class TrainerConfig:
    """PyTorch Lightning trainer settings.

    Attributes:
        max_epochs: epochs to train (ignored when ``max_steps`` > 0 stops earlier).
        max_steps: optimiser steps to train, -1 for no limit.
        max_time: wall-clock limit ``DD:HH:MM:SS`` (e.g. ``00:00:10:00``), or none.
        accelerator: ``auto`` (chosen at run time), ``cpu``, ``gpu``...
        devices: number of devices (processes) per node, or ``auto``.
        num_nodes: machines.
        strategy: ``auto`` or ``ddp`` (used automatically when devices x nodes > 1).
        precision: Lightning precision string (``32-true``, ``bf16-mixed``, ``16-mixed``) or
            ``auto``: bf16 mixed precision where the device computes bf16 natively (CPUs
            with AVX-512 BF16 or AMX, GPUs from Ampere on), fp16 mixed on other GPUs,
            else 32-bit (see :func:`planessl.engine.resolve_precision`).
        deterministic: request deterministic algorithms (``warn`` where unavailable).
        log_every_n_steps: logging interval in steps.
        val_every_n_epochs: validation interval in epochs.
        progress_bar: show the progress bar.
        threads: torch intra-op threads per process (0: leave torch's default).
    """

    max_epochs: int = 500
    max_steps: int = -1
    max_time: str | None = None
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "auto"
    deterministic: bool = True
    log_every_n_steps: int = 10
    val_every_n_epochs: int = 1
    progress_bar: bool = True
    threads: int = 0


@dataclass
class PretrainConfig:
    """Everything a pretraining run needs (saved resolved as ``config.yaml``)."""

    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


# ----------------------------------------------------------------------------- loading
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` converted to the annotated type ``tp`` or a PlaneSSLError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null", "~") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except PlaneSSLError as exc:
                errors.append(str(exc))
        raise PlaneSSLError(errors[0] if errors else f"config key {key!r}: bad value {value!r}")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, (list, tuple)):
            raise PlaneSSLError(f"config key {key!r}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return [_coerce(v, item, f"{key}[{k}]") for k, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise PlaneSSLError(f"config key {key!r}: expected a mapping, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise PlaneSSLError(f"config key {key!r}: expected a mapping, got {value!r}")
        return _merge(tp(), value, key + ".")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise PlaneSSLError(f"config key {key!r}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise PlaneSSLError(f"config key {key!r}: expected {tp.__name__}, got {value!r}")
        try:
            out = tp(value) if not (tp is int and isinstance(value, float) and not value.is_integer()) else None
        except (TypeError, ValueError):
            out = None
        if out is None:
            raise PlaneSSLError(f"config key {key!r}: expected {tp.__name__}, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, (dict, list)):
            raise PlaneSSLError(f"config key {key!r}: expected a string, got {value!r}")
        return str(value)
    raise PlaneSSLError(f"config key {key!r}: unsupported type {_type_name(tp)}")


def _merge(cfg: T, values: dict, prefix: str = "") -> T:
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    for name, value in values.items():
        key = prefix + str(name)
        if name not in names:
            raise PlaneSSLError(f"unknown config key {key!r}; known at this level: "
                                f"{', '.join(sorted(names))}")
        tp = hints[name]
        current = getattr(cfg, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            _merge(current, value, key + ".")
        elif isinstance(current, dict) and isinstance(value, dict):
            # a mapping of sections (e.g. an experiment's arms): entries merge one by one
            merged = dict(current)
            merged.update(_coerce(value, tp, key))
            for k, v in value.items():
                if dataclasses.is_dataclass(current.get(str(k))) and isinstance(v, dict):
                    merged[str(k)] = _merge(dataclasses.replace(current[str(k)]), v,
                                            f"{key}.{k}.")
            setattr(cfg, name, merged)
        else:
            setattr(cfg, name, _coerce(value, tp, key))
    return cfg


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """Apply ``key.sub=value`` strings (values parsed as YAML scalars or lists)."""
    for item in overrides:
        if "=" not in item:
            raise PlaneSSLError(f"config override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        _merge(cfg, nested)
    return cfg


def load_config(cls: type[T], path: str | Path | None = None,
                overrides: Sequence[str] = ()) -> T:
    """Defaults of ``cls``, updated by the YAML file ``path`` then by ``overrides``."""
    cfg = cls()
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise PlaneSSLError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise PlaneSSLError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
        if not isinstance(data, dict):
            raise PlaneSSLError(f"{path}: a config file must be a mapping of keys to values")
        try:
            _merge(cfg, data)
        except PlaneSSLError as exc:
            raise PlaneSSLError(f"{path}: {exc}") from None
    return apply_overrides(cfg, overrides)


def config_to_dict(cfg: Any) -> dict:
    """Plain dict (YAML-safe) of a configuration dataclass."""
    return dataclasses.asdict(cfg)
