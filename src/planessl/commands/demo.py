"""``planessl demo``: the whole story on fresh phantom data, in minutes on a CPU.

Geometry check on a real localizer (when installed) -> phantom subjects -> cache -> pretrain
multitask on the unlabelled pool -> fine-tune with few labelled subjects, pretrained and from
scratch -> evaluate on held-out subjects -> table (summary.md) and plot (dice_vs_n.png).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from planessl.tasks.registry import TASK_NAMES


def register(sub) -> None:
    p = sub.add_parser("demo", help="phantom data -> pretrain -> few-label fine-tuning -> table + plot",
                       description="Run the few-label experiment end to end on fresh phantom "
                                   "data (multitask pretraining vs scratch).")
    p.add_argument("--out", default="planessl_demo", metavar="DIR",
                   help="output folder (default: planessl_demo in the current directory)")
    p.add_argument("--subjects", type=int, default=24, help="phantom subjects (default 24)")
    p.add_argument("--labelled", type=int, nargs="+", default=[1, 3], metavar="N",
                   help="labelled subjects per fine-tuning (default 1 3)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    p.add_argument("--methods", nargs="+", default=["scratch", "multitask"],
                   choices=("scratch", *TASK_NAMES), metavar="METHOD",
                   help="scratch and pretext tasks to compare (default scratch multitask; "
                        f"any of {', '.join(TASK_NAMES)})")
    p.add_argument("--pretrain-steps", type=int, default=300)
    p.add_argument("--finetune-steps", type=int, default=150)
    p.add_argument("--features", default="[8,16,32,64,128]",
                   help="backbone channels per level (default [8,16,32,64,128])")
    p.add_argument("--image-size", type=int, default=64, help="input pixels (default 64)")
    p.add_argument("--spacing-mm", type=float, default=3.0, help="input pixel spacing (default 3 mm)")
    p.set_defaults(func=run)


def geometry_step(out: Path) -> None:
    """First step: the geometry check (the planes of pydicom's real tri-plane localizer
    intersected, lines printed and drawn)."""
    from planessl.geometry_check import run_geometry_check

    run_geometry_check(out / "geometry")


def run(args: argparse.Namespace) -> int:
    from planessl.cache import write_cache
    from planessl.errors import PlaneSSLError
    from planessl.experiment import ExperimentConfig, run_experiment
    from planessl.phantom import make_study

    out = Path(args.out)
    if args.subjects < max(args.labelled) + 8:
        raise PlaneSSLError(f"--subjects {args.subjects} is too few for N={max(args.labelled)} "
                            f"(need N + 8: test, validation and pretraining subjects)")
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    geometry_step(out)
    cache = out / "cache"
    if not (cache / "manifest.json").is_file():
        print(f"making {args.subjects} phantom subjects -> {cache}")
        write_cache(cache, [make_study(0, i) for i in range(args.subjects)])
    pool = max(args.labelled) + 1
    test = max(4, args.subjects // 4)
    # One torch thread: on a small shared CPU, OpenMP threads spinning against other
    # processes made a training step 10x slower than a single thread.
    grid = [f"model.features={args.features}", f"data.image_size={args.image_size}",
            f"data.spacing_mm={args.spacing_mm}", "trainer.progress_bar=false",
            "trainer.threads=1"]
    cfg = ExperimentConfig(
        data=str(cache.resolve()), task="segmentation", methods=list(args.methods),
        labelled=list(args.labelled), seeds=list(args.seeds),
        pretrain=grid + [f"trainer.max_steps={args.pretrain_steps}", "trainer.max_epochs=-1",
                         "data.batch_size=8", "data.sampling=all", "data.val_fraction=0.1"],
        finetune=grid + [f"finetune.steps={args.finetune_steps}", "finetune.val_every_n_steps=50",
                         "data.batch_size=8", f"split.pool_size={pool}", "split.val_size=2",
                         f"split.test_fraction={test / args.subjects}"])
    rows, summary = run_experiment(cfg, out / "experiment")
    print()
    print(summary)
    if len(args.seeds) < 3:
        print(f"{len(args.seeds)} seed{'s' if len(args.seeds) > 1 else ''} on synthetic data: a "
              f"demonstration of the pipeline, not a measurement (--seeds 0 1 2 for one). On "
              f"real ACDC data (20 test patients across the 5 diagnostic groups, paired "
              f"differences with bootstrap intervals over the labelled draws) see README, "
              f"section Results: plane-geometry pretraining on phantoms beats scratch there in "
              f"every N (interval above zero) but by +0.03 to +0.05 Dice, a small gain.")
    exp = out / "experiment"
    print(f"table: {exp / 'summary.md'}; plot: {exp / 'dice_vs_n.png'}; "
          f"total {time.time() - t0:.0f} s")
    return 0
