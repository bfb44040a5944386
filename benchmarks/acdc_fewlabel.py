"""Few-label segmentation on real ACDC data: scratch against plane-geometry pretraining.

Protocol (``--protocol stratified``, the default; ``benchmarks/acdc_protocol.py``): test = 4
patients of each ACDC diagnostic group, 007-010 (DCM), 027-030 (HCM), 047-050 (MINF), 061-064
(NOR), 087-090 (ARV): 20 patients, 40 volumes (ED, ES), looked at once per configuration;
validation = 5 fixed patients across groups (checkpoint choice only); labelled pool = 5
patients of each of DCM, HCM, MINF and ARV (20), from which N in {1, 3, 7} are drawn per seed
(nested); the other 35 patients are the unlabelled pretraining pool. ``--protocol earlier``
is the ARV-only split of the earlier tables (test 085-100). Every arm fine-tunes with the same
recipe, augmentation and budget (configs/acdc_finetune.yaml, chosen on the validation
patients with benchmarks/acdc_tune.py) and pretrains with configs/acdc_pretrain.yaml for
``--pretrain-steps`` steps (4,500: the budget the ablations found best):

- ``scratch``: no pretraining;
- ``genesis-acdc``: Models Genesis restoration on the unlabelled ACDC patients;
- ``slices-genesis-acdc``: relative slice location + the restoration term
  (``task.restore_weight=1``, which pretrains the decoder too) on the unlabelled ACDC patients;
- ``multitask-phantom``: lines (2CH, 4CH) + slice location on phantom studies only (sim→real);
- ``multitask-genesis-mixed``: lines + slice location + restoration on the ACDC pool and the
  phantoms, half of the samples each (lines from the phantoms' long-axis views, slice location
  from both);
- more arms of the earlier tables (``--methods``): ``slices-acdc``, ``multitask-mixed`` and the
  competing methods ``simclr-acdc``, ``gcl-acdc``, ``pcl-acdc``, ``rotation-acdc``,
  ``anatomy-phantom`` (published defaults, untuned);
- semi-supervised fine-tuning arms (``--methods``; ``finetune.semi``, the unlabelled images
  being every cache study outside test, validation and the N labelled): ``semi-fixmatch``,
  ``semi-bcp`` from scratch, ``semi-fixmatch-genesis``, ``semi-bcp-genesis`` from the
  ``genesis-acdc`` pretraining, ``semi-fixmatch-multitask``, ``semi-bcp-multitask`` from the
  ``multitask-phantom`` pretraining. Every arm of a table has the same fine-tuning budget: the
  recipe's 1,000 steps unless ``--finetune-extra finetune.steps=S`` (of which
  ``semi.supervised_steps`` on the labelled images alone); the page's cost table gives each
  cell's budget from its resolved configuration. A semi step costs about 3x a supervised one.

Scratch at N=20 (one draw, every patient of the labelled pool) is the all-pool ceiling, made
in the same work folder with ``--methods scratch --labelled 20 --seeds 0``. The
semi-supervised page (``benchmarks/results/acdc_semi``) is a separate work folder whose
scratch rows and cells at N=1 and 3 are the main grid's (same split, draws and recipe),
copied into it before its run (the rows with ``--merge``, the cell folders by hand), and whose
pretraining is the main grid's (``--reuse-pretrain``); its first two semi-supervised draws ran
at low priority beside the main grid, so their cell times overstate the cost. The 3,000-step
semi-supervised page (``benchmarks/results/acdc_semi_3000``) is a work folder of its own at
N=3: every arm, scratch included, fine-tunes for 3,000 steps (``--finetune-extra
finetune.steps=3000``; the budget chosen on the validation patients, rows ``S_*_3000`` of
``acdc_fewlabel/tuning.csv``), its pretraining made again with the main grid's configuration
and seed, and its ceiling is scratch at N=20 with the same budget. Two side folders ran
beside its grid (same split, recipe, budget and pretraining) and were merged into it once the
grid stopped (rows and cell folders; the grid's command with ``--report --merge
.../semi3k_ceiling .../semi3k_mt``): the ceiling (``--work .../semi3k_ceiling --methods
scratch --labelled 20 --seeds 0 --finetune-extra finetune.steps=3000``) and supervised
fine-tuning from the ``multitask-phantom`` pretraining (``--work .../semi3k_mt --methods
multitask-phantom --labelled 3 --seeds 0 1 2 3 4 5 --finetune-extra finetune.steps=3000
--reuse-pretrain .../semi3k/experiment``): does the pretraining gain survive the longer
budget?

One pretraining per arm (made with seed 0) serves every seed's cells. Predictions keep the
largest connected component of each structure; the metric is Dice per structure on the 3D SAX
stack at ED and ES, averaged. The data has no pixel spacing; it is ingested with an assumed
1.5 mm (typical of ACDC) so that the phantom and ACDC share one millimetre grid (2.4 mm
pixels, 96 x 96).

Usage (J cells at once, each in its own process with its share of the cores; resumable; the
report is rewritten from the rows finished so far)::

    python benchmarks/acdc_fewlabel.py --jobs 2 --work /tmp/acdc_bench/strat
    python benchmarks/acdc_fewlabel.py --report --work /tmp/acdc_bench/strat   # report only
    # the all-pool ceiling: scratch with every patient of the labelled pool (N=20, one draw)
    python benchmarks/acdc_fewlabel.py --work /tmp/acdc_bench/strat --methods scratch \
        --labelled 20 --seeds 0

On another machine (a later session), resume the committed grid: its rows are merged, the
pretraining runs are made again and checked against the weights' SHA-256 in
``pretrain_runs.csv`` (the run stops if they differ), then the missing cells run::

    python benchmarks/acdc_fewlabel.py --jobs 2 --work /tmp/acdc_bench/strat \
        --merge benchmarks/results/acdc_fewlabel/results.csv

An ablation changes one setting of every cell, in its own work folder, e.g. fine-tuning the
transferred encoder only, with the pretraining runs of the main experiment::

    python benchmarks/acdc_fewlabel.py --methods scratch multitask-mixed --labelled 1 3 \
        --work /tmp/acdc_bench/abl-encoder --finetune-extra finetune.transfer=encoder \
        --reuse-pretrain /tmp/acdc_bench/strat/experiment
"""

