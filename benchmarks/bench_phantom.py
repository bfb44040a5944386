"""Benchmark: phantom generation and the DICOM writer on one core.

Measures, for full cine subjects (preset ``full``: SAX stack + 2CH/3CH/4CH, 25 frames, about
400 images), the seconds per subject of ``make_study`` and of writing the study as DICOM
(Kaggle DSB layout), and the same for the ``small`` preset used by tests and demos.
Writes benchmarks/results/phantom.csv and phantom.md.

    PYTHONPATH=src python benchmarks/bench_phantom.py [--subjects 5]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from planessl.phantom import make_study
from planessl.phantom.writers import write_subject

RESULTS = Path(__file__).resolve().parent / "results"


def bench(preset: str, subjects: int) -> dict:
    gen, write, images, nbytes = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(subjects):
            t0 = time.perf_counter()
            study = make_study(0, k, preset)
            t1 = time.perf_counter()
            folder = write_subject(study, tmp, "dicom", k)
            t2 = time.perf_counter()
            gen.append(t1 - t0)
            write.append(t2 - t1)
            files = list(folder.rglob("*.dcm"))
            images.append(len(files))
            nbytes.append(sum(f.stat().st_size for f in files))
            shutil.rmtree(folder)
    return {"preset": preset, "subjects": subjects,
            "images_per_subject": float(np.mean(images)),
            "generate_s_per_subject": float(np.median(gen)),
            "dicom_write_s_per_subject": float(np.median(write)),
            "dicom_write_subjects_per_s": float(1 / np.median(write)),
            "dicom_write_ms_per_image": float(1000 * np.median(write) / np.mean(images)),
            "mb_per_subject": float(np.mean(nbytes) / 1e6)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=5)
    args = ap.parse_args()
    rows = [bench("full", args.subjects), bench("small", args.subjects)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "phantom.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})
    lines = ["# Phantom benchmark", "",
             f"One process, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs visible, Python {platform.python_version()}. "
             "Median over subjects. Command: "
             f"`PYTHONPATH=src python benchmarks/bench_phantom.py --subjects {args.subjects}`.",
             "", "| preset | images/subject | generate s/subject | DICOM write s/subject | "
             "subjects/s (write) | ms/image | MB/subject |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['images_per_subject']:.0f} | "
                     f"{r['generate_s_per_subject']:.2f} | {r['dicom_write_s_per_subject']:.2f} | "
                     f"{r['dicom_write_subjects_per_s']:.2f} | {r['dicom_write_ms_per_image']:.2f} | "
                     f"{r['mb_per_subject']:.1f} |")
    lines += ["", "Target: a full cine subject (~400 images) written as DICOM in under 2 s on "
              "one core."]
    (RESULTS / "phantom.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
