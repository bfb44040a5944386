"""Few-label segmentation on real ACDC data: `slices` pretraining vs scratch.

Protocol (planessl.evaluation.protocol): test = ACDC patients 085-100 (16, fixed);
validation = 2 fixed patients from 001-064 (checkpoint choice only, same for every cell);
labelled pool = 20 patients from 001-064 (fixed); N in {1, 2, 5, 10} drawn from the pool per
seed (nested); pretraining (`slices`, labels unused) on the other 42 patients of 001-064;
3 seeds; scratch gets the same fine-tuning budget. The data has no pixel spacing, so the
images are on a nominal grid (see --spacing) and distances would be in pixels.

The compute budget is sized for a shared 2-core CPU (about 25 minutes); see the defaults and
benchmarks/results/acdc_fewlabel/budget.md, which this script writes with the timings.

Usage:
    python benchmarks/acdc_fewlabel.py [--data ../shared/data/acdc_h5] [--work /tmp/acdc_fewlabel]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("PLANESSL_SHARED_DATA", ROOT / "../shared/data")) / "acdc_h5"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=Path("/tmp/acdc_fewlabel"),
                    help="cache and runs (outside the repository)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks/results/acdc_fewlabel")
    ap.add_argument("--labelled", type=int, nargs="+", default=[1, 2, 5, 10])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--features", default="[8,16,32,64,128]")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--spacing", type=float, default=2.4,
                    help="grid spacing in source pixels (nominal mm; ACDC pixels are ~1.5 mm)")
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--finetune-steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a shared CPU: no OpenMP spinning)")
    ap.add_argument("--extra", nargs="*", default=[], help="more fine-tuning overrides")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"skip: {args.data} not found")
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    from planessl.experiment import ExperimentConfig, run_experiment
    from planessl.io.acdc import patient_id

    t0 = time.time()
    cache = args.work / "cache"
    if not (cache / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "planessl", "ingest", str(args.data), "--out", str(cache),
                        "--format", "acdc-h5", "--workers", "1", "--no-progress"], check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    ingest_s = time.time() - t0
    test = [patient_id(k) for k in range(85, 101)]
    grid = [f"model.features={args.features}", f"data.image_size={args.image_size}",
            f"data.spacing_mm={args.spacing}", "trainer.progress_bar=false",
            f"trainer.threads={args.threads}", f"data.batch_size={args.batch}"]
    cfg = ExperimentConfig(
        data=str(cache), task="segmentation", methods=["scratch", "slices"],
        labelled=args.labelled, seeds=args.seeds, distances=False,
        pretrain=grid + [f"trainer.max_steps={args.pretrain_steps}", "trainer.max_epochs=-1",
                         "data.sampling=all", "data.val_fraction=0.1", "data.input_views=[sax]"],
        finetune=grid + [f"finetune.steps={args.finetune_steps}", "finetune.val_every_n_steps=50",
                         "split.val_size=2", "split.pool_size=20",
                         "split.test_ids=[" + ",".join(test) + "]"] + args.extra)
    rows, summary = run_experiment(cfg, args.work / "experiment")
    total_s = time.time() - t0
    args.results.mkdir(parents=True, exist_ok=True)
    for name in ("results.csv", "summary.md", "dice_vs_n.png", "split.json"):
        shutil.copyfile(args.work / "experiment" / name, args.results / name)
    pre = sorted((args.work / "experiment" / "pretrain").glob("*/metrics.csv"))
    cells = [float(r["cell_seconds"]) for r in rows]
    budget = [
        "# ACDC few-label benchmark: compute budget", "",
        f"- machine: shared CPU, torch threads = {args.threads}, no GPU",
        f"- backbone: U-Net features {args.features}, input {args.image_size} px at "
        f"{args.spacing} source px per grid px (no spacing in the HDF5 data)",
        f"- pretraining: `slices`, {args.pretrain_steps} steps, batch {args.batch}, one run per seed "
        f"({len(pre)} runs), on the 42 patients outside pool/val/test",
        f"- fine-tuning: {args.finetune_steps} steps, batch {args.batch}, Adam 1e-3, validation every 50 "
        f"steps on 2 fixed patients (best checkpoint), encoder+decoder transferred, same budget for scratch",
        f"- cells: {len(rows)} (methods x N x seeds); mean {sum(cells) / max(len(cells), 1):.0f} s per cell "
        f"(fine-tune + predict + Dice on 32 test volumes)",
        f"- metric: Dice per structure on the 3D SAX stack at ED and ES, averaged (distances not computed "
        f"for the benchmark, to fit the budget)",
        f"- wall time: {total_s / 60:.1f} min total (ingest {ingest_s:.0f} s)", "",
    ]
    (args.results / "budget.md").write_text("\n".join(budget) + "\n" + summary)
    print(summary)
    print("\n".join(budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
