"""Few-label segmentation on real ACDC data: scratch against plane-geometry pretraining.

Protocol (planessl.evaluation.protocol, split seed 0): test = ACDC patients 085-100 (16,
fixed, looked at once per configuration); validation = 5 fixed patients from 001-064
(checkpoint choice); labelled pool = 20 patients from 001-064; N in {1, 2, 5, 10} drawn from
the pool per seed (nested); the other 39 patients of 001-064 are the unlabelled pretraining
pool. Every arm fine-tunes with the same recipe and budget (configs/acdc_finetune.yaml, chosen
on the validation patients with benchmarks/acdc_tune.py) and pretrains with
configs/acdc_pretrain.yaml:

- ``scratch``: no pretraining;
- ``slices-acdc``: relative slice location on the 39 unlabelled ACDC patients (real data);
- ``slices-genesis-acdc`` / ``multitask-genesis-mixed``: ``slices-acdc`` / ``multitask-mixed``
  plus the Models Genesis restoration term (``task.restore_weight=1``), which pretrains the
  decoder as well;
- ``multitask-phantom``: lines (2CH, 4CH) + slice location on phantom studies only (sim→real);
- ``multitask-mixed``: both sources in one run, half of the samples each: lines from the
  phantoms, slice location from both;
- the competing self-supervised methods, with the same pretraining recipe and budget (same
  steps, batch of 8 source images; the contrastive methods see two views of each):
  ``simclr-acdc``, ``gcl-acdc`` (Chaitanya et al.'s partition loss, 4 partitions),
  ``pcl-acdc`` (Zeng et al.'s positional loss, threshold 0.1), ``rotation-acdc`` and
  ``genesis-acdc`` on the 39 unlabelled ACDC patients, and ``anatomy-phantom`` (Bai et al.'s
  anatomical positions from the 2CH/4CH planes) on the phantoms, which alone have the
  long-axis views. Their settings are the published defaults (temperature 0.1), not tuned.

One pretraining per arm (made with seed 0) serves every seed's cells. Predictions keep the
largest connected component of each structure; the metric is Dice per structure on the 3D SAX
stack at ED and ES, averaged.

The data has no pixel spacing; it is ingested with an assumed 1.5 mm (typical of ACDC) so that
the phantom and ACDC share one millimetre grid (2.4 mm pixels, 96 x 96).

Usage (two processes on a 2-core machine, then the merge)::

    python benchmarks/acdc_fewlabel.py --methods scratch slices-acdc --work /tmp/acdc_bench/a
    python benchmarks/acdc_fewlabel.py --methods multitask-phantom multitask-mixed --work /tmp/acdc_bench/b
    python benchmarks/acdc_fewlabel.py --merge /tmp/acdc_bench/a /tmp/acdc_bench/b --work /tmp/acdc_bench/all

An ablation changes one setting of every cell, in its own work folder, e.g. fine-tuning the
transferred encoder only, with the pretraining runs of the main experiment::

    python benchmarks/acdc_fewlabel.py --methods scratch multitask-mixed --labelled 1 2 \
        --work /tmp/acdc_bench/abl-encoder --finetune-extra finetune.transfer=encoder \
        --reuse-pretrain /tmp/acdc_bench/all/experiment
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from acdc_tune import DEFAULT_DATA, acdc_cache, protocol_overrides  # noqa: E402

RESULTS = ROOT / "benchmarks/results/acdc_fewlabel"
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
METHODS = ("scratch", *GEOMETRY_ARMS, *COMPETING_ARMS, *RESTORE_ARMS)


def phantom_cache(work: Path, n: int, seed: int = 1) -> Path:
    """``n`` phantom studies (small preset) in ``work/phantom`` (made once)."""
    from planessl.cache import Cache, write_cache
    from planessl.phantom import make_study

    cache = work / "phantom"
    if not (cache / "manifest.json").is_file() or len(Cache(cache)) != n:
        write_cache(cache, [make_study(seed, k) for k in range(n)])
    return cache


def experiment_config(cache: Path, phantom: Path, methods: list[str], labelled: list[int],
                      seeds: list[int]):
    from planessl.experiment import ArmConfig, ExperimentConfig

    return ExperimentConfig(
        data=str(cache), task="segmentation", methods=["scratch", *[m for m in methods if m != "scratch"]]
        if "scratch" in methods else list(methods),
        labelled=labelled, seeds=seeds, lcc=True, distances=False, pretrain_per_seed=False,
        pretrain_config=str(ROOT / "configs/acdc_pretrain.yaml"),
        finetune_config=str(ROOT / "configs/acdc_finetune.yaml"),
        finetune=protocol_overrides(),
        arms={"slices-acdc": ArmConfig(task="slices", data=[], pool=True),
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
                                                   overrides=["task.restore_weight=1.0"])})


def merge(parts: list[Path], into: Path) -> None:
    """Copy the finished cells and pretraining runs of several work folders into one (a part
    that is a ``results.csv`` file contributes its rows only, e.g. committed results)."""
    from planessl.experiment import read_rows, write_rows

    rows: list[dict] = []
    for part in parts:
        rows += read_rows(part if part.is_file() else part / "experiment" / "results.csv")
        for sub in ("cells", "pretrain"):
            if (part / "experiment" / sub).is_dir():
                shutil.copytree(part / "experiment" / sub, into / "experiment" / sub,
                                dirs_exist_ok=True)
    write_rows(into / "experiment" / "results.csv", rows)


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


def tuning_table(path: Path) -> str:
    """Markdown of every fine-tuning configuration tried on the validation patients."""
    if not path.is_file():
        return "(no tuning runs recorded)\n"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = ["| name | N | seed | init | overrides of acdc_finetune.yaml | val mean Dice | RV | myo | LV | best step |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['name']} | {r['n']} | {r['seed']} | {r['init']} | {r['overrides'] or '–'} | "
                   f"{float(r['val_mean_dice']):.3f} | {float(r['val_RV_dice']):.3f} | "
                   f"{float(r['val_myocardium_dice']):.3f} | {float(r['val_LV_dice']):.3f} | "
                   f"{r['best_step']} |")
    return "\n".join(out) + "\n"


TITLE = "ACDC few-label segmentation: scratch vs plane-geometry pretraining"
COMPETING_TITLE = ("ACDC few-label segmentation: plane-geometry pretraining against the "
                   "competing self-supervised methods")


def write_report(exp: Path, results: Path, command: str, minutes: float,
                 title: str = TITLE) -> None:
    """``results/README.md``: protocol, recipe, the table with paired differences, the
    per-structure table, the configurations tried, and the figures."""
    with open(exp / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    ns = sorted({int(r["n"]) for r in rows})
    text = [
        f"# {title}", "",
        (__doc__ or "").split("Usage")[0].strip(), "",
        f"Command: `{command}` (cells of the two processes merged; wall time of the merge "
        f"step {minutes:.1f} min). Figures: `dice_vs_n.png`, `learning_curves.png`.", "",
        (exp / "summary.md").read_text(), "",
        "## Dice per structure (mean over seeds, test patients 085-100, ED and ES)", "",
        structure_table(rows, methods, ns), "",
        "## Fine-tuning configurations tried (validation patients only)", "",
        tuning_table(ROOT / "benchmarks/results/acdc_fewlabel/tuning.csv"),
    ]
    (results / "README.md").write_text("\n".join(text))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=Path("/tmp/acdc_bench/all"))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--labelled", type=int, nargs="+", default=[1, 2, 5, 10])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--phantoms", type=int, default=160)
    ap.add_argument("--merge", type=Path, nargs="*", default=None,
                    help="work folders of earlier runs (or their results.csv files) to merge "
                         "into --work (nothing trained)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--finetune-extra", nargs="*", default=[], metavar="KEY=VALUE",
                    help="fine-tuning overrides of an ablation (e.g. finetune.transfer=encoder)")
    ap.add_argument("--pretrain-extra", nargs="*", default=[], metavar="KEY=VALUE",
                    help="pretraining overrides of an ablation (e.g. trainer.max_steps=500)")
    ap.add_argument("--reuse-pretrain", type=Path, default=None, metavar="EXPERIMENT",
                    help="copy the finished pretraining runs of another work folder's experiment")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"skip: {args.data} not found")
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    from planessl.experiment import run_experiment

    t0 = time.time()
    shared = args.work.parent
    cache = acdc_cache(args.data, shared)
    phantom = phantom_cache(shared, args.phantoms)
    if args.merge:
        merge(args.merge, args.work)
    cfg = experiment_config(cache, phantom, args.methods, args.labelled, args.seeds)
    cfg.finetune += list(args.finetune_extra)
    cfg.pretrain += list(args.pretrain_extra)
    if args.reuse_pretrain is not None and not (args.work / "experiment" / "pretrain").is_dir():
        shutil.copytree(args.reuse_pretrain / "pretrain", args.work / "experiment" / "pretrain")
    rows, summary = run_experiment(cfg, args.work / "experiment")
    print(summary)
    print(f"wall time {(time.time() - t0) / 60:.1f} min")
    if args.merge:
        args.results.mkdir(parents=True, exist_ok=True)
        for name in ("results.csv", "summary.md", "dice_vs_n.png", "learning_curves.png",
                     "split.json", "config.yaml"):
            shutil.copyfile(args.work / "experiment" / name, args.results / name)
        write_report(args.work / "experiment", args.results,
                     "python benchmarks/acdc_fewlabel.py " + " ".join(argv or sys.argv[1:]),
                     (time.time() - t0) / 60,
                     COMPETING_TITLE if set(args.methods) & set(COMPETING_ARMS) else TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
