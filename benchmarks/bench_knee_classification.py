"""Cost of one training step of exam-level knee classification (``planessl finetune --task
classification`` on a knee cache) on the default grid (128 px of 2 mm) against the grid the
cache-following defaults now pick (the exams' field of view at 2 mm: 80 px on the knee
phantom), and, for reference, with 5 slices per plane and the knee benchmark's recipe
(``configs/knee_finetune.yaml``: 64 px of 2.5 mm, U-Net 8-128, 5 slices, batch 4).

Each condition: one batch of exams from :class:`~planessl.data.labelled.ExamClassificationDataset`
(the run's data pipeline, with its training augmentation), then forward + BCE loss +
backward + Adam step of :class:`~planessl.tasks.classification.ExamClassificationNet` under
the autocast of ``trainer.precision=auto`` on this CPU (bf16 where the CPU computes it
natively, else fp32), one torch thread. The machine may be shared, so the figure reported is
CPU seconds per step (``time.process_time``, steadier than wall time under load), the median
over ``--steps`` steps after one warm-up step; wall seconds and the 1-minute load average are
recorded beside it. The conditions take turns step by step, so a drifting load hits all alike.

Usage::

    PYTHONPATH=src python benchmarks/bench_knee_classification.py [--exams 8] [--steps 5]

Writes ``benchmarks/results/knee_classification_step.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "knee_classification_step.md"
KEYS = ["abnormal", "acl", "meniscus", "effusion"]
SMALL = [16, 32, 64, 128, 256]
CONDITIONS = [  # name, image size, spacing (mm), slices per view, features, batch
    ("default before (128 px of 2 mm, 8 slices)", 128, 2.0, 8, SMALL, 8),
    ("default now (field of view: 80 px of 2 mm, 8 slices)", 80, 2.0, 8, SMALL, 8),
    ("80 px of 2 mm, 5 slices", 80, 2.0, 5, SMALL, 8),
    ("configs/knee_finetune.yaml (64 px of 2.5 mm, U-Net 8-128, 5 slices, batch 4)", 64, 2.5,
     5, [8, 16, 32, 64, 128], 4),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exams", type=int, default=8, help="knee phantom exams in the cache")
    ap.add_argument("--steps", type=int, default=5, help="measured steps per condition")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from planessl.cache import Cache, write_cache
    from planessl.data.labelled import ExamClassificationDataset, GridSpec
    from planessl.data.transforms import PlaneAugment
    from planessl.engine import resolve_precision
    from planessl.field_of_view import field_of_view_mm
    from planessl.finetune import build_net
    from planessl.phantom.knee import make_knee_study

    precision = resolve_precision("auto", "cpu")
    autocast = precision.startswith("bf16")
    with tempfile.TemporaryDirectory() as tmp:
        write_cache(Path(tmp) / "c", [make_knee_study(0, i) for i in range(args.exams)])
        cache = Cache(Path(tmp) / "c")
        views = ("sagittal", "coronal", "axial")
        fov = field_of_view_mm(cache, cache.ids, views)
        runs = []
        for name, size, spacing, slices, features, batch in CONDITIONS:
            spec = GridSpec(size, spacing, (0.5, 99.5), views)
            ds = ExamClassificationDataset(cache, cache.ids[:batch], spec, KEYS,
                                           PlaneAugment(15.0, (0.9, 1.1), 10.0, True), slices)
            net = build_net("classification", features, len(KEYS), "max")
            runs.append({"name": name, "ds": ds, "net": net, "batch": batch,
                         "opt": torch.optim.Adam(net.parameters(), 1e-3),
                         "cpu": [], "wall": [], "shape": None})

        def step(run: dict) -> tuple[float, float]:
            c0, w0 = time.process_time(), time.perf_counter()
            items = [run["ds"][k] for k in range(run["batch"])]
            x = torch.stack([it["image"] for it in items])
            y = torch.stack([it["target"] for it in items]).float()
            run["shape"] = tuple(x.shape)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    run["net"](x).float(), y)
            run["opt"].zero_grad()
            loss.backward()
            run["opt"].step()
            return time.process_time() - c0, time.perf_counter() - w0

        for run in runs:
            step(run)  # warm-up
        load = [os.getloadavg()[0]]
        for _ in range(args.steps):
            for run in runs:
                cpu, wall = step(run)
                run["cpu"].append(cpu)
                run["wall"].append(wall)
        load.append(os.getloadavg()[0])
    base = statistics.median(runs[0]["cpu"])
    lines = [
        "# Knee exam classification: cost of one training step",
        "",
        f"`PYTHONPATH=src python benchmarks/bench_knee_classification.py --exams {args.exams} "
        f"--steps {args.steps}`: {args.exams} knee phantom exams (field of view {fov:.0f} mm), "
        f"precision {precision}, one torch thread, median of {args.steps} steps per condition "
        f"(taking turns step by step), data loading and augmentation included; 1-minute load "
        f"average {load[0]:.1f} before, {load[1]:.1f} after (the machine is shared: CPU seconds "
        f"are the figure to compare; 600 steps, the default length, cost 600 x that).",
        "",
        "| condition | input (exams, slices, 1, H, W) | CPU s / step | x faster | wall s / step "
        "| CPU min for 600 steps |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        cpu = statistics.median(run["cpu"])
        lines.append(f"| {run['name']} | {run['shape']} | {cpu:.2f} | {base / cpu:.1f} | "
                     f"{statistics.median(run['wall']):.2f} | {600 * cpu / 60:.0f} |")
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
