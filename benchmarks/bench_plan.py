"""Benchmark: how long ``planessl plan`` takes per exam on CPU with the shipped model.

Plans ``--exams`` phantom exams with localizers (2CH, 4CH and a SAX localizer stack; targets
2CH, 3CH, 4CH, SAX) with and without test-time augmentation, on 1 and 2 torch threads, and
reports the median and max seconds per exam (the whole of ``plan``: network, line fits, plane
fits) and the time to load the model. Writes ``benchmarks/results/plan_speed.{csv,md}``.

    python benchmarks/bench_plan.py [--exams 8] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exams", type=int, default=8)
    ap.add_argument("--seed", type=int, default=9300, help="phantom seed of the exams")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    import torch

    from planessl.experiment import write_rows
    from planessl.phantom import make_study
    from planessl.planning.model import LineModel
    from planessl.planning.plan import plan
    from planessl.runinfo import write_text_atomic

    studies = [make_study(args.seed, k, "small", localizers=True) for k in range(args.exams)]
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        model = LineModel.default()
        load_s = time.perf_counter() - t0
        for tta in (False, True):
            plan(studies[0], "warm-up", model=model, tta=tta)
            seconds = []
            for k, study in enumerate(studies):
                t0 = time.perf_counter()
                plan(study, f"exam {k}", model=model, tta=tta)
                seconds.append(time.perf_counter() - t0)
            images = np.mean([sum(s.n_slices for s in st.series if s.view.startswith("loc_"))
                              for st in studies])
            rows.append({"threads": threads, "tta": tta, "exams": len(seconds),
                         "input_images_mean": float(images), "median_s": float(np.median(seconds)),
                         "max_s": float(np.max(seconds)), "model_load_s": load_s})
            print(rows[-1], flush=True)
    out = Path(args.out)
    write_rows(out / "plan_speed.csv", rows)
    load = os.getloadavg()[0]
    L = ["# `planessl plan` speed per exam on CPU (shipped model)", "",
         f"`python benchmarks/bench_plan.py --exams {args.exams}` (torch {torch.__version__}, "
         f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, "
         f"load average {load:.1f} at the end). Each exam: the localizers (2CH, 4CH and a SAX "
         f"stack of 3-5 slices), targets 2CH, 3CH, 4CH and SAX; the whole of `plan` (network, "
         f"line fits, plane fits). Test-time augmentation predicts each image 6 times. The first "
         f"model load includes importing the training modules it needs.", "",
         "| torch threads | test-time augmentation | exams | median (s) | max (s) | model load (s) |",
         "|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        L.append(f"| {r['threads']} | {'yes (default)' if r['tta'] else 'no (--no-tta)'} | "
                 f"{r['exams']} | {r['median_s']:.2f} | {r['max_s']:.2f} | "
                 f"{r['model_load_s']:.2f} |")
    write_text_atomic(out / "plan_speed.md", "\n".join(L) + "\n")
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
