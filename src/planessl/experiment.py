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
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from planessl.config import config_to_dict, load_config
from planessl.errors import PlaneSSLError
from planessl.evaluation.curves import plot_learning_curves
from planessl.evaluation.summary import (  # noqa: F401 - summaries re-exported for callers
    metric_name, plot_results, results_figure, summarise_results)
from planessl.experiment_jobs import run_parallel
from planessl.experiment_plan import (  # noqa: F401 - re-exported for callers
    ArmConfig, ExperimentConfig, PretrainPlan, config_path, finetune_overrides, pretrain_dir,
    pretrain_owner, pretrain_plan)
from planessl.runinfo import save_run_info, write_text_atomic
from planessl.tasks.registry import TASK_NAMES as PRETEXTS

RESULTS = "results.csv"


def cell_keys(rows: list[dict]) -> set[tuple[str, int, int]]:
    """``(method, n, seed)`` of every finished cell in ``rows``."""
    return {(r["method"], int(r["n"]), int(r["seed"])) for r in rows}


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
    model = finetune(cache_path, n, init, out / "run",
                     [f"finetune.task={cfg.task}"] + finetune_overrides(method, cfg),
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
            blank = config_to_dict(ArmConfig())  # arm keys added since the folder was made
            old, new = ({k: {**blank, **v} for k, v in (old or {}).items() if k in (new or {})},
                        {k: {**blank, **v} for k, v in (new or {}).items() if k in (old or {})})
        if old != new:
            raise PlaneSSLError(
                f"{out}: its results were made with a different '{key}' "
                f"({old!r}, now {new!r}); use a new --out folder "
                f"(only methods, labelled, seeds and new arms may change when resuming)")


@dataclass(frozen=True)
class _Job:
    """One unit of an experiment's work: a pretraining run, or a (method, N, seed) cell."""

    kind: str  # "pretrain" or "cell"
    method: str  # the pretraining's owner method, or the cell's method
    seed: int
    out: Path
    n: int = 0
    needs: Path | None = None  # the pretraining run a cell starts from (None: scratch)
    what: str = ""


def _run_job(job: _Job, cfg: ExperimentConfig, plan: PretrainPlan | None, cache_path: Path,
             pretrain_ids: list[str], threads: int) -> tuple[dict | None, list[str]]:
    """Run one job in this process with ``threads`` torch threads (a recipe that fixes
    ``trainer.threads`` sets its own); returns the cell's row (``None`` for a pretraining)
    and the messages for the console."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    said: list[str] = []
    if job.kind == "pretrain":
        pretrain_once(job.method, plan, job.seed, cache_path, pretrain_ids, job.out, said.append)
        return None, said
    init = str(job.needs) if job.needs is not None else "scratch"
    return run_cell(job.method, job.n, job.seed, init, cfg, cache_path, job.out), said


def _grid_order(rows: list[dict], grid: list[tuple[int, str, int]]) -> list[dict]:
    """Rows in the experiment's grid order (seed, method, N); rows of cells outside the grid
    (an earlier run's) after them, in their order."""
    rank = {(m, n, s): i for i, (s, m, n) in enumerate(grid)}
    return sorted(rows, key=lambda r: rank.get((r["method"], int(r["n"]), int(r["seed"])),
                                               len(grid)))


def run_experiment(config: str | Path | ExperimentConfig, out: str | Path | None = None,
                   overrides: list[str] | None = None,
                   echo: Callable[[str], None] = print, jobs: int = 1,
                   pretrain_only: bool = False) -> tuple[list[dict], str]:
    """Run (or resume) an experiment; returns the results rows and the summary Markdown.

    ``pretrain_only``: run just the pretraining runs that the unfinished cells need (e.g. to
    check them before a long grid resumes on another machine), no cell.

    ``jobs`` > 1 runs that many pretraining runs and cells at once, each in a fresh process
    (spawned) with ``cores // jobs`` torch threads unless the recipes fix
    ``trainer.threads``; a cell starts once the pretraining it needs is done. The rows, in
    grid order, are the same as with ``jobs=1`` when the thread count per run is the same
    (the recipes fix it, as the benchmarks' do): every run is seeded by its own seed."""
    from planessl.cache import Cache
    from planessl.finetune import load_config_for, make_split

    if jobs < 1:
        raise PlaneSSLError(f"--jobs must be >= 1, got {jobs}")
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
    owners = {m: pretrain_owner(m, cfg) for m in cfg.methods}
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

    def pre_dir(method: str, seed: int) -> Path:
        return pretrain_dir(out, owners[method], seed, cfg.pretrain_per_seed)

    n_pre = len({pre_dir(m, s) for (s, m, _) in grid if plans[m] is not None})
    echo(f"experiment: {len(grid)} cells ({', '.join(cfg.methods)} x N={','.join(map(str, cfg.labelled))} "
         f"x {len(cfg.seeds)} seed{'s' if len(cfg.seeds) > 1 else ''}), {n_pre} pretraining "
         f"run{'s' if n_pre != 1 else ''}; each run's log: {out}/*/*/log.txt"
         + (f"; {jobs} at once" if jobs > 1 else ""))
    n_done = sum((m, n, s) in done for (s, m, n) in grid)
    if n_done:
        echo(f"{n_done} of {len(grid)} cells done earlier ({out / RESULTS})")
    # The work: pretraining runs in order of first need, then the cells in grid order.
    pre_jobs: dict[Path, _Job] = {}
    cell_jobs: list[_Job] = []
    for seed, method, n in grid:
        if (method, n, seed) in done:
            continue
        needs = None
        if plans[method] is not None:
            needs = pre_dir(method, seed)
            pre_seed = seed if cfg.pretrain_per_seed else cfg.seeds[0]
            pre_jobs.setdefault(needs, _Job("pretrain", owners[method], pre_seed, needs))
        cell_jobs.append(_Job("cell", method, seed, out / "cells" / f"{method}-n{n}-s{seed}", n,
                              needs, f"[{grid.index((seed, method, n)) + 1}/{len(grid)}] "
                                     f"{method} N={n} seed {seed}"))

    def finished(job: _Job, row: dict | None, said: list[str]) -> None:
        for line in said:
            echo(line)
        if row is None:
            return
        rows.append(row)
        write_rows(out / RESULTS, _grid_order(rows, grid))
        echo(f"{job.what}: {metric_name(metric)} {float(row[metric]):.3f} "
             f"({float(row['cell_seconds']):.0f} s)")

    def plan_of(job: _Job) -> PretrainPlan | None:
        return plans[job.method] if job.kind == "cell" else pretrain_plan(job.method, cfg, base)

    if pretrain_only:
        cell_jobs = []
        if jobs == 1:
            for pre in pre_jobs.values():
                pretrain_once(pre.method, plan_of(pre), pre.seed, cache_path, split.pretrain,
                              pre.out, echo)
            pre_jobs = {}
    if jobs == 1:
        for job in cell_jobs:
            pre = pre_jobs.pop(job.needs, None) if job.needs is not None else None
            if pre is not None:
                pretrain_once(pre.method, plan_of(pre), pre.seed, cache_path, split.pretrain,
                              pre.out, echo)
            try:
                row = run_cell(job.method, job.n, job.seed,
                               str(job.needs) if job.needs is not None else "scratch",
                               cfg, cache_path, job.out)
            except Exception:
                echo(f"{job.what}: failed, see {job.out / 'log.txt'}")
                raise
            finished(job, row, [])
    else:
        run_parallel(list(pre_jobs.values()), cell_jobs, jobs, _run_job,
                     lambda job: (cfg, plan_of(job), cache_path, split.pretrain), finished, echo)
    rows[:] = _grid_order(rows, grid)
    if pretrain_only:
        return rows, ""
    summary = summarise_results(rows, metric, cfg.methods, sorted(cfg.labelled))
    write_text_atomic(out / "summary.md", summary)
    plot_results(rows, metric, cfg.methods, sorted(cfg.labelled), out / "dice_vs_n.png")
    plot_learning_curves(out / "cells", cfg.methods, sorted(cfg.labelled),
                         out / "learning_curves.png",
                         "val_dice" if cfg.task == "segmentation" else "val_acc",
                         finished=cell_keys(rows))
    return rows, summary
