"""Training-seed replicates of the shipped planning recipe: calibrated against equal line
weights, paired per training seed (and per exam) on the held-out exams.

    PYTHONPATH=src python benchmarks/plan_seeds.py --work /tmp/planbench --seeds 0 1 2

Needs the caches of ``benchmarks/plan_phantom.py`` in ``--work``. Seed 0 is the shipped
model's run (``final_f8-128px_loconly_more800``); seed ``k`` trains the same recipe with
``seed=k`` (which also draws that run's validation split of each cache, so its calibration is
measured on its own validation exams). Each model plans the held-out exams twice, with equal
and with calibrated line weights; the difference is paired (same model, same exams).
Resumable: finished runs, calibrations and rows are reused. Writes
``benchmarks/results/plan_phantom/seeds.{md,csv}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plan_phantom as pp  # noqa: E402

CONFIG = "f8-128px"


def run_folder(work: Path, seed: int, n_extra: int) -> Path:
    base = work / f"final_{CONFIG}_loconly_more{n_extra}"
    return base if seed == 0 else base.with_name(base.name + f"_seed{seed}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--minutes", type=float, default=40.0, help="training time limit per seed")
    ap.add_argument("--train-only", action="store_true", help="train, do not evaluate")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from planessl.data.module import split_ids
    from planessl.experiment import write_rows
    from planessl.planning.model import LineModel
    from planessl.runinfo import write_text_atomic

    work = Path(args.work)
    train_cache = pp.make_cache(work / "train_cache", 1200, 160)
    extra_cache = pp.make_cache(work / "extra_cache", 1300, 800)
    held_cache = pp.make_cache(work / "heldout_cache", 9100, 30)
    over = (pp.CANDIDATES[CONFIG] + pp.LOC_ONLY + pp.LONG + ["trainer.max_steps=2200"])
    rows = []
    for seed in args.seeds:
        run = run_folder(work, seed, 800)
        pp.train(run, [train_cache, extra_cache], over + ([f"seed={seed}"] if seed else []),
                 args.minutes)
        if args.train_only:
            continue
        model = LineModel(run)
        cal_sets = [(c, split_ids(c.ids, 0.1, seed)[1]) for c in (train_cache, extra_cache)]
        pp.calibrate_run(run, model, cal_sets)
        cached = run / "heldout_weightings.json"
        if cached.is_file():
            by = json.loads(cached.read_text())
        else:
            by = {how: pp.model_errors(held_cache, held_cache.ids, model, line_weights=how)
                  for how in ("equal", "auto")}
            cached.write_text(json.dumps(by, default=float))
        for view in pp.GOAL_VIEWS:
            eq, cal = pp.summarise(by["equal"], view), pp.summarise(by["auto"], view)
            pairs = [(a, b) for a, b in zip(by["equal"], by["auto"])
                     if a["view"] == view and a["ok"] and b["ok"]]
            d_angle = np.array([b["angle"] - a["angle"] for a, b in pairs])
            rows.append({"seed": seed, "view": view,
                         "equal_angle": eq["angle_median"], "calibrated_angle": cal["angle_median"],
                         "delta_angle": cal["angle_median"] - eq["angle_median"],
                         "equal_dist": eq["dist_median"], "calibrated_dist": cal["dist_median"],
                         "delta_dist": cal["dist_median"] - eq["dist_median"],
                         "planned": f"{eq['planned']} / {cal['planned']}",
                         "exam_angle_better": int((d_angle < 0).sum()),
                         "exam_angle_worse": int((d_angle > 0).sum()),
                         "exam_angle_delta_median": float(np.median(d_angle))})
        print(f"seed {seed} done", flush=True)
    if args.train_only:
        return 0
    out = pp.RESULTS
    write_rows(out / "seeds.csv", rows)
    sign = (lambda x: "+" if x > 0 else "−" if x < 0 else "0")
    L = ["# Calibrated against equal line weights over training seeds (held-out exams)", "",
         f"`PYTHONPATH=src python benchmarks/plan_seeds.py --work /tmp/planbench --seeds "
         f"{' '.join(map(str, args.seeds))}`: the shipped recipe (`{' '.join(over)}`, on the "
         f"144 + 800 training exams) trained once per seed; each model calibrated on its own "
         f"validation exams and planned on the same 30 held-out exams with equal and with "
         f"calibrated weights. Medians (deg / mm); Δ = calibrated − equal (negative is "
         f"better); per exam: exams where the calibrated angle is smaller / larger (exams "
         f"planned both ways) and the median per-exam angle difference. Planned counts: equal / "
         f"calibrated.", "",
         "| target | seed | equal angle / dist | calibrated angle / dist | Δ angle | Δ dist | "
         "planned | per exam: better / worse, median Δ angle |",
         "|---|---|---|---|---|---|---|---|"]
    for view in pp.GOAL_VIEWS:
        sel = [r for r in rows if r["view"] == view]
        for r in sel:
            L.append(f"| {view} | {r['seed']} | {r['equal_angle']:.2f} / {r['equal_dist']:.2f} | "
                     f"{r['calibrated_angle']:.2f} / {r['calibrated_dist']:.2f} | "
                     f"{r['delta_angle']:+.2f} | {r['delta_dist']:+.2f} | {r['planned']} | "
                     f"{r['exam_angle_better']} / {r['exam_angle_worse']}, "
                     f"{r['exam_angle_delta_median']:+.2f} |")
        da = [r["delta_angle"] for r in sel]
        dd = [r["delta_dist"] for r in sel]
        L.append(f"| {view} | **mean** | {np.mean([r['equal_angle'] for r in sel]):.2f} / "
                 f"{np.mean([r['equal_dist'] for r in sel]):.2f} | "
                 f"{np.mean([r['calibrated_angle'] for r in sel]):.2f} / "
                 f"{np.mean([r['calibrated_dist'] for r in sel]):.2f} | "
                 f"**{np.mean(da):+.2f}** ({' '.join(sign(x) for x in da)}) | "
                 f"**{np.mean(dd):+.2f}** ({' '.join(sign(x) for x in dd)}) | | |")
    L.append("")
    for view in pp.GOAL_VIEWS:
        sel = [r for r in rows if r["view"] == view]
        met = sum(r["calibrated_angle"] <= pp.GOAL_ANGLE and r["calibrated_dist"] <= pp.GOAL_DIST
                  for r in sel)
        met_eq = sum(r["equal_angle"] <= pp.GOAL_ANGLE and r["equal_dist"] <= pp.GOAL_DIST
                     for r in sel)
        L.append(f"- {view.upper()}: goal (<= {pp.GOAL_ANGLE:g} deg and <= {pp.GOAL_DIST:g} mm) "
                 f"met by {met} of {len(sel)} seeds with calibrated weights, {met_eq} with "
                 f"equal weights.")
    write_text_atomic(out / "seeds.md", "\n".join(L) + "\n")
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