from __future__ import annotations

import argparse
import csv
import shlex
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from acdc_protocol import GROUPS, group_of_id  # noqa: E402
from acdc_tune import DEFAULT_DATA, acdc_cache, protocol_overrides  # noqa: E402

RESULTS = ROOT / "benchmarks/results/acdc_fewlabel"
EARLIER_RESULTS = RESULTS / "earlier_protocol"
GEOMETRY_ARMS = ("slices-acdc", "multitask-phantom", "multitask-mixed")
# The competing methods (issue "competing pretraining methods"): those that apply to SAX-only
# data pretrain on the ACDC pool like slices-acdc; anatomical positions need the long-axis
# views, so they come from the phantoms like multitask-phantom.
COMPETING_ARMS = ("simclr-acdc", "gcl-acdc", "pcl-acdc", "rotation-acdc", "genesis-acdc",
                  "anatomy-phantom")
# The plane-geometry tasks with the restoration term (task.restore_weight): slice location on
# the ACDC pool, or lines + slices on the mixed caches, plus Models Genesis restoration, so the
# decoder is pretrained too.
RESTORE_ARMS = ("slices-genesis-acdc", "multitask-genesis-mixed")
# Semi-supervised fine-tuning (finetune.semi) on the same split, recipe and seeds: the
# unlabelled images are the cache's studies outside test, validation and the N labelled
# ("pool"), from scratch or from another arm's pretraining (its run is shared, not redone).
SEMI_INITS = {"scratch": "", "genesis-acdc": "-genesis", "multitask-phantom": "-multitask"}
SEMI_ARMS = tuple(f"semi-{semi}{suffix}" for semi in ("fixmatch", "bcp")
                  for suffix in SEMI_INITS.values())
