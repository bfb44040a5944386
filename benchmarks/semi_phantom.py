"""Semi-supervised fine-tuning on phantoms: supervised vs ``fixmatch`` vs ``bcp`` from scratch
in the demo's few-label setting (24 phantom subjects, 64 px at 3 mm, U-Net 8-128, batch 8,
the demo's split: 6 test, 2 validation subjects, labelled pool of 4), same split, recipe
and seeds for every method; the semi-supervised cells add ``finetune.unlabelled=pool`` (the
14-16 subjects that are neither test, validation nor labelled) with the default ``semi.*``
settings.

    python benchmarks/semi_phantom.py [--work /tmp/semi_phantom] [--labelled 1 3]
        [--seeds 0 1] [--steps 300] [--merge OTHER_WORK ...]

Each cell: fine-tune, predict the test subjects (ED and ES), Dice per structure on the 3D
stack, averaged. Resumable (finished cells in ``WORK/results.csv`` are kept). Writes
``benchmarks/results/semi_phantom/`` (results.csv, README.md with the table, the paired
differences to supervised and the cost per step and per cell).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from planessl.experiment import read_rows, write_rows  # noqa: E402

RESULTS = ROOT / "benchmarks/results/semi_phantom"
METHODS = {"supervised": [],
           "fixmatch": ["finetune.semi=fixmatch", "finetune.unlabelled=pool"],
           "bcp": ["finetune.semi=bcp", "finetune.unlabelled=pool"]}
SUBJECTS = 24


def grid(steps: int, n_max: int) -> list[str]:
    """The demo's fine-tuning overrides (``planessl demo``)."""
    test = max(4, SUBJECTS // 4)
    return ["model.features=[8,16,32,64,128]", "data.image_size=64", "data.spacing_mm=3.0",
            "trainer.progress_bar=false", "trainer.threads=1", f"finetune.steps={steps}",
            "finetune.val_every_n_steps=50", "data.batch_size=8", f"split.pool_size={n_max + 1}",
            "split.val_size=2", f"split.test_fraction={test / SUBJECTS}"]


def run_cell(method: str, n: int, seed: int, cache: Path, out: Path, steps: int, n_max: int) -> dict:
    import json
    import shutil

    from planessl.engine import LOG_FILE, quiet_logging
    from planessl.evaluation.evaluate import evaluate_segmentation
    from planessl.finetune import finetune
    from planessl.predict import predict_cache

    if out.exists():
        shutil.rmtree(out)
    t0 = time.time()
    with quiet_logging(out / LOG_FILE) as log:
        model = finetune(cache, n, "scratch", out / "run", grid(steps, n_max) + METHODS[method],
                         seed=seed, echo=log, quiet=True)
        split = json.loads((out / "run" / "split.json").read_text())
        predict_cache(out / "run", cache, out / "pred", split["test"], echo=log)
        _, summary = evaluate_segmentation(out / "pred", cache, echo=log, distances=False)
    row = {"method": method, "n": n, "seed": seed}
    for k, s in summary["all"].items():
        if k.endswith("dice"):
            row[k] = round(s["mean"], 4)
    row["n_test_volumes"] = summary["n_volumes"]
    row["train_ids"] = " ".join(split["train"])
    row["selected"] = f"{model['selected']} (val Dice {model['best_score']:.3f})" \
        if model["best_score"] is not None else model["selected"]
    row["train_seconds"] = model["train_seconds"]
    row["seconds_per_step"] = round(model["train_seconds"] / steps, 3)
    row["cell_seconds"] = round(time.time() - t0, 1)
    return row


def report(rows: list[dict], args) -> str:
    ns = sorted({int(r["n"]) for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    by = {(r["method"], int(r["n"]), int(r["seed"])): r for r in rows}
    lines = ["# Semi-supervised fine-tuning on phantoms (supervised vs fixmatch vs bcp, from scratch)",
             "", (__doc__ or "").split("\n\n")[0].strip(), "",
             f"Command: `{args.command}` ({args.steps} fine-tuning steps; cells' total time "
             f"{sum(float(r['cell_seconds']) for r in rows) / 60:.0f} min on 2 CPU cores shared "
             f"with a benchmark grid, 1 torch thread per cell"
             + ("; the folders after `--merge` were made by the same command with their own "
                "`--work` and `--seeds`, in parallel processes" if args.merge else "") + ").", "",
             "## Mean Dice on the 6 test subjects (ED + ES), mean ± std over seeds", "",
             "| method | " + " | ".join(f"N={n}" for n in ns) + " |",
             "|---|" + "---|" * len(ns)]

    def cell(method, n):
        vals = [float(by[(method, n, s)]["mean_dice"]) for s in seeds if (method, n, s) in by]
        if not vals:
            return "–"
        sd = f" ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else ""
        return f"{statistics.mean(vals):.3f}{sd} ({len(vals)} seeds)"

    for method in METHODS:
        lines.append(f"| {method} | " + " | ".join(cell(method, n) for n in ns) + " |")
    from planessl.evaluation.summary import summarise_results

    paired = summarise_results(rows, "mean_dice", list(METHODS), ns, references=["supervised"])
    lines += ["", "## Paired difference to supervised (same N, same seed, same labelled subjects)",
              "", paired.split("## Paired difference to supervised (same N, same seed)")[1].strip(),
              "", f"{len(seeds)} labelled draws per cell: too few for a claim either way "
              "(a gain is claimed only with its interval above zero over at least 6 draws)."]
    lines += ["", "## Cost", "",
              "Seconds per optimiser step (training time / steps, validation included) and per "
              "cell (fine-tuning, prediction, evaluation), median over the cells; timings on a "
              "loaded shared CPU, so compare them with each other, not with other tables.", "",
              "| method | s / step | s / cell | × supervised (s / step) |", "|---|---|---|---|"]
    med = {m: (statistics.median(float(r["seconds_per_step"]) for r in rows if r["method"] == m),
               statistics.median(float(r["cell_seconds"]) for r in rows if r["method"] == m))
           for m in METHODS if any(r["method"] == m for r in rows)}
    for m, (step, cell_s) in med.items():
        ratio = step / med["supervised"][0] if "supervised" in med else float("nan")
        lines.append(f"| {m} | {step:.3f} | {cell_s:.0f} | {ratio:.1f} |")
    lines += ["", "Rows: `results.csv` (per-structure Dice, labelled subjects, checkpoint chosen).",
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/semi_phantom"))
    ap.add_argument("--labelled", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--merge", type=Path, nargs="+", default=[], metavar="WORK",
                    help="also report the finished cells of these work folders (runs in "
                         "parallel processes, e.g. one per seed)")
    args = ap.parse_args(argv)
    args.command = "python benchmarks/semi_phantom.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    from planessl.cache import write_cache
    from planessl.phantom import make_study

    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "cache"
    if not (cache / "manifest.json").is_file():
        write_cache(cache, [make_study(0, i) for i in range(SUBJECTS)])
    table = args.work / "results.csv"
    rows = read_rows(table)
    done = {(r["method"], int(r["n"]), int(r["seed"])) for r in rows}
    n_max = max(args.labelled)
    for seed in args.seeds:
        for n in args.labelled:
            for method in args.methods:
                if (method, n, seed) in done:
                    continue
                row = run_cell(method, n, seed, cache, args.work / f"{method}-n{n}-s{seed}",
                               args.steps, n_max)
                print(f"{method} N={n} seed {seed}: mean Dice {row['mean_dice']:.3f}, "
                      f"{row['seconds_per_step']:.2f} s/step", flush=True)
                rows.append(row)
                write_rows(table, rows)
    for other in args.merge:
        have = {(r["method"], int(r["n"]), int(r["seed"])) for r in rows}
        rows += [r for r in read_rows(other / "results.csv")
                 if (r["method"], int(r["n"]), int(r["seed"])) not in have]
    rows.sort(key=lambda r: (int(r["seed"]), int(r["n"]), list(METHODS).index(r["method"])))
    args.results.mkdir(parents=True, exist_ok=True)
    write_rows(args.results / "results.csv", rows)
    text = report(rows, args)
    tmp = args.results / ".README.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, args.results / "README.md")
    print(f"wrote {args.results / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
