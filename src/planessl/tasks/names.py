"""The names of the pretext tasks (a leaf module: the task modules and the registry both
import it, so neither imports the other for them)."""

from __future__ import annotations

GEOMETRY_TASKS = ("lines", "slices", "multitask")
COMPETING_TASKS = ("anatomy", "simclr", "gcl", "pcl", "rotation", "genesis")
TASK_NAMES = GEOMETRY_TASKS + COMPETING_TASKS
