"""A fine-tuning run: few-label split, model (+ transferred weights), training, export.

A run folder ``RUN2`` holds::

    config.yaml, run_info.json   resolved configuration, seed, package versions
    split.json                   train / val / test / pool / pretrain study ids
    transfer.json                keys transferred, missing, unexpected (or "scratch")
    checkpoints/                 Lightning checkpoints (best by validation, last)
    metrics.csv (logs/)          training curves
    weights.safetensors          the selected network's weights
    model.json                   what `planessl predict` needs: task, classes, grid, backbone
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from planessl.cache import Cache
from planessl.config import (DataConfig, ModelConfig, OptimConfig, TrainerConfig,
                             config_to_dict, load_config)
from planessl.data.augment import FinetuneAugmentConfig
from planessl.errors import PlaneSSLError
from planessl.evaluation.protocol import Split, few_label_split
from planessl.finetune_defaults import features_of, grid_of  # noqa: F401 - re-exported
from planessl.runinfo import save_run_info, write_text_atomic
from planessl.tasks.semi_config import SemiConfig, check_semi

TASKS = ("segmentation", "classification")
MODEL_JSON = "model.json"


@dataclass
class FinetuneSection:
    """Fine-tuning specifics.

    Attributes:
        task: ``segmentation`` or ``classification``.
        transfer: ``encoder``, ``encoder+decoder`` or ``all-but-last`` (= encoder+decoder).
        transferred_lr_scale: learning rate of transferred parameters relative to
            ``optim.lr`` (0 freezes them).
        lambda_ce, lambda_dice: weights of the cross-entropy and Dice terms (segmentation).
        n_classes: segmentation classes including background (4: ACDC convention);
            classification: 0 infers ``max(target) + 1`` from the labelled studies.
        target_key: study target used for classification (e.g. ``class``, ``abnormal``).
        steps: optimiser steps of training.
        val_every_n_steps: validation (and checkpoint choice) interval in steps.
        images_per_study: classification training images drawn per study and pass.
        pooling: classification: ``image`` (a classifier of single images; a study's
            prediction is the mean of its images' probabilities) or ``max`` / ``mean``: an
            exam-level classifier (slice features of the encoder -> pooled over
            ``slices_per_view`` slices of every input view, e.g. ``data.input_views=[sagittal]``
            for one plane or ``[sagittal,coronal,axial]`` for all three -> linear).
        target_keys: several study targets (e.g. ``[abnormal,acl,meniscus]``): a multi-label
            classifier (one sigmoid each; exam-level poolings only); empty: ``target_key``.
        slices_per_view: exam-level classification: slices of each input view per exam.
        semi: semi-supervised segmentation: ``none`` (labelled studies only), ``fixmatch``
            (weak-to-strong consistency) or ``bcp`` (bidirectional copy-paste with a mean
            teacher); settings in the ``semi`` section (:mod:`planessl.tasks.semi`).
        unlabelled: the unlabelled images of ``semi``: ``pool`` (the cache's studies that
            are neither test, validation nor labelled training) and / or cache folders;
            test, validation and labelled ids are left out of every source.
    """

    task: str = "segmentation"
    transfer: str = "encoder+decoder"
    transferred_lr_scale: float = 1.0
    lambda_ce: float = 1.0
    lambda_dice: float = 1.0
    n_classes: int = 4
    target_key: str = "class"
    steps: int = 600
    val_every_n_steps: int = 100
    images_per_study: int = 4
    pooling: str = "image"
    target_keys: list[str] = field(default_factory=list)
    slices_per_view: int = 8
    semi: str = "none"
    unlabelled: list[str] = field(default_factory=list)


POOLINGS = ("image", "max", "mean")


def target_keys_of(ft: FinetuneSection) -> list[str]:
    """The study targets a classification run learns."""
    return list(ft.target_keys) if ft.target_keys else [ft.target_key]


@dataclass
class SplitConfig:
    """The few-label protocol (see :mod:`planessl.evaluation.protocol`)."""

    test_ids: list[str] | None = None
    test_fraction: float = 0.2
    val_size: int = 5
    pool_size: int | None = None
    split_seed: int = 0
    val_ids: list[str] | None = None
    pool_ids: list[str] | None = None


def _finetune_data() -> DataConfig:
    return DataConfig(batch_size=8)


def _finetune_optim() -> OptimConfig:
    """Adam 1e-3 with a 50-step warm-up and a cosine decay over the run."""
    return OptimConfig(lr=1e-3, weight_decay=1e-5, schedule="cosine", warmup_steps=50)


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run needs (saved resolved as ``config.yaml``)."""

    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=_finetune_data)
    augment: FinetuneAugmentConfig = field(default_factory=FinetuneAugmentConfig)
    optim: OptimConfig = field(default_factory=_finetune_optim)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    semi: SemiConfig = field(default_factory=SemiConfig)
    split: SplitConfig = field(default_factory=SplitConfig)


