"""Benchmark: `planessl ingest` of >= 10,000 phantom DICOM files (Kaggle DSB layout) against
a naive loop that fully reads every file with ``pydicom.dcmread`` in one process.

Measures files per second (ingest with --workers N vs the naive loop) and the peak resident
memory of the ingest (its own process and its workers) for growing numbers of studies.
Generated data stays under --data (default /tmp/planessl_bench); results go to
benchmarks/results/ingest.csv and .md.

    PYTHONPATH=src python benchmarks/bench_ingest.py --subjects 26 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pydicom

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

_INGEST_SNIPPET = """
import json, resource, sys, time
from planessl.ingest import ingest
t = time.perf_counter()
r = ingest(sys.argv[3:], sys.argv[1], workers=int(sys.argv[2]), progress=False, force=True)
dt = time.perf_counter() - t
kb = lambda who: resource.getrusage(who).ru_maxrss
print(json.dumps({"seconds": dt, "studies": len(r.written), "self_mb": kb(resource.RUSAGE_SELF) / 1024,
                  "children_mb": kb(resource.RUSAGE_CHILDREN) / 1024}))
"""


def generate(data: Path, subjects: int, workers: int) -> Path:
    dsb = data / "dsb"
    subprocess.run([sys.executable, "-m", "planessl", "phantom", "--subjects", str(subjects),
                    "--preset", "full", "--format", "dicom", "--out", str(dsb),
                    "--workers", str(workers)], check=True, env=_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return dsb


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def naive(files: list[Path], decode: bool) -> float:
    t = time.perf_counter()
    for f in files:
        ds = pydicom.dcmread(f)
        if decode:
            ds.pixel_array
    return time.perf_counter() - t


def run_ingest(sources: list[Path], cache: Path, workers: int) -> dict:
    shutil.rmtree(cache, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", _INGEST_SNIPPET, str(cache), str(workers),
                          *map(str, sources)], check=True, env=_env(), capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/planessl_bench"))
    ap.add_argument("--subjects", type=int, default=26, help="phantom studies (~390 files each)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--reuse", action="store_true",
                    help="use the phantom files already under --data/dsb (no generation)")
    args = ap.parse_args()
    dsb = args.data / "dsb" if args.reuse and (args.data / "dsb").is_dir() else \
        generate(args.data, args.subjects, args.workers)
    load_before = os.getloadavg()
    subjects = sorted(p for p in dsb.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = sorted(dsb.rglob("*.dcm"))
    print(f"{len(files)} DICOM files in {len(subjects)} studies", flush=True)
    naive(files[:200], True)  # warm the page cache and imports alike for both
    t_read = min(naive(files, False) for _ in range(args.repeats))
    t_decode = min(naive(files, True) for _ in range(args.repeats))
    rows = []
    for w in sorted({1, args.workers}):
        best = min((run_ingest([dsb], args.data / "cache", w) for _ in range(args.repeats)),
                   key=lambda r: r["seconds"])
        rows.append({"what": f"ingest --workers {w}", "files": len(files),
                     "studies": best["studies"], "seconds": round(best["seconds"], 2),
                     "files_per_s": round(len(files) / best["seconds"], 1),
                     "vs_naive_dcmread": round(t_read / best["seconds"], 2),
                     "peak_rss_mb_main": round(best["self_mb"], 1),
                     "peak_rss_mb_worker": round(best["children_mb"], 1)})
    for name, t in (("naive dcmread", t_read), ("naive dcmread + pixel_array", t_decode)):
        rows.append({"what": name, "files": len(files), "studies": len(subjects),
                     "seconds": round(t, 2), "files_per_s": round(len(files) / t, 1),
                     "vs_naive_dcmread": round(t_read / t, 2), "peak_rss_mb_main": "",
                     "peak_rss_mb_worker": ""})
    mem = []
    for n in sorted({max(1, len(subjects) // 8), max(1, len(subjects) // 3), len(subjects)}):
        r = run_ingest(subjects[:n], args.data / "cache", args.workers)
        mem.append({"studies": n, "files": sum(1 for s in subjects[:n] for _ in s.rglob("*.dcm")),
                    "peak_rss_mb_main": round(r["self_mb"], 1),
                    "peak_rss_mb_worker": round(r["children_mb"], 1)})
        print(mem[-1], flush=True)
    load_after = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "ingest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(RESULTS / "ingest_memory.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(mem[0]))
        w.writeheader()
        w.writerows(mem)
    md = ["# Ingest benchmark", "",
          f"{len(files)} phantom DICOM files (Kaggle DSB layout, `planessl phantom --preset full`, "
          f"{len(subjects)} studies, 1 file per frame), page cache warm, best of {args.repeats}. "
          f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"pydicom {pydicom.__version__}. Command: `PYTHONPATH=src python "
          f"benchmarks/bench_ingest.py --subjects {args.subjects} --workers {args.workers}`.",
          "", "Load average (1, 5, 15 min) before the timings: "
          + ", ".join(f"{x:.2f}" for x in load_before) + "; after: "
          + ", ".join(f"{x:.2f}" for x in load_after) + " (the machine is shared with other "
          "jobs: a load above the CPU count means no idle core for the workers).",
          "", "| what | files | studies | s | files/s | x naive dcmread | peak RSS main MB | peak RSS worker MB |",
          "|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['what']} | {r['files']} | {r['studies']} | {r['seconds']} | {r['files_per_s']} | "
           f"{r['vs_naive_dcmread']} | {r['peak_rss_mb_main']} | {r['peak_rss_mb_worker']} |" for r in rows]
    md += ["", "Peak memory against the number of studies (ingest, "
           f"--workers {args.workers}; `ru_maxrss` of the main process and of the largest worker):",
           "", "| studies | files | peak RSS main MB | peak RSS worker MB |", "|---|---|---|---|"]
    md += [f"| {m['studies']} | {m['files']} | {m['peak_rss_mb_main']} | {m['peak_rss_mb_worker']} |"
           for m in mem]
    md += ["", "The ingest writes the cache too (float32 arrays + JSON); the naive loop only reads."]
    (RESULTS / "ingest.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
