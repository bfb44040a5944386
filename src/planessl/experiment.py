"""The few-label experiment: methods x N labelled studies x seeds, against scratch.

For every method other than ``scratch`` and every seed (or once per method, with
``pretrain_per_seed: false``), one pretraining run on the protocol's pretrain pool (studies
outside the labelled pool, validation and test sets), plus any extra caches (e.g. a phantom
cache with the long-axis views a SAX-only archive lacks); then for every (method, N, seed)
cell: fine-tune, predict the fixed test set, evaluate.

Output folder::

    pretrain/<method>-s<seed>/       pretraining runs (reused when finished, resumed when not;
                                     pretrain/<method>/ with pretrain_per_seed: false), each
                                     with log.txt (Lightning's messages, warnings)
    cells/<method>-n<N>-s<seed>/     fine-tuning run, pred/, evaluation.csv/json, log.txt
    results.csv                      one row per finished cell
    summary.md                       mean ± std per method and N with the number of seeds;
                                     paired difference to scratch with its sign count and
                                     the difference of every seed
    dice_vs_n.png                    primary metric against N per method
    learning_curves.png              validation metric against step of every cell

The console gets one line per pretraining run and per cell
(``[3/8] multitask N=1 seed 0: mean Dice 0.712 (41 s)``); everything else a run says
(progress, model summary, library warnings) goes to its ``log.txt``.

An interrupted experiment resumes: finished cells (in ``results.csv``) are not redone,
an unfinished cell is redone from the start, an unfinished pretraining is resumed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from planessl.config import config_to_dict, load_config
from planessl.errors import PlaneSSLError
from planessl.evaluation.curves import plot_learning_curves
from planessl.runinfo import save_run_info, write_text_atomic
from planessl.tasks.registry import TASK_NAMES as PRETEXTS

RESULTS = "results.csv"


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
    """

    task: str = "multitask"
    data: list[str] | None = None
    pool: bool = True
    weights: list[float] | None = None
    overrides: list[str] = field(default_factory=list)


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


def primary_metric(task: str) -> str:
    return "mean_dice" if task == "segmentation" else "accuracy"


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV file (``[]`` when it does not exist)."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict]) -> None:
    """CSV of ``rows`` (columns: the union of their keys, in first-seen order), written
    atomically."""
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _last_value(path: Path, keys: tuple[str, ...]) -> tuple[str, float] | None:
    """The last logged value of the first of ``keys`` found in a ``metrics.csv``."""
    rows = read_rows(path)
    for key in keys:
        values = [r[key] for r in rows if r.get(key) not in (None, "")]
        if values:
            return key, float(values[-1])
    return None


def pretrain_once(method: str, plan: PretrainPlan, seed: int, cache_path: Path, ids: list[str],
                  out: Path, echo: Callable[[str], None]) -> Path:
    """The pretraining run of (method, seed) following ``plan`` on the pretrain pool ``ids``
    of ``cache_path`` (when the plan includes it) and the plan's extra caches, trained
    unless already finished."""
    from planessl.config import PretrainConfig
    from planessl.engine import LOG_FILE, METRICS_FILE, WEIGHTS_FILE, quiet_logging
    from planessl.pretraining import run_pretraining

    if (out / WEIGHTS_FILE).is_file():
        echo(f"pretraining {method} seed {seed}: done earlier ({out})")
        return out
    cfg = load_config(PretrainConfig, plan.config_file,
                      [f"task.name={plan.task}", f"seed={seed}"] + list(plan.overrides))
    caches = ([cache_path] if plan.pool else []) + list(plan.extra)
    resume = (out / "checkpoints" / "last.ckpt").is_file()
    what = f"{len(ids)} pool studies" if plan.pool else "no pool studies"
    if plan.extra:
        what += " + " + ", ".join(p.name for p in plan.extra)
    name = method if method == plan.task else f"{method} ({plan.task})"
    what = (f"pretraining {name} seed {seed} on {what}"
            + (" (resumed)" if resume else ""))
    t0 = time.time()
    try:
        with quiet_logging(out / LOG_FILE) as log:
            log(f"{what} -> {out}")
            module = run_pretraining(cfg, caches, out, resume=resume,
                                     ids=ids if plan.pool else None, quiet=True)
    except Exception:
        echo(f"{what}: failed, see {out / LOG_FILE}")
        raise
    last = _last_value(out / METRICS_FILE, ("val/loss", "train/loss"))
    loss = f", {last[0]} {last[1]:.4f}" if last else ""
    echo(f"{what}: {module.global_step} steps{loss} ({time.time() - t0:.0f} s)")
    return out