# ----------------------------------------------------------------------------- run folders
def read_run_config(run: Path) -> dict:
    """The ``config.yaml`` of a run folder as a dict (PlaneSSLError when absent)."""
    import yaml

    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise PlaneSSLError(f"{run}: not a planessl run folder (no config.yaml)")
    return yaml.safe_load(path.read_text()) or {}


def check_pretrain_run(run: Path) -> dict:
    """The config of a pretraining run; refuses a fine-tuned model or a foreign folder."""
    run = Path(run)
    if not run.is_dir():
        raise PlaneSSLError(f"{run}: --init must be a pretraining run folder or 'scratch'")
    if (run / MODEL_JSON).is_file():
        kind = json.loads((run / MODEL_JSON).read_text()).get("task", "?")
        raise PlaneSSLError(f"{run}: is a fine-tuned {kind} model, not a pretraining run; "
                            f"--init needs the output of `planessl pretrain`")
    cfg = read_run_config(run)
    if "task" not in cfg or "name" not in (cfg.get("task") or {}):
        raise PlaneSSLError(f"{run}: config.yaml has no pretext task; not a `planessl pretrain` run")
    return cfg


def read_model(run: Path, task: str | None = None) -> dict:
    """``model.json`` of a fine-tuned run, checked against the expected ``task``."""
    run = Path(run)
    path = run / MODEL_JSON
    if not path.is_file():
        what = "a pretraining run" if (run / "config.yaml").is_file() else "not a planessl run"
        raise PlaneSSLError(f"{run}: no {MODEL_JSON} ({what}); --model needs the output of "
                            f"`planessl finetune`")
    model = json.loads(path.read_text())
    if task is not None and model.get("task") != task:
        raise PlaneSSLError(f"{run}: is a {model.get('task')} model, not {task}")
    return model


# ----------------------------------------------------------------------------- the run
def labelled_ids(cache: Cache, task: str, target_key: str | list[str]) -> list[str]:
    """Studies usable as labelled examples for ``task`` (classification: with every one of
    the target keys)."""
    if task == "segmentation":
        return [e["id"] for e in cache.entries if e.get("labels")]
    keys = [target_key] if isinstance(target_key, str) else list(target_key)
    return [e["id"] for e in cache.entries if all(k in e.get("targets", {}) for k in keys)]


def make_split(cache: Cache, cfg: FinetuneConfig, n: int) -> Split:
    """The few-label split of a cache for ``n`` labelled studies (PlaneSSLError when the
    cache has no labels for the task or ``n`` exceeds the pool)."""
    task = cfg.finetune.task
    keys = target_keys_of(cfg.finetune)
    ids = labelled_ids(cache, task, keys)
    if not ids:
        what = ("segmentation labels" if task == "segmentation" else
                f"target{'s' if len(keys) > 1 else ''} {', '.join(repr(k) for k in keys)}")
        raise PlaneSSLError(f"{cache.path}: no study has {what}; fine-tuning needs labelled data")
    s = cfg.split
    return few_label_split(cache.ids, ids, n, cfg.seed, test_ids=s.test_ids,
                           test_fraction=s.test_fraction, val_size=s.val_size,
                           pool_size=s.pool_size, split_seed=s.split_seed, val_ids=s.val_ids,
                           pool_ids=s.pool_ids)


