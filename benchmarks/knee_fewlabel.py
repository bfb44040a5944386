"""Few-label exam classification on knee phantoms: scratch against pretraining.

Knee phantoms (``planessl.phantom.knee``: sagittal, coronal and axial stacks with planning
errors; ACL tear, meniscal tear and effusion drawn at random and visible in the images).
The pretext tasks train on the unlabelled pool; fine-tuning pools the encoder's features
over evenly spaced slices of the three planes (``finetune.pooling=max``) into a multi-label
classifier of abnormal / ACL / meniscus; the summary uses the mean ROC AUC over the three
labels on the held-out exams (``metric: auc``). Every arm has the same fine-tuning recipe
and budget (``configs/knee_finetune.yaml``); every pretraining the same steps and batch
(``configs/knee_pretrain.yaml``).

    python benchmarks/knee_fewlabel.py [--work /tmp/knee_fewlabel] [--seeds 0 1 2]

Resumable (rerun the same command); writes benchmarks/results/knee_fewlabel/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/knee_fewlabel"
METHODS = ["scratch", "lines", "slices", "multitask", "simclr", "gcl", "pcl", "rotation",
           "genesis"]
PRETRAIN_CONFIG = ROOT / "configs/knee_pretrain.yaml"
FINETUNE_CONFIG = ROOT / "configs/knee_finetune.yaml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/knee_fewlabel"))
    ap.add_argument("--subjects", type=int, default=60)
    ap.add_argument("--labelled", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--pretrain-steps", type=int, default=None,
                    help="default: trainer.max_steps of configs/knee_pretrain.yaml")
    ap.add_argument("--finetune-steps", type=int, default=None,
                    help="default: finetune.steps of configs/knee_finetune.yaml")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from planessl.cache import Cache, write_cache
    from planessl.experiment import ExperimentConfig, run_experiment
    from planessl.phantom.knee import make_knee_study

    t0 = time.time()
    cache = args.work / "cache"
    if not (cache / "manifest.json").is_file() or len(Cache(cache)) != args.subjects:
        print(f"making {args.subjects} knee phantoms -> {cache}")
        write_cache(cache, [make_knee_study(0, i) for i in range(args.subjects)])
    import yaml

    if args.pretrain_steps is None:
        args.pretrain_steps = yaml.safe_load(PRETRAIN_CONFIG.read_text())["trainer"]["max_steps"]
    if args.finetune_steps is None:
        args.finetune_steps = yaml.safe_load(FINETUNE_CONFIG.read_text())["finetune"]["steps"]
    cfg = ExperimentConfig(
        data=str(cache), task="classification", methods=list(args.methods),
        labelled=list(args.labelled), seeds=list(args.seeds), metric="auc",
        pretrain_per_seed=False,
        pretrain_config=str(PRETRAIN_CONFIG), finetune_config=str(FINETUNE_CONFIG),
        pretrain=[f"trainer.max_steps={args.pretrain_steps}"],
        finetune=[f"finetune.steps={args.finetune_steps}",
                  f"split.pool_size={max(args.labelled) + 2}"])
    rows, summary = run_experiment(cfg, args.work / "experiment")
    print(summary)
    exp = args.work / "experiment"
    args.results.mkdir(parents=True, exist_ok=True)
    for name in ("results.csv", "summary.md", "dice_vs_n.png", "learning_curves.png",
                 "config.yaml", "split.json"):
        if (exp / name).is_file():
            shutil.copyfile(exp / name, args.results / name)
    command = "python benchmarks/knee_fewlabel.py " + " ".join(argv or sys.argv[1:])
    (args.results / "README.md").write_text("\n".join([
        "# Few-label knee exam classification on phantoms", "",
        (__doc__ or "").split("\n\n    python")[0].strip(), "",
        f"Command: `{command.strip()}` ({args.subjects} phantoms; wall time of the last call "
        f"{(time.time() - t0) / 60:.1f} min on 2 shared cores). Settings: 64 px at 2.5 mm, "
        f"U-Net 8-128, {args.pretrain_steps} pretraining steps, {args.finetune_steps} "
        f"fine-tuning steps, 5 slices per plane. `dice_vs_n.png` plots the mean AUC.", "",
        summary]))
    print(f"wrote {args.results / 'README.md'}; {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
