"""Pretraining run: cache → datasets → pretext task → Lightning engine → transferable weights."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from planessl.cache import Cache
from planessl.config import PretrainConfig, config_to_dict
from planessl.errors import PlaneSSLError
from planessl.models.backbone import PRESETS


def sample_spec(cfg: PretrainConfig):
    """The :class:`~planessl.data.SampleSpec` of a configuration (preset size/spacing
    unless the data section overrides them)."""
    from planessl.data.pretrain import SampleSpec
    from planessl.tasks.multitask import task_weights

    if cfg.model.preset not in PRESETS:
        raise PlaneSSLError(f"model.preset must be one of {', '.join(PRESETS)}, got {cfg.model.preset!r}")
    preset = PRESETS[cfg.model.preset]
    alpha, beta = task_weights(cfg)
    size = cfg.data.image_size or preset.image_size
    depth = len(cfg.model.features or preset.features) - 1
    if size % (2 ** depth):
        raise PlaneSSLError(f"data.image_size {size} must be divisible by {2 ** depth} "
                            f"(the backbone pools {depth} times)")
    lo, hi = cfg.data.clip_percentiles
    return SampleSpec(input_views=tuple(cfg.data.input_views),
                      line_channels=tuple(cfg.task.line_channels) if alpha > 0 else (),
                      slice_location=beta > 0, image_size=size,
                      spacing_mm=cfg.data.spacing_mm or preset.spacing_mm,
                      sigma_mm=cfg.task.sigma_mm,
                      sigma_thickness_factor=cfg.task.sigma_thickness_factor,
                      clip_percentiles=(lo, hi))


def run_pretraining(cfg: PretrainConfig, cache: str | Path | Cache, out_dir: str | Path,
                    resume: bool = False, callbacks: Iterable = (),
                    command: Sequence[str] | None = None, ids: Sequence[str] | None = None,
                    quiet: bool = False):
    """Train a pretext task; returns the trained :class:`PretrainModule`.

    Writes the run folder described in :mod:`planessl.engine`, the validation heatmap
    preview ``val_heatmaps.png`` (line tasks) and ``weights.safetensors``. ``quiet``: no
    progress bar (for runs inside :func:`planessl.engine.quiet_logging`).
    """
    import pytorch_lightning as pl

    from planessl.data.module import PretrainDataModule, check_views
    from planessl.engine import WEIGHTS_FILE, build_trainer, fit, last_checkpoint, save_weights
    from planessl.runinfo import save_run_info
    from planessl.tasks.multitask import PretrainModule

    out_dir = Path(out_dir)
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    spec = sample_spec(cfg)
    usable = check_views(cache, spec.input_views, spec.line_channels, spec.slice_location)
    # ``ids`` restricts pretraining to a subset (e.g. the few-label protocol's pretrain pool).
    ids = usable if ids is None else [i for i in usable if i in set(ids)]
    if not ids:
        raise PlaneSSLError(f"{cache.path}: none of the selected studies can be used for pretraining")
    ckpt = last_checkpoint(out_dir) if resume else None
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = PretrainModule(cfg)
    module.preview_path = out_dir / "val_heatmaps.png"
    data = PretrainDataModule(cache, cfg.data, cfg.augment, spec, seed=cfg.seed, ids=ids)
    trainer = build_trainer(cfg.trainer, out_dir, callbacks=callbacks, quiet=quiet)
    if trainer.is_global_zero:
        save_run_info(out_dir, config_to_dict(cfg), cfg.seed, list(command) if command else None)
    fit(trainer, module, data, out_dir, ckpt)
    if trainer.is_global_zero:
        save_weights(module.transferable_state_dict(), out_dir / WEIGHTS_FILE,
                     metadata={"task": cfg.task.name, "preset": cfg.model.preset,
                               "line_channels": ",".join(cfg.task.line_channels)})
    return module