def inherit_from_pretrain(cfg: FinetuneConfig, pre: dict, overrides: list[str]) -> None:
    """Take the backbone and input grid (size, spacing, clipping) of the pretraining run
    unless overridden; the input views stay the fine-tuning task's own."""
    given = {o.split("=", 1)[0].strip() for o in overrides}
    model, data = pre.get("model") or {}, pre.get("data") or {}
    if str(model.get("network") or "unet") != "unet":
        raise PlaneSSLError(f"the pretraining run used model.network={model['network']}: "
                            f"fine-tune it in nnU-Net (planessl export RUN --nnunet OUT.pth, then "
                            f"nnUNetv2_train ... -pretrained_weights OUT.pth)")
    if "model.preset" not in given and model.get("preset"):
        cfg.model.preset = model["preset"]
    if "model.features" not in given and model.get("features") is not None:
        cfg.model.features = list(model["features"])
    for key in ("image_size", "spacing_mm", "clip_percentiles"):
        if f"data.{key}" not in given and data.get(key) is not None:
            setattr(cfg.data, key, data[key])


def build_net(task: str, features: list[int], n_classes: int, pooling: str = "image"):
    """The network of a fine-tuning task (classification: per image, or per exam with
    ``pooling`` ``max`` / ``mean``; ``n_classes``: its outputs)."""
    from planessl.models.backbone import UNetBackbone
    from planessl.tasks.classification import ClassificationNet, ExamClassificationNet
    from planessl.tasks.segmentation import SegmentationNet

    backbone = UNetBackbone(1, tuple(features))
    if task == "classification" and pooling != "image":
        return ExamClassificationNet(backbone, n_classes, pooling)
    return (SegmentationNet(backbone, n_classes) if task == "segmentation"
            else ClassificationNet(backbone, n_classes))


def load_config_for(overrides: list[str], config_file: str | None = None) -> FinetuneConfig:
    return load_config(FinetuneConfig, config_file, overrides)