METHODS = ("scratch", *GEOMETRY_ARMS, *COMPETING_ARMS, *RESTORE_ARMS, *SEMI_ARMS)
# The stratified protocol's arms (the protocol issue), in the order of the tables.
MAIN_ARMS = ("scratch", "genesis-acdc", "slices-genesis-acdc", "multitask-phantom",
             "multitask-genesis-mixed")
# Differences are reported to scratch, to Models Genesis alone (does geometry add to
# restoration?) and to semi-supervised fine-tuning from scratch (does a pretrained start add
# to it?), for those of them in the table.
REFERENCES = ("scratch", "genesis-acdc", "semi-fixmatch", "semi-bcp")


def phantom_cache(work: Path, n: int, seed: int = 1) -> Path:
    """``n`` phantom studies (small preset) in ``work/phantom`` (made once)."""
    from planessl.cache import Cache, write_cache
    from planessl.phantom import make_study

    cache = work / "phantom"
    if not (cache / "manifest.json").is_file() or len(Cache(cache)) != n:
        write_cache(cache, [make_study(seed, k) for k in range(n)])
    return cache


def arms(phantom: Path) -> dict:
    """Every named pretraining recipe of the ACDC benchmarks."""
    from planessl.experiment import ArmConfig

    return {"slices-acdc": ArmConfig(task="slices", data=[], pool=True),
            **{f"{t}-acdc": ArmConfig(task=t, data=[], pool=True)
               for t in ("simclr", "gcl", "pcl", "rotation", "genesis")},
            "anatomy-phantom": ArmConfig(task="anatomy", data=[str(phantom)], pool=False),
            "multitask-phantom": ArmConfig(task="multitask", data=[str(phantom)], pool=False),
            "multitask-mixed": ArmConfig(task="multitask", data=[str(phantom)], pool=True,
                                         weights=[1.0, 1.0]),
            "slices-genesis-acdc": ArmConfig(task="slices", data=[], pool=True,
                                             overrides=["task.restore_weight=1.0"]),
            "multitask-genesis-mixed": ArmConfig(task="multitask", data=[str(phantom)],
                                                 pool=True, weights=[1.0, 1.0],
                                                 overrides=["task.restore_weight=1.0"]),
            **{f"semi-{semi}{suffix}": ArmConfig(
                init=init, finetune=[f"finetune.semi={semi}", "finetune.unlabelled=[pool]"])
               for semi in ("fixmatch", "bcp") for init, suffix in SEMI_INITS.items()}}


def experiment_config(cache: Path, phantom: Path, methods: list[str], labelled: list[int],
                      seeds: list[int], protocol: str = "stratified"):
    from planessl.experiment import ExperimentConfig

    return ExperimentConfig(
        data=str(cache), task="segmentation", methods=["scratch", *[m for m in methods if m != "scratch"]]
        if "scratch" in methods else list(methods),
        labelled=labelled, seeds=seeds, lcc=True, distances=False, pretrain_per_seed=False,
        pretrain_config=str(ROOT / "configs/acdc_pretrain.yaml"),
        finetune_config=str(ROOT / "configs/acdc_finetune.yaml"),
        finetune=protocol_overrides(protocol), arms=arms(phantom))


