"""Choose the ACDC fine-tuning recipe on the validation patients only.

Each call fine-tunes one configuration (``configs/acdc_finetune.yaml`` + overrides, or
another config) with N labelled patients, predicts the 5 fixed validation patients (never the
test patients of the protocol) and appends one row per seed to
``benchmarks/results/acdc_fewlabel/tuning.csv``: the configuration's name and overrides, the
volume Dice per structure on the validation patients (ED and ES), the best validation Dice
during training, its step and the run time. Every configuration tried is kept.

Usage:
    python benchmarks/acdc_tune.py NAME [--n 2] [--seeds 0 1] [--init scratch|RUN]
        [--config configs/acdc_finetune.yaml] [key=value ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/acdc_fewlabel/tuning.csv"
DEFAULT_DATA = Path(os.environ.get("PLANESSL_SHARED_DATA", ROOT / "../shared/data")) / "acdc_h5"


def acdc_cache(data: Path, work: Path) -> Path:
    """The ACDC cache of the benchmarks (ingested once, assumed 1.5 mm pixels)."""
    import subprocess

    cache = work / "cache"
    if not (cache / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "planessl", "ingest", str(data), "--out", str(cache),
                        "--format", "acdc-h5", "--workers", "1", "--no-progress",
                        "--assume-spacing", "1.5"], check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return cache


def protocol_overrides(protocol: str = "stratified") -> list[str]:
    """The split of the ACDC benchmarks (see ``benchmarks/acdc_protocol.py``)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from acdc_protocol import protocol_overrides as overrides

    return overrides(protocol)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name")
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--init", default="scratch")
    ap.add_argument("--config", default=str(ROOT / "configs/acdc_finetune.yaml"))
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=Path("/tmp/acdc_tune"))
    ap.add_argument("--protocol", default="stratified", choices=("stratified", "earlier"),
                    help="the split (benchmarks/acdc_protocol.py); the validation patients "
                         "are the protocol's")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"skip: {args.data} not found")
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    from planessl.evaluation.evaluate import evaluate_segmentation
    from planessl.experiment import read_rows, write_rows
    from planessl.finetune import finetune
    from planessl.predict import predict_cache

    cache = acdc_cache(args.data, args.work)
    for seed in args.seeds:
        run = args.work / f"{args.name}-n{args.n}-s{seed}"
        t0 = time.time()
        model = finetune(cache, args.n, args.init, run / "run",
                         protocol_overrides(args.protocol) + list(args.overrides), seed=seed,
                         config_file=args.config, echo=lambda s: None)
        split = json.loads((run / "run" / "split.json").read_text())
        predict_cache(run / "run", cache, run / "pred", split["val"], echo=lambda s: None)
        _, summary = evaluate_segmentation(run / "pred", cache, echo=lambda s: None, distances=False)
        curve = [(int(r["step"]), float(r["val_dice"])) for r in
                 csv.DictReader(open(run / "run" / "metrics.csv")) if r.get("val_dice")]
        best_step, best = max(curve, key=lambda c: c[1])
        allm = summary["all"]
        row = {"name": args.name, "protocol": args.protocol, "n": args.n, "seed": seed,
               "init": args.init,
               "config": Path(args.config).name, "overrides": " ".join(args.overrides),
               "val_mean_dice": round(allm["mean_dice"]["mean"], 4),
               **{f"val_{k}": round(v["mean"], 4) for k, v in allm.items()
                  if k.endswith("_dice") and k != "mean_dice"},
               "best_val_dice_2d": round(best, 4), "best_step": best_step,
               "curve": " ".join(f"{s}:{d:.3f}" for s, d in curve),
               "seconds": round(time.time() - t0), "train_seconds": model["train_seconds"]}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        # earlier rows (no protocol column) were all made on the earlier protocol
        earlier = [{**r, "protocol": r.get("protocol") or "earlier"} for r in read_rows(RESULTS)]
        write_rows(RESULTS, earlier + [row])
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