def finetune(cache_path: str | Path, n_labelled: int, init: str, out: str | Path,
             overrides: list[str] | None = None, seed: int | None = None,
             config_file: str | None = None, echo: Callable[[str], None] = print,
             quiet: bool = False, resume: bool = False) -> dict:
    """Run one fine-tuning; returns ``model.json``'s content (plus timing).

    Args:
        cache_path: planessl cache with labels (segmentation) or targets (classification).
        n_labelled: number of labelled training studies.
        init: a pretraining run folder, or ``"scratch"``.
        out: the run folder to create.
        overrides: ``key=value`` configuration overrides.
        seed: overrides ``seed``.
        echo: where planessl's messages go.
        quiet: no progress bar (for runs inside :func:`planessl.engine.quiet_logging`).
        resume: continue ``out`` from its last checkpoint (same configuration required;
            exact for ``finetune.semi`` methods, whose batches are seeded per step).
    """
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from planessl.data.augment import build_segmentation_augment
    from planessl.data.labelled import (ClassificationDataset, GridSpec,
                                        InMemorySegmentationDataset, study_target)
    from planessl.data.transforms import PlaneAugment
    from planessl.engine import WEIGHTS_FILE, build_trainer, fit, resolve_precision, save_weights
    from planessl.tasks.classification import ClassificationTask
    from planessl.tasks.segmentation import SegmentationTask
    from planessl.tasks.transfer import load_weights, report_transfer, transfer_backbone

    overrides = list(overrides or [])
    cfg = load_config_for(overrides, config_file)
    if seed is not None:
        cfg.seed = int(seed)
    ft = cfg.finetune
    if ft.task not in TASKS:
        raise PlaneSSLError(f"unknown task {ft.task!r}; known: {', '.join(TASKS)}")
    ignored = check_semi(ft.semi, ft.unlabelled, cfg.semi, ft.task)
    if ignored:
        echo(f"warning: {ignored}")
    pre_cfg = None
    if init != "scratch":
        pre_cfg = check_pretrain_run(Path(init))
        inherit_from_pretrain(cfg, pre_cfg, overrides)
    cache = Cache(cache_path)
    if ft.task == "classification":
        from planessl.finetune_defaults import classification_defaults, given_keys

        for note in classification_defaults(cfg, cache, given_keys(overrides, config_file),
                                            scratch=pre_cfg is None):
            echo(f"from the cache: {note}")
    split = make_split(cache, cfg, n_labelled)
    semi_sources = None
    if ft.semi != "none":
        from planessl.finetune_semi import semi_sources as find_unlabelled

        semi_sources = find_unlabelled(cfg, cache, split)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grid = grid_of(cfg)
    features = features_of(cfg)
    if grid["image_size"] % (2 ** (len(features) - 1)):
        raise PlaneSSLError(f"data.image_size {grid['image_size']} is not divisible by "
                            f"2^{len(features) - 1} (the backbone's poolings)")
    n_classes = ft.n_classes
    if ft.pooling not in POOLINGS:
        raise PlaneSSLError(f"finetune.pooling must be one of {', '.join(POOLINGS)}, got "
                            f"{ft.pooling!r}")
    keys = target_keys_of(ft)
    multilabel = ft.task == "classification" and len(keys) > 1
    if multilabel and ft.pooling == "image":
        raise PlaneSSLError("several finetune.target_keys (multi-label) need an exam-level "
                            "classifier: finetune.pooling=max or mean")
    if multilabel:
        n_classes = len(keys)
    elif ft.task == "classification" and n_classes <= 0:
        values = [study_target(cache.entry(i), ft.target_key) for i in split.train + split.val + split.test]
        n_classes = max(2, max(v for v in values if v is not None) + 1)
    cfg.trainer.precision = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    ckpt_path = resume_checkpoint(out, config_to_dict(cfg)) if resume else None
    save_run_info(out, config_to_dict(cfg), cfg.seed)
    write_text_atomic(out / "split.json", json.dumps(split.to_dict(), indent=1))

    pl.seed_everything(cfg.seed, workers=True)
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    net = build_net(ft.task, features, n_classes, ft.pooling if ft.task == "classification" else "image")
    transferred: list[str] = []
    if pre_cfg is not None:
        weights, wpath = load_weights(Path(init))
        report = transfer_backbone(net.backbone, weights, ft.transfer, source_name=str(wpath))
        transferred = report["transferred"]
        report_transfer(report, out, echo)
    else:
        write_text_atomic(out / "transfer.json", json.dumps({"scope": "scratch", "transferred": [],
                                                             "missing": [], "unexpected": []}))
    semi_loader = None
    spec = GridSpec(grid["image_size"], grid["spacing_mm"], tuple(grid["clip_percentiles"]),
                    tuple(grid["input_views"]))
    aug = cfg.augment
    o = cfg.optim
    opt = dict(lr=o.lr, transferred_lr_scale=ft.transferred_lr_scale,
               weight_decay=o.weight_decay, step_epochs=o.step_epochs, step_gamma=o.step_gamma,
               schedule=o.schedule, warmup_steps=o.warmup_steps, total_steps=ft.steps)
    if ft.task == "segmentation":
        train_ds = InMemorySegmentationDataset(
            cache, split.train, spec, build_segmentation_augment(aug, spec.image_size, spec.spacing_mm),
            aug.margin if aug.enabled else 1.0, n_classes)
        plain = dataclasses.replace(aug, enabled=False)
        val_ds = (InMemorySegmentationDataset(
            cache, split.val, spec, build_segmentation_augment(plain, spec.image_size, spec.spacing_mm),
            1.0, n_classes, edes_only=True) if split.val else None)
        if ft.semi != "none":
            from planessl.finetune_semi import build_semi

            module, semi_loader = build_semi(cfg, semi_sources, split, spec, train_ds, net,
                                             transferred, opt, out, echo)
        else:
            module = SegmentationTask(net, transferred, lambda_ce=ft.lambda_ce,
                                      lambda_dice=ft.lambda_dice, **opt)
        monitor = "val_dice"
    elif ft.pooling != "image":
        from planessl.data.labelled import ExamClassificationDataset
        from planessl.tasks.classification import ExamClassificationTask

        augment = (PlaneAugment(aug.rotation_deg, tuple(aug.zoom), aug.shift_mm, aug.flip)
                   if aug.enabled else None)
        train_ds = ExamClassificationDataset(cache, split.train, spec, keys, augment,
                                             ft.slices_per_view, multilabel)
        val_ds = (ExamClassificationDataset(cache, split.val, spec, keys, None,
                                            ft.slices_per_view, multilabel)
                  if split.val else None)
        module = ExamClassificationTask(net, transferred, multilabel=multilabel, **opt)
        monitor = "val_acc"
    else:
        augment = (PlaneAugment(aug.rotation_deg, tuple(aug.zoom), aug.shift_mm, aug.flip)
                   if aug.enabled else None)
        train_ds = ClassificationDataset(cache, split.train, spec, ft.target_key, augment,
                                         ft.images_per_study)
        val_ds = (ClassificationDataset(cache, split.val, spec, ft.target_key, None, ft.images_per_study)
                  if split.val else None)
        module = ClassificationTask(net, transferred, **opt)
        monitor = "val_acc"

    # One "epoch" = val_every_n_steps batches drawn with replacement, so validation,
    # checkpoint choice and the lr step decay are in optimiser steps whatever N is.
    bs = cfg.data.batch_size
    interval = max(1, min(ft.val_every_n_steps, ft.steps))
    gen = torch.Generator().manual_seed(cfg.seed)
    train_dl = DataLoader(train_ds, batch_size=bs, num_workers=cfg.data.num_workers,
                          sampler=RandomSampler(train_ds, replacement=True,
                                                num_samples=interval * bs, generator=gen),
                          drop_last=True, persistent_workers=cfg.data.num_workers > 0)
    if semi_loader is not None:  # one batch per step, seeded by the step
        train_dl = semi_loader
    val_dl = (DataLoader(val_ds, batch_size=bs, num_workers=cfg.data.num_workers)
              if val_ds is not None else None)
    tr = dataclasses.replace(cfg.trainer, max_steps=ft.steps, max_epochs=-1, val_every_n_epochs=1,
                             log_every_n_steps=min(cfg.trainer.log_every_n_steps, interval))
    trainer = build_trainer(tr, out, monitor=monitor if val_dl is not None else None, mode="max",
                            use_distributed_sampler=False, quiet=quiet)
    t0 = time.time()
    fit(trainer, module, None, out, ckpt_path, train_dataloaders=train_dl, val_dataloaders=val_dl)
    train_s = time.time() - t0
    ckpt = trainer.checkpoint_callback
    best = ckpt.best_model_path if val_dl is not None else ""
    best_score = ckpt.best_model_score if val_dl is not None else None
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    save_weights(module.net.state_dict(), out / WEIGHTS_FILE,
                 metadata={"task": ft.task, "n_classes": str(n_classes)})
    model = {"task": ft.task, "n_classes": n_classes, "features": features,
             "grid": grid, "target_key": ft.target_key, "init": str(init),
             "transfer": ft.transfer if pre_cfg is not None else "scratch",
             "selected": "best" if best else "last",
             "monitor": monitor if val_dl is not None else None,
             "best_score": None if best_score is None else float(best_score),
             "train_seconds": round(train_s, 1), "steps": ft.steps, "seed": cfg.seed,
             "n_labelled": n_labelled}
    if ft.task == "classification":
        model.update(pooling=ft.pooling, target_keys=keys, multilabel=multilabel,
                     slices_per_view=ft.slices_per_view)
    if model["best_score"] is not None and math.isnan(model["best_score"]):
        model["best_score"] = None
    write_text_atomic(out / MODEL_JSON, json.dumps(model, indent=1))
    echo(f"fine-tuned {ft.task} on {n_labelled} labelled studies ({', '.join(split.train)}) "
         f"in {train_s:.0f} s; weights: {out / WEIGHTS_FILE}")
    return model


