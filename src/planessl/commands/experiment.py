"""``planessl experiment``: methods x N labelled studies x seeds, summarised against scratch."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("experiment", help="few-label experiment: methods x N x seeds",
                       description="Pretrain once per method and seed, fine-tune every (method, N, "
                                   "seed) cell, evaluate on the fixed test set; results.csv, "
                                   "summary.md and dice_vs_n.png. Resumes without redoing "
                                   "finished cells.")
    p.add_argument("config", metavar="CONFIG.yaml",
                   help="keys: data, task, methods, labelled, seeds, pretrain, finetune, lcc")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: 'experiment' beside the config)")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="pretraining runs and cells at once, each in its own process with "
                        "cores/J torch threads (unless the recipe fixes trainer.threads); "
                        "the rows are the same as with --jobs 1 when the threads per run are")
    p.add_argument("--pretrain-only", action="store_true",
                   help="run only the pretraining runs the unfinished cells need")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.experiment import run_experiment

    _, summary = run_experiment(args.config, args.out, args.overrides, jobs=args.jobs,
                                pretrain_only=args.pretrain_only)
    print(summary)
    return 0