def run_cell(method: str, n: int, seed: int, init: str, cfg: ExperimentConfig, cache_path: Path,
             out: Path) -> dict:
    """Fine-tune, predict the test set and evaluate one cell; returns its results row.

    Everything the cell says (planessl's messages, Lightning's, warnings) goes to
    ``out/log.txt``."""
    from planessl.engine import LOG_FILE, quiet_logging

    if out.exists():
        shutil.rmtree(out)  # an unfinished cell is redone from the start
    with quiet_logging(out / LOG_FILE) as log:
        log(f"cell {method} N={n} seed {seed}, init {init}")
        return _run_cell(method, n, seed, init, cfg, cache_path, out, log)


def _run_cell(method: str, n: int, seed: int, init: str, cfg: ExperimentConfig, cache_path: Path,
              out: Path, echo: Callable[[str], None]) -> dict:
    from planessl.evaluation.evaluate import (evaluate_classification, evaluate_segmentation,
                                              write_results)
    from planessl.finetune import finetune
    from planessl.predict import predict_cache

    t0 = time.time()
    model = finetune(cache_path, n, init, out / "run", [f"finetune.task={cfg.task}"] + cfg.finetune,
                     seed=seed, config_file=cfg.finetune_config or None, echo=echo, quiet=True)
    split = json.loads((out / "run" / "split.json").read_text())
    predict_cache(out / "run", cache_path, out / "pred", split["test"], lcc=cfg.lcc, echo=echo)
    row = {"method": method, "n": n, "seed": seed}
    if cfg.task == "segmentation":
        rows, summary = evaluate_segmentation(out / "pred", cache_path, echo=echo,
                                              distances=cfg.distances)
        write_results(rows, summary, out)
        for k, s in summary["all"].items():
            row[k] = s["mean"]
        row["unit"] = "/".join(summary["units"])
        row["n_test_volumes"] = summary["n_volumes"]
    else:
        rows, summary = evaluate_classification(out / "pred", cache_path, echo=echo)
        write_results(rows, summary, out)
        row.update(accuracy=summary["accuracy"], auc=summary["auc"], n_test_studies=summary["n_studies"])
        for key, m in summary.get("labels", {}).items():  # multi-label: each label too
            row[f"{key}_accuracy"], row[f"{key}_auc"] = m["accuracy"], m["auc"]
    row["train_ids"] = " ".join(split["train"])
    row["train_seconds"] = model["train_seconds"]
    row["cell_seconds"] = round(time.time() - t0, 1)
    return row


METRIC_NAMES = {"mean_dice": "mean Dice", "accuracy": "accuracy"}


def metric_name(metric: str) -> str:
    """How a metric is named for people (``mean_dice`` -> ``mean Dice``)."""
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def _signed(x: float) -> str:
    """``+0.031`` / ``−0.004`` (a real minus sign, so the signs line up and read)."""
    return f"{'−' if x < 0 else '+'}{abs(x):.3f}"


def _fmt(values: list[float]) -> str:
    v = np.array([x for x in values if not math.isnan(x)])
    if v.size == 0:
        return "–"
    return f"{v.mean():.3f} ± {v.std():.3f}" if v.size > 1 else f"{v.mean():.3f}"


