"""The plan of an experiment: its configuration (methods, arms, N, seeds, recipes) and, per
method, which pretraining run initialises its cells and with what overrides (see
:mod:`planessl.experiment`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from planessl.errors import PlaneSSLError
from planessl.tasks.registry import TASK_NAMES as PRETEXTS


@dataclass
class ArmConfig:
    """A named pretraining recipe, used as a method of an experiment (see
    :class:`ExperimentConfig`).

    Attributes:
        task: the pretext task (any of :data:`planessl.tasks.registry.TASK_NAMES`).
        data: caches pretrained on besides the pool (relative paths: to the config file);
            ``None``: the experiment's ``pretrain_data``.
        pool: also pretrain on the experiment's pretrain pool (first in the cache list);
            ``false``: on ``data`` only (e.g. phantoms only).
        weights: per-cache sampling weights (``data.cache_weights``: the pool first when
            included, then ``data``); ``None``: the experiment's ``pretrain_weights`` when
            the caches are the experiment's, else proportional to the studies.
        overrides: ``key=value`` overrides of this arm's pretraining, applied after the
            experiment's ``pretrain`` ones.
        init: another method whose pretraining initialises this arm's cells (``scratch``:
            none); the arm then pretrains nothing itself (``task``, ``data``, ``pool``,
            ``weights`` and ``overrides`` are unused). E.g. a semi-supervised arm that starts
            from the ``genesis`` arm's weights.
        finetune: ``key=value`` overrides of this arm's fine-tuning cells, applied after the
            experiment's ``finetune`` ones (e.g. ``finetune.semi=fixmatch``).
    """

    task: str = "multitask"
    data: list[str] | None = None
    pool: bool = True
    weights: list[float] | None = None
    overrides: list[str] = field(default_factory=list)
    init: str | None = None
    finetune: list[str] = field(default_factory=list)


@dataclass
class ExperimentConfig:
    """What an experiment runs.

    Attributes:
        data: the cache (relative paths are relative to the config file).
        task: ``segmentation`` or ``classification``.
        methods: ``scratch``, pretext names (``lines``, ``slices``, ``multitask``: pretrained
            on the pretrain pool plus ``pretrain_data``) and names of ``arms``.
        labelled: the N values.
        seeds: seeds (each changes the N studies chosen, the initialisation and the order).
        pretrain_config: YAML file of every pretraining run (``planessl pretrain --config``;
            relative paths: to the experiment's config file); empty: the defaults.
        pretrain: ``key=value`` overrides of every pretraining run (after the file).
        pretrain_data: extra caches every pretraining run also draws from (e.g. a phantom
            cache with the long-axis views of the line task), after the pretrain pool.
        pretrain_weights: per-cache sampling weights of those runs (pool first, then
            ``pretrain_data``); empty: proportional to the studies.
        pretrain_per_seed: one pretraining per method and seed (``true``), or one per
            method, made with the first seed and shared by every seed's cells (``false``).
        arms: named pretraining recipes (:class:`ArmConfig`) usable in ``methods``.
        finetune_config: YAML file of every fine-tuning run (``planessl finetune --config``),
            the same recipe for scratch and every pretrained arm; empty: the defaults.
        finetune: ``key=value`` overrides of every fine-tuning run, after the file (e.g.
            ``split.val_size=2``).
        lcc: keep the largest connected component of each structure in predictions.
        distances: compute HD95/ASSD per cell (``false``: Dice only, much faster).
        metric: the results column the summary, plot and paired differences use; empty:
            ``mean_dice`` (segmentation) or ``accuracy`` (classification); e.g. ``auc`` for
            the mean ROC AUC over the labels of a multi-label classification.

    Example (YAML): multitask on the ACDC pool alone, against multitask on the pool mixed
    half and half with phantoms, and the line task on phantoms only::

        data: acdc_cache
        methods: [scratch, multitask, multitask-phantom, lines-phantom-only]
        pretrain_per_seed: false
        arms:
          multitask-phantom: {task: multitask, data: [phantom_cache], weights: [1, 1]}
          lines-phantom-only: {task: lines, data: [phantom_cache], pool: false,
                               overrides: [task.line_channels=[2ch,3ch,4ch]]}
    """

    data: str = ""
    task: str = "segmentation"
    methods: list[str] = field(default_factory=lambda: ["scratch", "multitask"])
    labelled: list[int] = field(default_factory=lambda: [1, 2, 5])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    pretrain_config: str = ""
    pretrain: list[str] = field(default_factory=list)
    pretrain_data: list[str] = field(default_factory=list)
    pretrain_weights: list[float] = field(default_factory=list)
    pretrain_per_seed: bool = True
    arms: dict[str, ArmConfig] = field(default_factory=dict)
    finetune_config: str = ""
    finetune: list[str] = field(default_factory=list)
    lcc: bool = False
    distances: bool = True
    metric: str = ""


@dataclass(frozen=True)
class PretrainPlan:
    """How one method pretrains: the task, the caches after the pool, whether the pool is
    included, and the overrides (weights included)."""

    task: str
    extra: tuple[Path, ...] = ()
    pool: bool = True
    overrides: tuple[str, ...] = ()
    config_file: Path | None = None


def _weights_override(weights: list[float]) -> list[str]:
    return [f"data.cache_weights=[{','.join(repr(float(w)) for w in weights)}]"] if weights else []


def pretrain_owner(method: str, cfg: ExperimentConfig) -> str:
    """The method whose pretraining run initialises ``method``'s cells (itself unless an
    arm names another with ``init``; ``scratch`` for none).

    Raises:
        PlaneSSLError: an ``init`` chain that loops or names an unknown method.
    """
    seen = [method]
    while method in cfg.arms and cfg.arms[method].init is not None:
        method = cfg.arms[method].init
        if method in seen:
            raise PlaneSSLError(f"experiment config: arms' init loops: {' -> '.join(seen + [method])}")
        if method != "scratch" and method not in PRETEXTS and method not in cfg.arms:
            raise PlaneSSLError(f"experiment config: arm {seen[-1]!r}: init {method!r} is not "
                                f"a method (scratch, a pretext task or an arm)")
        seen.append(method)
    return method


def finetune_overrides(method: str, cfg: ExperimentConfig) -> list[str]:
    """The fine-tuning overrides of ``method``'s cells: the experiment's, then its arm's."""
    arm = cfg.arms.get(method)
    return list(cfg.finetune) + (list(arm.finetune) if arm is not None else [])