def resume_checkpoint(out: Path, config: dict) -> Path:
    """The last checkpoint of run ``out`` to resume, after checking that ``config`` is the
    configuration the run was started with (PlaneSSLError naming the first key that
    differs, or a missing / corrupt checkpoint)."""
    from planessl.engine import last_checkpoint

    if not (Path(out) / "config.yaml").is_file():
        raise PlaneSSLError(f"{out}: no fine-tuning run to resume (no config.yaml); run "
                            f"without --resume first")
    saved = read_run_config(out)

    def flat(d: dict, prefix: str = "") -> dict:
        items = {}
        for k, v in d.items():
            items.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return items

    old, new = flat(saved), flat(config)
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise PlaneSSLError(f"{out}: cannot resume: the run was started with {key}="
                                f"{old.get(key)!r}, now {new.get(key)!r}")
    return last_checkpoint(out)


def load_finetuned(run: str | Path, task: str | None = None):
    """``(net, model_json)`` of a fine-tuned run, weights loaded, in eval mode."""
    from planessl.tasks.transfer import load_weights

    model = read_model(Path(run), task)
    net = build_net(model["task"], model["features"], model["n_classes"],
                    model.get("pooling", "image"))
    weights, path = load_weights(Path(run))
    try:
        net.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise PlaneSSLError(f"{path}: weights do not match {MODEL_JSON} ({str(exc).splitlines()[0]})") from None
    return net.eval(), model
