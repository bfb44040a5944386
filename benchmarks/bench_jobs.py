"""Cells per hour of ``planessl experiment --jobs J``: the same small ACDC grid run with
J = 1 and J = 2 (fresh output folders; scratch cells only, so no pretraining), on this
machine's cores.

The grid: scratch x N in {1, 3} x seeds {0, 1} = 4 cells with the ACDC benchmark's recipe
(``configs/acdc_finetune.yaml``, stratified protocol) shortened to ``--steps`` fine-tuning
steps, each cell predicting and scoring the 40 test volumes as in the benchmark. Writes
``benchmarks/results/jobs.csv`` and ``jobs.md``; also checks that both runs gave the same
rows. Run it on an otherwise idle machine::

    python benchmarks/bench_jobs.py [--steps 300] [--jobs 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from acdc_tune import DEFAULT_DATA, acdc_cache, protocol_overrides  # noqa: E402

RESULTS = ROOT / "benchmarks/results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_jobs"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"skip: {args.data} not found")
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    from planessl.experiment import ExperimentConfig, read_rows, run_experiment, write_rows
    from planessl.runinfo import write_text_atomic

    cache = acdc_cache(args.data, args.work)
    out_rows, seen = [], {}
    for jobs in args.jobs:
        cfg = ExperimentConfig(
            data=str(cache), methods=["scratch"], labelled=[1, 3], seeds=[0, 1], lcc=True,
            distances=False, finetune_config=str(ROOT / "configs/acdc_finetune.yaml"),
            finetune=protocol_overrides() + [f"finetune.steps={args.steps}"])
        out = args.work / f"j{jobs}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.time()
        run_experiment(cfg, out, echo=print, jobs=jobs)
        wall = time.time() - t0
        rows = read_rows(out / "results.csv")
        seen[jobs] = [(r["method"], r["n"], r["seed"], r["mean_dice"]) for r in rows]
        out_rows.append({"jobs": jobs, "cells": len(rows), "steps": args.steps,
                         "wall_s": round(wall, 1), "cells_per_hour": round(3600 * len(rows) / wall, 1),
                         "mean_cell_s": round(sum(float(r["cell_seconds"]) for r in rows) / len(rows), 1),
                         "cores": os.cpu_count(), "machine": platform.processor() or platform.machine()})
        print(out_rows[-1])
    same = len({tuple(v) for v in seen.values()}) == 1
    write_rows(RESULTS / "jobs.csv", out_rows)
    lines = ["# planessl experiment --jobs: cells per hour", "",
             (__doc__ or "").split("Run it")[0].strip(), "",
             f"Command: `python benchmarks/bench_jobs.py {' '.join(argv or sys.argv[1:])}`", "",
             "| jobs | cells | fine-tuning steps | wall (s) | cells per hour | mean seconds per cell |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['jobs']} | {r['cells']} | {r['steps']} | {r['wall_s']} | {r['cells_per_hour']} "
              f"| {r['mean_cell_s']} |" for r in out_rows]
    lines += ["", f"Rows identical across the runs: {'yes' if same else 'NO'}."]
    write_text_atomic(RESULTS / "jobs.md", "\n".join(lines) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