def pretrain_plan(method: str, cfg: ExperimentConfig, base: Path) -> PretrainPlan | None:
    """The :class:`PretrainPlan` of a method (``None`` for ``scratch``).

    Raises:
        PlaneSSLError: unknown method, bad arm, or an extra cache that cannot be opened.
    """
    from planessl.cache import Cache

    def paths(items: list[str]) -> tuple[Path, ...]:
        out = tuple(Path(p) if Path(p).is_absolute() else base / p for p in items)
        for p in out:
            Cache(p)  # a missing or broken cache stops here, before any training
        return out

    method = pretrain_owner(method, cfg)
    if method == "scratch":
        return None
    config_file = config_path(cfg.pretrain_config, base)
    if method in PRETEXTS:
        return PretrainPlan(method, paths(cfg.pretrain_data), True,
                            tuple(cfg.pretrain + _weights_override(cfg.pretrain_weights)),
                            config_file)
    if method not in cfg.arms:
        known = ", ".join(["scratch", *PRETEXTS, *cfg.arms])
        raise PlaneSSLError(f"experiment config: unknown method {method!r}; known: {known}")
    arm = cfg.arms[method]
    if arm.task not in PRETEXTS:
        raise PlaneSSLError(f"experiment config: arm {method!r}: task must be one of "
                            f"{', '.join(PRETEXTS)}, got {arm.task!r}")
    extra = paths(cfg.pretrain_data if arm.data is None else arm.data)
    if not arm.pool and not extra:
        raise PlaneSSLError(f"experiment config: arm {method!r} has pool: false and no data")
    weights = arm.weights
    if weights is None:
        weights = cfg.pretrain_weights if arm.data is None and arm.pool else []
    return PretrainPlan(arm.task, extra, arm.pool,
                        tuple(cfg.pretrain + _weights_override(list(weights)) + arm.overrides),
                        config_file)


def config_path(path: str, base: Path) -> Path | None:
    """A run configuration file named by the experiment (relative to ``base``), checked
    to exist; ``None`` when not given."""
    if not path:
        return None
    p = Path(path) if Path(path).is_absolute() else base / path
    if not p.is_file():
        raise PlaneSSLError(f"experiment config: {p}: config file not found")
    return p


def pretrain_dir(out: Path, method: str, seed: int, per_seed: bool) -> Path:
    """The pretraining run folder of (method, seed)."""
    return out / "pretrain" / (f"{method}-s{seed}" if per_seed else method)