def merge(parts: list[Path], into: Path) -> None:
    """Copy the finished cells and pretraining runs of several work folders into one (a part
    that is a ``results.csv`` file contributes its rows only, e.g. committed results). The
    rows ``into`` has already are kept; a part's row for a cell it has is not added."""
    from planessl.experiment import cell_keys, read_rows, write_rows

    target = into / "experiment" / "results.csv"
    rows: list[dict] = read_rows(target)
    for part in parts:
        have = cell_keys(rows)
        rows += [row for row in read_rows(part if part.is_file() else
                                          part / "experiment" / "results.csv")
                 if not cell_keys([row]) & have]
        if part.is_file() or part.resolve() == into.resolve():
            continue
        for sub in ("cells", "pretrain"):
            if (part / "experiment" / sub).is_dir():
                shutil.copytree(part / "experiment" / sub, into / "experiment" / sub,
                                dirs_exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_rows(target, rows)


def structure_table(rows: list[dict], methods: list[str], ns: list[int]) -> str:
    """Markdown: mean Dice per structure (RV, myocardium, LV) per method and N over seeds."""
    import numpy as np

    out = ["| method | N | seeds | RV | myocardium | LV | mean |", "|---|---|---|---|---|---|---|"]
    for m in methods:
        for n in ns:
            cell = [r for r in rows if r["method"] == m and int(r["n"]) == n]
            if not cell:
                continue
            vals = [f"{np.mean([float(r[k]) for r in cell]):.3f}"
                    for k in ("RV_dice", "myocardium_dice", "LV_dice", "mean_dice")]
            out.append(f"| {m} | {n} | {len(cell)} | " + " | ".join(vals) + " |")
    return "\n".join(out) + "\n"


def group_table(exp: Path, rows: list[dict], methods: list[str], ns: list[int]) -> str:
    """Markdown: mean Dice per diagnostic group (volumes of the group's test patients, ED
    and ES, mean over RV, myocardium, LV), mean over the seeds, per method and N."""
    import numpy as np

    from planessl.experiment import read_rows

    groups = group_of_id()
    names = [g for g, _, _ in GROUPS]
    per: dict[tuple[str, int], dict[str, list[float]]] = {}
    for r in rows:
        cell = exp / "cells" / f"{r['method']}-n{r['n']}-s{r['seed']}" / "evaluation.csv"
        by_group: dict[str, list[float]] = {}
        for v in read_rows(cell):
            by_group.setdefault(groups.get(v["study"], "?"), []).append(float(v["mean_dice"]))
        for g, vals in by_group.items():
            per.setdefault((r["method"], int(r["n"])), {}).setdefault(g, []).append(float(np.mean(vals)))
    present = [g for g in names if any(g in d for d in per.values())]
    out = ["| method | N | seeds | " + " | ".join(present) + " |",
           "|---|---|---|" + "---|" * len(present)]
    for m in methods:
        for n in ns:
            d = per.get((m, n))
            if not d:
                continue
            k = max(len(v) for v in d.values())
            out.append(f"| {m} | {n} | {k} | " + " | ".join(
                f"{np.mean(d[g]):.3f}" if g in d else "–" for g in present) + " |")
    return "\n".join(out) + "\n"


def common_draws_table(rows: list[dict], methods: list[str], ns: list[int]) -> str:
    """Markdown: mean Dice per method and N over the labelled draws (seeds) that every method
    has at that N, or ``""`` when every method has the same draws (the means table above is
    then already like for like)."""
    import numpy as np

    seeds = {(m, n): {int(r["seed"]) for r in rows if r["method"] == m and int(r["n"]) == n}
             for m in methods for n in ns}
    common = {n: set.intersection(*[seeds[(m, n)] for m in methods if seeds[(m, n)]])
              for n in ns}
    if all(seeds[(m, n)] in (set(), common[n]) for m in methods for n in ns):
        return ""
    head = " | ".join(f"N={n} (seeds {', '.join(map(str, sorted(common[n])))})" for n in ns)
    out = ["## Means over the draws every arm has (like for like)", "",
           f"| method | {head} |", "|---|" + "---|" * len(ns)]
    for m in methods:
        vals = []
        for n in ns:
            v = [float(r["mean_dice"]) for r in rows if r["method"] == m and int(r["n"]) == n
                 and int(r["seed"]) in common[n]]
            vals.append(f"{np.mean(v):.3f}" if v else "–")
        out.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(out) + "\n"


def cell_budget(cell: Path) -> str:
    """The fine-tuning budget of one cell, from its run's resolved configuration: ``1000``
    steps, or ``1000 (fixmatch, 100 supervised)`` for a semi-supervised cell; ``?`` when the
    run's configuration is missing."""
    import yaml

    path = cell / "run" / "config.yaml"
    if not path.is_file():
        return "?"
    cfg = yaml.safe_load(path.read_text()) or {}
    ft = cfg.get("finetune") or {}
    steps, semi = ft.get("steps", "?"), ft.get("semi") or "none"
    if semi == "none":
        return f"{steps}"
    return f"{steps} ({semi}, {(cfg.get('semi') or {}).get('supervised_steps', '?')} supervised)"


def cost_table(rows: list[dict], methods: list[str], ns: list[int], exp: Path | None = None) -> str:
    """Markdown: the fine-tuning budget (steps, from the cells' resolved configurations), the
    mean fine-tuning and whole-cell time per method and N (seconds; the cells ran two at a
    time on 2 CPU cores, so a time is that of one core's share)."""
    import numpy as np

    out = ["| method | N | cells | budget (steps) | fine-tuning s | cell s (with prediction, evaluation) |",
           "|---|---|---|---|---|---|"]
    for m in methods:
        for n in ns:
            cell = [r for r in rows if r["method"] == m and int(r["n"]) == n]
            if not cell:
                continue
            budget = " / ".join(dict.fromkeys(
                cell_budget(exp / "cells" / f"{m}-n{n}-s{int(r['seed'])}") for r in cell)) \
                if exp is not None else "?"
            train = [float(r["train_seconds"]) for r in cell if r.get("train_seconds")]
            total = [float(r["cell_seconds"]) for r in cell if r.get("cell_seconds")]
            out.append(f"| {m} | {n} | {len(cell)} | {budget} | "
                       f"{np.mean(train):.0f} | {np.mean(total):.0f} |" if train and total else
                       f"| {m} | {n} | {len(cell)} | {budget} | – | – |")
    return "\n".join(out) + "\n"


def tuning_table(path: Path) -> str:
    """Markdown of every fine-tuning configuration tried on the validation patients."""
    if not path.is_file():
        return "(no tuning runs recorded)\n"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = ["| name | protocol | N | seed | init | overrides of acdc_finetune.yaml | val mean Dice | RV | myo | LV | best step |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['name']} | {r.get('protocol') or 'earlier'} | {r['n']} | {r['seed']} | "
                   f"{r['init']} | {r['overrides'] or '–'} | "
                   f"{float(r['val_mean_dice']):.3f} | {float(r['val_RV_dice']):.3f} | "
                   f"{float(r['val_myocardium_dice']):.3f} | {float(r['val_LV_dice']):.3f} | "
                   f"{r['best_step']} |")
    return "\n".join(out) + "\n"


TITLE = "ACDC few-label segmentation, stratified test patients: scratch vs pretraining"


def write_report(exp: Path, results: Path, command: str, title: str = TITLE) -> None:
    """``results/README.md``: protocol, recipe, the table with paired differences and their
    bootstrap intervals, Dice per structure and per diagnostic group, the configurations
    tried, and the figures."""
    from planessl.evaluation.summary import summarise_results
    from planessl.experiment import read_rows

    rows = read_rows(exp / "results.csv")
    methods = [m for m in (*MAIN_ARMS, *METHODS) if any(r["method"] == m for r in rows)]
    methods = list(dict.fromkeys(methods))
    ns = sorted({int(r["n"]) for r in rows})
    refs = [m for m in REFERENCES if m in methods]
    text = [
        f"# {title}", "",
        (__doc__ or "").split("Usage")[0].strip(), "",
        f"Command: `{command}` (resumable; the rows are those finished when this page was "
        f"written: {len(rows)} cells). Figures: `dice_vs_n.png`, `learning_curves.png`; "
        f"the pretraining runs (steps, last validation loss, SHA-256 of the weights) in "
        f"`pretrain_runs.csv`.", "",
        summarise_results(rows, "mean_dice", methods, ns, references=refs), "",
        *([like] if (like := common_draws_table(rows, methods, ns)) else []),
        "## Dice per structure (mean over seeds, test patients, ED and ES)", "",
        structure_table(rows, methods, ns), "",
        "## Mean Dice per diagnostic group (test patients of each group, mean over seeds)", "",
        group_table(exp, rows, methods, ns), "",
        "## Budget and cost per cell (mean over its draws)", "",
        cost_table(rows, methods, ns, exp), "",
        "## Fine-tuning configurations tried (validation patients only)", "",
        tuning_table(ROOT / "benchmarks/results/acdc_fewlabel/tuning.csv"),
    ]
    results.mkdir(parents=True, exist_ok=True)
    from planessl.runinfo import write_text_atomic

    write_text_atomic(results / "README.md", "\n".join(text))


def pretrain_record(exp: Path) -> list[dict]:
    """One row per finished pretraining run: steps, last validation loss, the run time and
    the SHA-256 of its weights, so a later session that pretrains again (the runs are not
    committed: they derive from ACDC) can check it got the same weights before resuming the
    grid's cells."""
    import hashlib

    from planessl.experiment import read_rows

    out = []
    for run in sorted((exp / "pretrain").glob("*/weights.safetensors")):
        metrics = read_rows(run.parent / "metrics.csv")
        steps = max((int(r["step"]) for r in metrics if r.get("step")), default=0)
        losses = [r["val/loss"] for r in metrics if r.get("val/loss")]
        out.append({"arm": run.parent.name, "last_step": steps,
                    "val_loss": f"{float(losses[-1]):.5f}" if losses else "",
                    "weights_sha256": hashlib.sha256(run.read_bytes()).hexdigest()})
    return out


def check_pretraining(cfg, exp: Path, results: Path, jobs: int) -> None:
    """Before resuming cells of a committed grid on another machine: make the pretraining
    runs the unfinished cells need, and stop unless each one's weights have the SHA-256
    recorded in ``results/pretrain_runs.csv`` (cells from other weights would mix two
    experiments in one table)."""
    from planessl.experiment import read_rows, run_experiment

    recorded = {r["arm"]: r["weights_sha256"] for r in read_rows(results / "pretrain_runs.csv")}
    if not recorded:
        return
    run_experiment(cfg, exp, jobs=jobs, pretrain_only=True)
    for row in pretrain_record(exp):
        want = recorded.get(row["arm"])
        if want is not None and want != row["weights_sha256"]:
            raise SystemExit(f"{exp / 'pretrain' / row['arm']}: weights differ from the ones "
                             f"the committed cells were made with ({results / 'pretrain_runs.csv'}: "
                             f"{want[:12]}..., now {row['weights_sha256'][:12]}...); refusing to "
                             f"mix them. Use a new --results folder for a new grid.")
        if want is not None:
            print(f"pretraining {row['arm']}: same weights as the committed cells'")


def publish(exp: Path, results: Path, command: str, title: str = "") -> None:
    """Copy the experiment's files into ``results`` and rewrite its page."""
    from planessl.evaluation.curves import plot_learning_curves
    from planessl.evaluation.summary import plot_results
    from planessl.experiment import cell_keys, read_rows

    rows = read_rows(exp / "results.csv")
    if not rows:
        print(f"no finished cells in {exp}")
        return
    results.mkdir(parents=True, exist_ok=True)
    methods = list(dict.fromkeys(m for m in (*MAIN_ARMS, *METHODS)
                                 if any(r["method"] == m for r in rows)))
    ns = sorted({int(r["n"]) for r in rows})
    plot_results(rows, "mean_dice", methods, ns, results / "dice_vs_n.png")
    plot_learning_curves(exp / "cells", methods, ns, results / "learning_curves.png", "val_dice",
                         finished=cell_keys(rows))
    for name in ("results.csv", "split.json", "config.yaml"):
        if (exp / name).is_file():
            shutil.copyfile(exp / name, results / name)
    from planessl.experiment import write_rows

    record = pretrain_record(exp)
    if record:
        write_rows(results / "pretrain_runs.csv", record)
    write_report(exp, results, command, title or TITLE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=Path("/tmp/acdc_bench/strat"))
    ap.add_argument("--protocol", default="stratified", choices=("stratified", "earlier"))
    ap.add_argument("--methods", nargs="+", default=list(MAIN_ARMS), choices=METHODS)
    ap.add_argument("--labelled", type=int, nargs="+", default=[1, 3, 7])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--pretrain-steps", type=int, default=4500)
    ap.add_argument("--phantoms", type=int, default=160)
    ap.add_argument("--jobs", type=int, default=1, help="cells (and pretraining runs) at once")
    ap.add_argument("--report", action="store_true",
                    help="rewrite the results page from the finished rows; train nothing")
    ap.add_argument("--merge", type=Path, nargs="*", default=None,
                    help="work folders of earlier runs (or their results.csv files) to merge "
                         "into --work before its cells run (with --report: merge, rewrite the "
                         "page, train nothing)")
    ap.add_argument("--results", type=Path, default=None,
                    help=f"results folder (default: {RESULTS.relative_to(ROOT)}, or its "
                         f"earlier_protocol/ for --protocol earlier)")
    ap.add_argument("--finetune-extra", nargs="*", default=[], metavar="KEY=VALUE",
                    help="fine-tuning overrides of an ablation (e.g. finetune.transfer=encoder)")
    ap.add_argument("--pretrain-extra", nargs="*", default=[], metavar="KEY=VALUE",
                    help="pretraining overrides of an ablation")
    ap.add_argument("--reuse-pretrain", type=Path, default=None, metavar="EXPERIMENT",
                    help="copy the finished pretraining runs of another work folder's experiment")
    ap.add_argument("--title", default=TITLE, help="the results page's title")
    ap.add_argument("--pretrain-only", action="store_true",
                    help="run only the pretraining runs that the unfinished cells need")
    args = ap.parse_args(argv)
    results = args.results or (RESULTS if args.protocol == "stratified" else EARLIER_RESULTS)
    given = [a for a in (argv if argv is not None else sys.argv[1:])
             if a not in ("--report", "--pretrain-only")]
    command = "python benchmarks/acdc_fewlabel.py " + shlex.join(given)  # the grid's command
    if not args.data.is_dir():
        print(f"skip: {args.data} not found")
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    exp = args.work / "experiment"
    if args.report:
        if args.merge:
            merge(args.merge, args.work)
        publish(exp, results, command, args.title)
        return 0
    from planessl.experiment import run_experiment

    t0 = time.time()
    shared = args.work.parent
    cache = acdc_cache(args.data, shared)
    phantom = phantom_cache(shared, args.phantoms)
    if args.merge:
        merge(args.merge, args.work)
    cfg = experiment_config(cache, phantom, args.methods, args.labelled, args.seeds, args.protocol)
    cfg.finetune += list(args.finetune_extra)
    cfg.pretrain += [f"trainer.max_steps={args.pretrain_steps}", *args.pretrain_extra]
    if args.reuse_pretrain is not None and not (exp / "pretrain").is_dir():
        shutil.copytree(args.reuse_pretrain / "pretrain", exp / "pretrain")
    check_pretraining(cfg, exp, results, args.jobs)
    rows, summary = run_experiment(cfg, exp, jobs=args.jobs, pretrain_only=args.pretrain_only)
    if args.pretrain_only:
        print(f"pretraining done ({(time.time() - t0) / 60:.1f} min); no cell run")
        return 0
    print(summary)
    print(f"wall time {(time.time() - t0) / 60:.1f} min")
    publish(exp, results, command, args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
