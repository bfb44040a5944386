"""Pretraining run: cache → datasets → pretext task → Lightning engine → transferable weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from planessl.cache import Cache
from planessl.config import PretrainConfig, config_to_dict
from planessl.errors import PlaneSSLError
from planessl.models.backbone import PRESETS


@dataclass(frozen=True)
class InputGrid:
    """The backbone's default input: square crops of ``image_size`` pixels at ``spacing_mm``,
    a size divisible by ``stride`` pixels, intensities clipped to ``clip_percentiles``."""

    image_size: int
    spacing_mm: float
    stride: int
    clip_percentiles: tuple[float, float]


def input_grid(cfg: PretrainConfig) -> InputGrid:
    """The input grid of the configured backbone: a planessl preset's, or an nnU-Net plans
    file's (patch size and spacing from the plans; its z-score normalisation, unclipped)."""
    from planessl.nnunet.network import is_nnunet, read_plans

    if is_nnunet(cfg.model.network):
        planned = read_plans(cfg.model.network)
        return InputGrid(planned.image_size, planned.image_spacing_mm,
                         max(planned.total_stride), (0.0, 100.0))
    if cfg.model.network != "unet":
        raise PlaneSSLError(f"model.network must be 'unet' or 'nnunet:PLANS.json[:CONFIGURATION]', "
                            f"got {cfg.model.network!r}")
    if cfg.model.preset not in PRESETS:
        raise PlaneSSLError(f"model.preset must be one of {', '.join(PRESETS)}, got {cfg.model.preset!r}")
    preset = PRESETS[cfg.model.preset]
    depth = len(cfg.model.features or preset.features) - 1
    lo, hi = cfg.data.clip_percentiles
    return InputGrid(preset.image_size, preset.spacing_mm, 2 ** depth, (lo, hi))


def sample_spec(cfg: PretrainConfig):
    """The :class:`~planessl.data.SampleSpec` of a configuration (preset size/spacing
    unless the data section overrides them)."""
    from planessl.data.pretrain import STACK_LINES, SampleSpec
    from planessl.tasks.multitask import task_weights
    from planessl.tasks.registry import task_needs

    grid = input_grid(cfg)
    alpha, beta = task_weights(cfg)
    if cfg.task.restore_weight < 0:
        raise PlaneSSLError(f"task.restore_weight must be >= 0, got {cfg.task.restore_weight}")
    if cfg.task.restore_weight > 0 and cfg.task.name not in ("lines", "slices", "multitask"):
        raise PlaneSSLError("task.restore_weight applies to the plane-geometry tasks (lines, "
                            f"slices, multitask), not to {cfg.task.name!r}")
    needs = task_needs(cfg.task.name, alpha, beta, cfg.task.restore_weight)
    size = cfg.data.image_size or grid.image_size
    if size % grid.stride:
        raise PlaneSSLError(f"data.image_size {size} must be divisible by {grid.stride} "
                            f"(the backbone's total downsampling)")
    lo, hi = grid.clip_percentiles
    if cfg.task.stack_line not in STACK_LINES:
        raise PlaneSSLError(f"task.stack_line must be one of {', '.join(STACK_LINES)}, got "
                            f"{cfg.task.stack_line!r}")
    if cfg.task.knee_laterality not in ("left", "right"):
        raise PlaneSSLError(f"task.knee_laterality must be left or right, got "
                            f"{cfg.task.knee_laterality!r}")
    return SampleSpec(input_views=tuple(cfg.data.input_views),
                      line_channels=tuple(cfg.task.line_channels) if needs.lines else (),
                      slice_location=needs.slice_location, image_size=size,
                      spacing_mm=cfg.data.spacing_mm or grid.spacing_mm,
                      sigma_mm=cfg.task.sigma_mm,
                      sigma_thickness_factor=cfg.task.sigma_thickness_factor,
                      clip_percentiles=(lo, hi), pretext_input=needs.pretext_input,
                      region_channels=tuple(cfg.task.line_channels) if needs.regions else (),
                      stack_line=cfg.task.stack_line,
                      knee_laterality=cfg.task.knee_laterality)


def open_caches(cache: str | Path | Cache | Sequence[str | Path | Cache] | None,
                cfg: PretrainConfig) -> list[Cache]:
    """The caches of a run: ``cache`` (one or several), else the configured ``data.caches``."""
    if cache is None:
        cache = list(cfg.data.caches)
        if not cache:
            raise PlaneSSLError("no pretraining data: give a cache (--data) or set data.caches")
    items = [cache] if isinstance(cache, (str, Path, Cache)) else list(cache)
    if not items:
        raise PlaneSSLError("no pretraining data: the list of caches is empty")
    caches = [c if isinstance(c, Cache) else Cache(c) for c in items]
    seen: set[Path] = set()
    for c in caches:
        if c.path.resolve() in seen:
            raise PlaneSSLError(f"{c.path}: the same cache is given twice")
        seen.add(c.path.resolve())
    return caches


