"""Every pretext method on phantoms: the demo's few-label experiment (24 phantom subjects,
N = 1 and 3 labelled, 3 seeds) with scratch, the plane-geometry tasks and the competing
self-supervised methods, each pretrained with the same steps and batch on the same pool.

    python benchmarks/phantom_methods.py [--work /tmp/phantom_methods] [--seeds 0 1 2]

Runs ``planessl demo --methods ...`` (resumable: rerun the same command to continue) and
copies the table, the rows, the plot and the learning curves to
``benchmarks/results/phantom_methods/`` with a README that records the command.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/phantom_methods"
METHODS = ["scratch", "lines", "slices", "multitask", "anatomy", "simclr", "gcl", "pcl",
           "rotation", "genesis"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/phantom_methods"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    t0 = time.time()
    cmd = [sys.executable, "-m", "planessl", "demo", "--out", str(args.work),
           "--seeds", *map(str, args.seeds), "--methods", *args.methods]
    subprocess.run(cmd, check=True)
    exp = args.work / "experiment"
    args.results.mkdir(parents=True, exist_ok=True)
    for name in ("results.csv", "summary.md", "dice_vs_n.png", "learning_curves.png",
                 "config.yaml"):
        if (exp / name).is_file():
            shutil.copyfile(exp / name, args.results / name)
    command = "python benchmarks/phantom_methods.py " + " ".join(argv or sys.argv[1:])
    text = [
        "# Every pretext method on phantoms (the demo's experiment, 3 seeds)", "",
        (__doc__ or "").split("\n\n")[0].strip(), "",
        f"Command: `{command.strip()}` (wall time of the last call {(time.time() - t0) / 60:.1f} "
        f"min on 2 shared cores). Demo settings: 24 subjects, 64 px at 3 mm, U-Net 8-128, "
        f"300 pretraining steps, 150 fine-tuning steps (`planessl demo --help`).", "",
        (exp / "summary.md").read_text(),
    ]
    (args.results / "README.md").write_text("\n".join(text))
    print(f"wrote {args.results / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
