"""What a fine-tuning run takes from its cache when the user does not say (classification:
targets, exam-level pooling, knee input planes), so that a labelled cache needs no override.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from planessl.cache import Cache
from planessl.errors import PlaneSSLError

if TYPE_CHECKING:
    from planessl.finetune import FinetuneConfig


def given_keys(overrides: list[str], config_file: str | Path | None = None) -> set[str]:
    """Dotted keys set by the user (overrides and the config file), e.g. ``data.input_views``."""
    import yaml

    given = {o.split("=", 1)[0].strip() for o in overrides if "=" in o}
    if config_file is not None and Path(config_file).is_file():
        data = yaml.safe_load(Path(config_file).read_text()) or {}
        for section, values in (data.items() if isinstance(data, dict) else ()):
            if isinstance(values, dict):
                given.update(f"{section}.{k}" for k in values)
            else:
                given.add(str(section))
    return given


def classification_defaults(cfg: "FinetuneConfig", cache: Cache, given: set[str],
                            scratch: bool = True) -> list[str]:
    """Fill what the cache answers and the user did not set, for classification (in place):

    * targets (``finetune.target_key(s)``): the keys every study with targets has; several
      0/1 keys (abnormal, acl, meniscus) make a multi-label classifier, one key (``class``)
      a single one;
    * ``finetune.pooling``: ``max`` (exam-level) for several keys or knee exams, else
      ``image``;
    * ``data.input_views``: for knee exams, the planes (sagittal, coronal, axial) that every
      study with targets has;
    * ``data.image_size``: for knee exams trained from scratch, the grid narrowed to the
      exams' field of view at the grid's spacing (:mod:`planessl.field_of_view`): the cardiac
      default, 128 px of 2 mm (256 mm), is mostly padding around a ~150 mm knee field of view
      and costs 2.6x the compute of the 80 px that cover it (a pretrained start keeps the
      grid of its pretraining run, which on a knee cache is narrowed the same way).

    Returns:
        One line per value chosen, saying why (printed by the run).
    """
    from planessl.study import KNEE_VIEWS

    ft = cfg.finetune
    notes: list[str] = []
    with_targets = [e for e in cache.entries if e.get("targets")]
    if not with_targets:
        return notes
    if not {"finetune.target_key", "finetune.target_keys"} & given:
        common = [k for k in with_targets[0]["targets"]
                  if all(k in e["targets"] for e in with_targets)]
        binary = [k for k in common
                  if all(int(e["targets"][k]) in (0, 1) for e in with_targets)]
        if "class" in common or len(common) == 1:
            ft.target_key, ft.target_keys = ("class" if "class" in common else common[0]), []
            notes.append(f"finetune.target_key={ft.target_key} (the cache's target)")
        elif len(binary) > 1:
            ft.target_keys = binary
            notes.append(f"finetune.target_keys=[{','.join(binary)}] (the 0/1 targets every "
                         f"study with targets has: a multi-label classifier)")
        elif common:
            raise PlaneSSLError(f"{cache.path}: studies have several targets "
                                f"({', '.join(common)}), not all 0/1; choose one with "
                                f"finetune.target_key=KEY")
        else:
            keys = sorted({k for e in with_targets for k in e["targets"]})
            raise PlaneSSLError(f"{cache.path}: no target is common to the studies with "
                                f"targets ({', '.join(keys)}); choose with "
                                f"finetune.target_key=KEY or finetune.target_keys=[...]")
    keys = list(ft.target_keys) if ft.target_keys else [ft.target_key]
    labelled = [e for e in with_targets if all(k in e["targets"] for k in keys)]
    knee = bool(labelled) and all(e.get("group") == "knee" for e in labelled)
    if "finetune.pooling" not in given and (len(keys) > 1 or knee):
        ft.pooling = "max"
        notes.append("finetune.pooling=max (exam-level: " + (
            "knee exams" if knee else "several targets") + ")")
    if knee and "data.input_views" not in given:
        planes = [v for v in KNEE_VIEWS if all(v in e["views"] for e in labelled)]
        if not planes:
            raise PlaneSSLError(f"{cache.path}: no knee plane (sagittal, coronal, axial) is "
                                f"in every labelled exam; choose with data.input_views=[...]")
        cfg.data.input_views = planes
        notes.append(f"data.input_views=[{','.join(planes)}] (the planes every labelled knee "
                     f"exam has)")
    if knee and scratch and not {"data.image_size", "model.preset"} & given:
        from planessl.field_of_view import field_of_view_mm, image_size_for

        grid = grid_of(cfg)
        fov = field_of_view_mm(cache, [e["id"] for e in labelled], cfg.data.input_views)
        if fov is not None:
            size = image_size_for(fov, grid["spacing_mm"], len(features_of(cfg)) - 1,
                                  grid["image_size"])
            if size < grid["image_size"]:
                cfg.data.image_size = size
                notes.append(f"data.image_size={size} (the knee exams' field of view, "
                             f"{fov:.0f} mm, at {grid['spacing_mm']:g} mm; the default "
                             f"{grid['image_size']} px would be mostly padding); still a long "
                             f"run on a CPU: --config configs/knee_finetune.yaml, the knee "
                             f"benchmark's recipe, costs about 8x less per step")
    return notes


def grid_of(cfg: "FinetuneConfig") -> dict:
    """The resolved input grid (pixels, mm) of a configuration."""
    from planessl.models.backbone import PRESETS

    preset = PRESETS.get(cfg.model.preset, PRESETS["small"])
    return {"image_size": int(cfg.data.image_size or preset.image_size),
            "spacing_mm": float(cfg.data.spacing_mm or preset.spacing_mm),
            "clip_percentiles": [float(v) for v in cfg.data.clip_percentiles],
            "input_views": list(cfg.data.input_views)}


def features_of(cfg: "FinetuneConfig") -> list[int]:
    from planessl.models.backbone import PRESETS

    if cfg.model.network != "unet":
        raise PlaneSSLError(f"model.network={cfg.model.network}: planessl fine-tunes its own U-Net; "
                            f"fine-tune nnU-Net networks in nnU-Net (planessl export RUN --nnunet)")
    if cfg.model.features:
        return [int(f) for f in cfg.model.features]
    if cfg.model.preset not in PRESETS:
        raise PlaneSSLError(f"unknown model.preset {cfg.model.preset!r}; known: {', '.join(PRESETS)}")
    return list(PRESETS[cfg.model.preset].features)
