"""What a pretraining run takes from its caches when the user does not say: on knee caches the
input views and the line channels are the knee planes the caches hold (the defaults,
``sax`` inputs and ``2ch``/``4ch`` lines, are cardiac), so ``planessl pretrain --data
KNEE_CACHE`` needs no override.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from planessl.cache import Cache
from planessl.errors import PlaneSSLError

if TYPE_CHECKING:
    from planessl.config import PretrainConfig

#: Tasks whose targets come from lines or regions between views (they need two planes).
_LINE_TASKS = ("lines", "multitask")


def knee_planes(caches: Sequence[Cache]) -> list[str] | None:
    """The knee planes (sagittal, coronal, axial order) that studies of the caches hold, when
    every study of every cache is a knee exam; ``None`` otherwise (a cardiac or mixed set)."""
    from planessl.study import KNEE_VIEWS

    entries = [e for c in caches for e in c.entries]
    if not entries or not all(e.get("group") == "knee" for e in entries):
        return None
    return [v for v in KNEE_VIEWS if any(v in e["views"] for e in entries)]


def pretrain_defaults(cfg: "PretrainConfig", caches: Sequence[Cache],
                      given: set[str]) -> list[str]:
    """Fill what knee caches answer and the user did not set (in place):

    * ``data.input_views``: the knee planes the caches hold;
    * ``task.line_channels`` (``lines``, ``multitask``): the same planes: each plane's line
      on the others (the knee benchmark's recipe, ``configs/knee_pretrain.yaml``); a line
      needs two planes, so a cache of one plane refuses the line tasks with one line;
    * ``anatomy`` (regions cut by the cardiac long-axis views) is refused on knee caches.

    Returns:
        One line per value chosen, saying why (printed by the run).

    Raises:
        PlaneSSLError: a task that knee planes cannot serve (one line naming the caches).
    """
    planes = knee_planes(caches)
    if planes is None:
        return []
    names = ", ".join(str(c.path) for c in caches)
    task = cfg.task.name
    if task == "anatomy":
        raise PlaneSSLError(f"{names}: knee exams: the anatomy task segments SAX images into "
                            f"the regions the cardiac long-axis views cut; use lines, slices, "
                            f"multitask or an image-only method (simclr, rotation, genesis, "
                            f"gcl, pcl)")
    notes: list[str] = []
    if "data.input_views" not in given and planes:
        cfg.data.input_views = list(planes)
        notes.append(f"data.input_views=[{','.join(planes)}] (the knee planes of the cache)")
    if not {"data.image_size", "model.preset"} & given:
        notes += _narrow_grid(cfg, caches)
    if task in _LINE_TASKS and "task.line_channels" not in given and (
            task == "lines" or cfg.task.alpha > 0):
        if len(planes) < 2:
            raise PlaneSSLError(f"{names}: the {task} task needs lines between two knee "
                                f"planes; the knee exams hold only {', '.join(planes) or 'none'}"
                                f"; use --task slices (or an image-only method)")
        cfg.task.line_channels = list(planes)
        notes.append(f"task.line_channels=[{','.join(planes)}] (each knee plane's line on "
                     f"the other planes)")
    return notes


def _narrow_grid(cfg: "PretrainConfig", caches: Sequence[Cache]) -> list[str]:
    """``data.image_size`` narrowed to the knee exams' field of view at the grid's spacing
    (:mod:`planessl.field_of_view`; fine-tuning from this run inherits the grid)."""
    from planessl.field_of_view import field_of_view_mm, image_size_for
    from planessl.models.backbone import PRESETS

    if cfg.model.preset not in PRESETS:
        return []  # sample_spec refuses it with its own line
    preset = PRESETS[cfg.model.preset]
    default = int(cfg.data.image_size or preset.image_size)
    spacing = float(cfg.data.spacing_mm or preset.spacing_mm)
    depth = len(cfg.model.features or preset.features) - 1
    fovs = [field_of_view_mm(c, c.ids, cfg.data.input_views) for c in caches]
    fovs = [f for f in fovs if f is not None]
    if not fovs:
        return []
    size = image_size_for(max(fovs), spacing, depth, default)
    if size >= default:
        return []
    cfg.data.image_size = size
    return [f"data.image_size={size} (the knee exams' field of view, {max(fovs):.0f} mm, at "
            f"{spacing:g} mm; the default {default} px would be mostly padding)"]
