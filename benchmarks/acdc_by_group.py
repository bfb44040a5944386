"""Dice of fine-tuned ACDC models per diagnostic group: is the test set harder than the
patients the labels come from?

ACDC's training patients are ordered by diagnosis, 20 per group: 001-020 dilated
cardiomyopathy (DCM), 021-040 hypertrophic cardiomyopathy (HCM), 041-060 previous myocardial
infarction (MINF), 061-080 normal (NOR), 081-100 abnormal right ventricle (ARV). The
benchmarks' test patients 085-100 are therefore all ARV, while the labelled pool and the
validation patients come from 001-064 (DCM, HCM, MINF and four NOR). This script predicts
every patient that a run neither trained nor validated on (``planessl predict --subset all``
with the largest connected component kept, then ``planessl evaluate``) and reports the mean
Dice (ED and ES volumes) per group, so the in-distribution Dice (the unlabelled 001-064
patients) can be set beside the test set's::

    python benchmarks/acdc_by_group.py RUN_FOLDER [RUN_FOLDER ...] --cache /tmp/acdc_bench/cache

``RUN_FOLDER``: a fine-tuning run (``.../cells/<cell>/run``). Writes
``benchmarks/results/acdc_ablations/by_group.md`` (``--out`` for another file).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GROUPS = (("DCM", 1, 20), ("HCM", 21, 40), ("MINF", 41, 60), ("NOR", 61, 80), ("ARV", 81, 100))


def group_of(number: int) -> str:
    """The ACDC diagnostic group of training patient ``number``."""
    for name, lo, hi in GROUPS:
        if lo <= number <= hi:
            return name
    raise ValueError(f"ACDC training patients are 1-100, got {number}")


def evaluate_run(run: Path, cache: Path, work: Path) -> list[dict]:
    """Per-volume Dice rows of every study the run did not train or validate on."""
    env_cmd = [sys.executable, "-m", "planessl"]
    pred = work / "pred"
    for cmd in (["predict", "--model", str(run), "--data", str(cache), "--out", str(pred),
                 "--subset", "all", "--lcc"],
                ["evaluate", "--pred", str(pred), "--truth", str(cache)]):
        done = subprocess.run([*env_cmd, *cmd], capture_output=True, text=True)
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise RuntimeError(f"{run}: planessl {cmd[0]} failed: {last}")
    split = json.loads((run / "split.json").read_text())
    seen = set(split.get("train", [])) | set(split.get("val", []))
    with open(pred / "evaluation.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["study"] not in seen]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--cache", type=Path, required=True, help="the benchmarks' ACDC cache")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/acdc_ablations/by_group.md")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from planessl.io.acdc import patient_id

    number_of = {patient_id(k): k for k in range(1, 101)}
    lines = ["# Mean Dice per ACDC diagnostic group", "",
             (__doc__ or "").split("::")[0].strip(), "",
             f"Command: `python benchmarks/acdc_by_group.py {' '.join(map(str, args.runs))} "
             f"--cache {args.cache}`", "",
             "| run | group (patients) | volumes | RV | myocardium | LV | mean |",
             "|---|---|---|---|---|---|---|"]
    for run in args.runs:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                rows = evaluate_run(run, args.cache, Path(tmp))
        except RuntimeError as err:
            print(err)
            continue
        by_group: dict[str, list[dict]] = {}
        for r in rows:
            by_group.setdefault(group_of(number_of[r["study"]]), []).append(r)
        # ".../WORK/experiment/cells/CELL/run" -> "WORK/CELL"
        label = f"{run.parts[-5]}/{run.parts[-2]}" if len(run.parts) > 5 else str(run)
        for name, lo, hi in GROUPS:
            got = by_group.get(name, [])
            if not got:
                continue
            numbers = sorted({number_of[r["study"]] for r in got})
            vals = [f"{np.mean([float(r[k]) for r in got]):.3f}"
                    for k in ("RV_dice", "myocardium_dice", "LV_dice", "mean_dice")]
            lines.append(f"| {label} | {name} ({numbers[0]:03d}-{numbers[-1]:03d}, "
                         f"{len(numbers)}) | {len(got)} | " + " | ".join(vals) + " |")
    from planessl.runinfo import write_text_atomic

    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines[-(len(lines) - 6):]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