def summarise_results(rows: list[dict], metric: str, methods: list[str], ns: list[int]) -> str:
    """Markdown: mean ± std (over seeds) per method and N with the number of seeds; paired
    difference to scratch (same N, same seed) with its sign count and every seed's value."""
    def val(r):
        return float(r[metric]) if r.get(metric) not in (None, "") else math.nan

    table = {(r["method"], int(r["n"]), int(r["seed"])): val(r) for r in rows}
    table = {k: v for k, v in table.items() if not math.isnan(v)}
    seeds = sorted({s for (_, _, s) in table})
    out = [f"# Few-label results ({metric}, mean ± std over seeds)", "",
           "| method | seeds | " + " | ".join(f"N={n}" for n in ns) + " |",
           "|---|---|" + "---|" * len(ns)]
    for m in methods:
        m_seeds = sorted({s for (mm, n, s) in table if mm == m and n in ns})
        cells = []
        for n in ns:
            v = [table[(m, n, s)] for s in seeds if (m, n, s) in table]
            partial = f" ({len(v)} of {len(m_seeds)} seeds)" if 0 < len(v) < len(m_seeds) else ""
            cells.append(_fmt(v) + partial)
        out.append(f"| {m} | {len(m_seeds)} | " + " | ".join(cells) + " |")
    if "scratch" in methods and len(methods) > 1:
        out += ["", "## Paired difference to scratch (same N, same seed)", "",
                "Mean ± std of (method − scratch) over seeds; in brackets how many seeds are "
                "better (+) and worse (−) than scratch, then the difference of each seed "
                "in seed order.", "",
                "| method | " + " | ".join(f"N={n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
        for m in methods:
            if m == "scratch":
                continue
            cells = []
            for n in ns:
                paired = [s for s in seeds if (m, n, s) in table and ("scratch", n, s) in table]
                d = [table[(m, n, s)] - table[("scratch", n, s)] for s in paired]
                if not d:
                    cells.append("–")
                    continue
                pos, neg = sum(x > 0 for x in d), sum(x < 0 for x in d)
                if len(d) == 1:  # one seed: no spread to give, nothing more to list
                    cells.append(f"{_signed(d[0])} ({pos}+/{neg}− of 1)")
                    continue
                each = ", ".join(_signed(x) for x in d)
                cells.append(f"{_signed(float(np.mean(d)))} ± {np.std(d):.3f} "
                             f"({pos}+/{neg}− of {len(d)}: {each})")
            out.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def results_figure(rows: list[dict], metric: str, methods: list[str], ns: list[int]):
    """The figure of :func:`plot_results` (a ``matplotlib.figure.Figure``, no pyplot state):
    metric (mean ± std over seeds) against N on a log axis ticked at the N values only,
    one line per method, the methods' points shifted a little sideways so that their
    error bars do not hide each other, the legend beside the axes."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    ns = sorted(ns)
    fig = Figure(figsize=(6.4, 3.8), dpi=120)
    ax = fig.subplots()
    # sideways shift in log space: a few % of the decades shown, centred on the true N
    span = math.log(max(ns) / min(ns)) if len(ns) > 1 and min(ns) > 0 else math.log(10)
    step = 0.035 * span
    most_seeds = 0
    for i, m in enumerate(methods):
        xs, ys, es, k = [], [], [], []
        for n in ns:
            v = [float(r[metric]) for r in rows if r["method"] == m and int(r["n"]) == n
                 and r.get(metric) not in (None, "")]
            v = [x for x in v if not math.isnan(x)]
            if v:
                xs.append(n), ys.append(np.mean(v)), es.append(np.std(v)), k.append(len(v))
        if not xs:
            continue
        shift = math.exp(step * (i - (len(methods) - 1) / 2))
        seeds = f"{min(k)}" if min(k) == max(k) else f"{min(k)}–{max(k)}"
        label = f"{m} ({seeds} seed{'s' if max(k) > 1 else ''})"
        most_seeds = max(most_seeds, max(k))
        ax.errorbar([x * shift for x in xs], ys, yerr=es if max(k) > 1 else None, marker="o",
                    capsize=4, label=label)
    ax.set_xscale("log")
    # ticks at the N values only: no log-axis minor ticks, no "2×10⁰" labels
    ax.xaxis.set_major_locator(FixedLocator(ns))
    ax.xaxis.set_major_formatter(FixedFormatter([str(n) for n in ns]))
    ax.xaxis.set_minor_locator(NullLocator())
    lo, hi = min(ns), max(ns)
    pad = math.exp(max(0.25 * span, step * len(methods)))
    ax.set_xlim(lo / pad, hi * pad)
    ax.set_xlabel("labelled subjects N")
    ax.set_ylabel(f"{metric_name(metric)} (test set)")
    spread = "mean ± std over seeds" if most_seeds > 1 else "one seed: no error bars"
    ax.set_title(f"{metric_name(metric)} vs labelled subjects ({spread})", fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  frameon=False, title="method")
    fig.tight_layout()
    return fig


def plot_results(rows: list[dict], metric: str, methods: list[str], ns: list[int], path: Path) -> None:
    """PNG of the metric (mean ± std over seeds) against N, one line per method
    (see :func:`results_figure`), written atomically."""
    fig = results_figure(rows, metric, methods, ns)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)


#: Keys that may change between runs into the same folder: they add cells, they do not
#: change how a finished cell was made.
GROWABLE_KEYS = ("methods", "labelled", "seeds")


def check_resumable(out: Path, config: dict) -> None:
    """Refuse to resume into ``out`` when its finished cells were made with another
    configuration (only methods, N values and seeds may be added).

    Raises:
        PlaneSSLError: naming the first key that differs.
    """
    import yaml

    saved_path = out / "config.yaml"
    if not (out / RESULTS).is_file() or not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    defaults = config_to_dict(ExperimentConfig())  # keys added since the folder was made
    for key in sorted(set(saved) | set(config)):
        if key in GROWABLE_KEYS:
            continue
        old, new = saved.get(key, defaults.get(key)), config.get(key, defaults.get(key))
        if key == "arms":  # arms may be added; one that made cells may not change
            old, new = ({k: v for k, v in (old or {}).items() if k in (new or {})},
                        {k: v for k, v in (new or {}).items() if k in (old or {})})
        if old != new:
            raise PlaneSSLError(
                f"{out}: its results were made with a different '{key}' "
                f"({old!r}, now {new!r}); use a new --out folder "
                f"(only methods, labelled, seeds and new arms may change when resuming)")


def run_experiment(config: str | Path | ExperimentConfig, out: str | Path | None = None,
                   overrides: list[str] | None = None,
                   echo: Callable[[str], None] = print) -> tuple[list[dict], str]:
    """Run (or resume) an experiment; returns the results rows and the summary Markdown."""
    from planessl.cache import Cache
    from planessl.finetune import load_config_for, make_split

    if isinstance(config, ExperimentConfig):
        cfg, base = config, Path.cwd()
    else:
        cfg = load_config(ExperimentConfig, config, overrides or [])
        base = Path(config).resolve().parent
    if not cfg.data:
        raise PlaneSSLError("experiment config: 'data' (the cache) is required")
    clash = [a for a in cfg.arms if a == "scratch" or a in PRETEXTS]
    if clash:
        raise PlaneSSLError(f"experiment config: arm name {clash[0]!r} is taken by a built-in "
                            f"method; choose another")
    plans = {m: pretrain_plan(m, cfg, base) for m in cfg.methods}
    if not cfg.labelled or not cfg.seeds:
        raise PlaneSSLError("experiment config: 'labelled' and 'seeds' must not be empty")
    cache_path = Path(cfg.data) if Path(cfg.data).is_absolute() else base / cfg.data
    out = Path(out) if out is not None else base / "experiment"
    out.mkdir(parents=True, exist_ok=True)
    cache = Cache(cache_path)
    # Check the split of the largest N once, before any training.
    ft_file = config_path(cfg.finetune_config, base)
    cfg.finetune_config = str(ft_file) if ft_file else ""
    ft_cfg = load_config_for([f"finetune.task={cfg.task}"] + cfg.finetune,
                             str(ft_file) if ft_file else None)
    split = make_split(cache, ft_cfg, max(cfg.labelled))
    if any(p is not None and p.pool for p in plans.values()) and not split.pretrain:
        raise PlaneSSLError(f"{cache_path}: no studies left for pretraining outside the labelled "
                            f"pool, validation and test sets; set split.pool_size in 'finetune'")
    check_resumable(out, config_to_dict(cfg))
    save_run_info(out, config_to_dict(cfg), None)
    write_text_atomic(out / "split.json", json.dumps(split.to_dict(), indent=1))
    metric = cfg.metric or primary_metric(cfg.task)
    rows = read_rows(out / RESULTS)
    done = {(r["method"], int(r["n"]), int(r["seed"])) for r in rows}
    grid = [(seed, method, n) for seed in cfg.seeds for method in cfg.methods for n in cfg.labelled]
    n_pre = len({pretrain_dir(out, m, s, cfg.pretrain_per_seed) for (s, m, _) in grid
                 if plans[m] is not None})
    echo(f"experiment: {len(grid)} cells ({', '.join(cfg.methods)} x N={','.join(map(str, cfg.labelled))} "
         f"x {len(cfg.seeds)} seed{'s' if len(cfg.seeds) > 1 else ''}), {n_pre} pretraining "
         f"run{'s' if n_pre != 1 else ''}; each run's log: {out}/*/*/log.txt")
    n_done = sum((m, n, s) in done for (s, m, n) in grid)
    if n_done:
        echo(f"{n_done} of {len(grid)} cells done earlier ({out / RESULTS})")
    index = {c: i + 1 for i, c in enumerate(grid)}
    for seed in cfg.seeds:
        for method in cfg.methods:
            todo = [n for n in cfg.labelled if (method, n, seed) not in done]
            if not todo:
                continue
            init = "scratch"
            plan = plans[method]
            if plan is not None:
                pre_seed = seed if cfg.pretrain_per_seed else cfg.seeds[0]
                init = str(pretrain_once(method, plan, pre_seed, cache_path, split.pretrain,
                                         pretrain_dir(out, method, seed, cfg.pretrain_per_seed),
                                         echo))
            for n in todo:
                cell = out / "cells" / f"{method}-n{n}-s{seed}"
                what = f"[{index[(seed, method, n)]}/{len(grid)}] {method} N={n} seed {seed}"
                try:
                    row = run_cell(method, n, seed, init, cfg, cache_path, cell)
                except Exception:
                    echo(f"{what}: failed, see {cell / 'log.txt'}")
                    raise
                rows.append(row)
                write_rows(out / RESULTS, rows)
                echo(f"{what}: {metric_name(metric)} {float(row[metric]):.3f} "
                     f"({float(row['cell_seconds']):.0f} s)")
    summary = summarise_results(rows, metric, cfg.methods, sorted(cfg.labelled))
    write_text_atomic(out / "summary.md", summary)
    plot_results(rows, metric, cfg.methods, sorted(cfg.labelled), out / "dice_vs_n.png")
    plot_learning_curves(out / "cells", cfg.methods, sorted(cfg.labelled),
                         out / "learning_curves.png",
                         "val_dice" if cfg.task == "segmentation" else "val_acc")
    return rows, summary