def cache_weights(cfg: PretrainConfig, caches: Sequence[Cache]) -> list[float] | None:
    """The configured ``data.cache_weights`` checked against the caches (``None``: default,
    proportional to training studies)."""
    weights = list(cfg.data.cache_weights)
    if not weights:
        return None
    if len(weights) != len(caches):
        raise PlaneSSLError(f"data.cache_weights has {len(weights)} value(s) for "
                            f"{len(caches)} cache(s) ({', '.join(str(c.path) for c in caches)})")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise PlaneSSLError(f"data.cache_weights must be >= 0 with a positive sum, got {weights}")
    return weights


def run_pretraining(cfg: PretrainConfig,
                    cache: str | Path | Cache | Sequence[str | Path | Cache] | None,
                    out_dir: str | Path, resume: bool = False, callbacks: Iterable = (),
                    command: Sequence[str] | None = None, ids: Sequence[str] | None = None,
                    quiet: bool = False):
    """Train a pretext task; returns the trained module (:mod:`planessl.tasks.registry`).

    Args:
        cfg: the configuration (not modified; the saved copy records the caches and
            weights used in ``data.caches`` and ``data.cache_weights``).
        cache: a cache, or several mixed by ``cfg.data.cache_weights``
            (:mod:`planessl.data.mixing`); ``None``: ``cfg.data.caches``.
        out_dir: the run folder.
        resume: continue from ``out_dir``'s last checkpoint.
        callbacks: extra Lightning callbacks.
        command: the command line, recorded in ``run_info.json``.
        ids: restrict the first cache to these studies (e.g. the few-label protocol's
            pretrain pool); other caches are used whole.

    Writes the run folder described in :mod:`planessl.engine`, the validation heatmap
    preview ``val_heatmaps.png`` (line tasks) and ``weights.safetensors``. ``quiet``: no
    progress bar (for runs inside :func:`planessl.engine.quiet_logging`).
    """
    import copy

    import pytorch_lightning as pl

    from planessl.data.module import PretrainDataModule, check_caches
    from planessl.engine import (WEIGHTS_FILE, build_trainer, fit, last_checkpoint,
                                 resolve_precision, save_weights)
    from planessl.runinfo import save_run_info
    from planessl.tasks.registry import build_module

    out_dir = Path(out_dir)
    caches = open_caches(cache, cfg)
    spec = sample_spec(cfg)
    weights = cache_weights(cfg, caches)
    usable = check_caches(caches, spec.input_views,
                          spec.line_channels or spec.region_channels, spec.slice_location)
    if ids is not None:
        keep = set(ids)
        usable[0] = [i for i in usable[0] if i in keep]
        if not usable[0]:
            raise PlaneSSLError(f"{caches[0].path}: none of the selected studies can be used "
                                f"for pretraining")
    ckpt = last_checkpoint(out_dir) if resume else None
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = PretrainDataModule(caches, cfg.data, cfg.augment, spec, seed=cfg.seed, ids=usable,
                              weights=weights)
    cfg = copy.deepcopy(cfg)
    cfg.trainer.precision = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    cfg.data.caches = [str(c.path.resolve()) for c in caches]
    cfg.data.cache_weights = ([float(w) for w in weights] if weights is not None
                              else [float(n) for n in data.train_set.mix.sizes])
    from planessl.nnunet.network import is_nnunet, parse_network
    if is_nnunet(cfg.model.network):
        cfg.model.network = str(parse_network(cfg.model.network))  # absolute, with configuration
    module = build_module(cfg)
    module.preview_path = out_dir / "val_heatmaps.png"
    trainer = build_trainer(cfg.trainer, out_dir, callbacks=callbacks, quiet=quiet)
    if trainer.is_global_zero:
        save_run_info(out_dir, config_to_dict(cfg), cfg.seed, list(command) if command else None)
        if is_nnunet(cfg.model.network):
            from planessl.nnunet.checkpoint import keep_plans
            keep_plans(parse_network(cfg.model.network), out_dir)
    fit(trainer, module, data, out_dir, ckpt)
    if trainer.is_global_zero:
        save_weights(module.transferable_state_dict(), out_dir / WEIGHTS_FILE,
                     metadata={"task": cfg.task.name, "preset": cfg.model.preset,
                               "network": cfg.model.network,
                               "line_channels": ",".join(cfg.task.line_channels)})
    return module
