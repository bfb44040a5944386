"""Every pretext task by name: its LightningModule and what its samples need.

The plane-geometry tasks (``lines``, ``slices``, ``multitask``) and the competing
self-supervised methods share the backbone, the data pipeline, the engine and fine-tuning;
they differ only in the sample's input/targets (:class:`TaskNeeds`) and the module.
"""

from __future__ import annotations

from dataclasses import dataclass

from planessl.errors import PlaneSSLError
from planessl.tasks.names import COMPETING_TASKS, GEOMETRY_TASKS, TASK_NAMES

__all__ = ["COMPETING_TASKS", "GEOMETRY_TASKS", "TASK_NAMES", "TaskNeeds", "build_module",
           "module_class", "task_needs"]


@dataclass(frozen=True)
class TaskNeeds:
    """What the samples of a task hold.

    Attributes:
        lines: line heatmaps of ``task.line_channels``.
        slice_location: the relative slice location (the SAX stack as input).
        pretext_input: see :class:`planessl.data.pretrain.SampleSpec`.
        regions: anatomical regions cut by the ``task.line_channels`` planes.
        needs_views: the task's target needs the ``task.line_channels`` views.
    """

    lines: bool = False
    slice_location: bool = False
    pretext_input: str = "image"
    regions: bool = False
    needs_views: bool = False


def task_needs(name: str, alpha: float = 1.0, beta: float = 1.0,
               restore_weight: float = 0.0) -> TaskNeeds:
    """The needs of task ``name`` (``alpha``/``beta``: the multitask loss weights;
    ``restore_weight`` > 0: a plane-geometry task with the restoration term, whose samples
    hold the corrupted image as input and the clean one as ``target``)."""
    restore = "genesis" if restore_weight > 0 else "image"
    if name == "lines":
        return TaskNeeds(lines=True, needs_views=True, pretext_input=restore)
    if name == "slices":
        return TaskNeeds(slice_location=True, pretext_input=restore)
    if name == "multitask":
        return TaskNeeds(lines=alpha > 0, slice_location=beta > 0, needs_views=alpha > 0,
                         pretext_input=restore)
    if name == "anatomy":
        return TaskNeeds(regions=True, needs_views=True)
    if name in ("gcl", "pcl"):
        return TaskNeeds(slice_location=True, pretext_input="two_views")
    if name == "simclr":
        return TaskNeeds(pretext_input="two_views")
    if name == "rotation":
        return TaskNeeds(pretext_input="rotation")
    if name == "genesis":
        return TaskNeeds(pretext_input="genesis")
    raise PlaneSSLError(f"task.name must be one of {', '.join(TASK_NAMES)}, got {name!r}")


def module_class(name: str):
    """The LightningModule class of task ``name``."""
    if name in GEOMETRY_TASKS:
        from planessl.tasks.multitask import PretrainModule
        return PretrainModule
    if name == "anatomy":
        from planessl.tasks.anatomy import AnatomyModule
        return AnatomyModule
    if name in ("simclr", "gcl", "pcl"):
        from planessl.tasks.contrastive import ContrastiveModule
        return ContrastiveModule
    if name == "rotation":
        from planessl.tasks.rotation import RotationModule
        return RotationModule
    if name == "genesis":
        from planessl.tasks.genesis import GenesisModule
        return GenesisModule
    raise PlaneSSLError(f"task.name must be one of {', '.join(TASK_NAMES)}, got {name!r}")


def build_module(cfg):
    """A new pretext module for the configuration."""
    return module_class(cfg.task.name)(cfg)
