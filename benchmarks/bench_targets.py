"""Benchmark: 3-channel 224 x 224 line heatmaps per second on one CPU core.

Target generation must never bound training speed (aim: >= 1,000 per second per core).
Runs with every thread pool limited to one thread, and writes
``benchmarks/results/targets.csv`` and ``targets.md``.

    python benchmarks/bench_targets.py [--seconds 3] [--out benchmarks/results]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from planessl.atomic import write_text  # noqa: E402
from planessl.geometry import Plane  # noqa: E402
from planessl.targets import line_targets  # noqa: E402


def _random_plane(rng, shape) -> Plane:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return Plane(rng.normal(size=3) * 20, q[:, 0], q[:, 1], (1.26, 1.26), shape, 8.0)


def _cases(rng):
    """(name, input plane, views dict, channels, sigma kwargs) per scenario."""
    sax = Plane([0, 0, 0], [1, 0, 0], [0, 1, 0], (1.26, 1.26), (224, 224), 8.0)
    views = {v: _random_plane(rng, (224, 224)) for v in ("2ch", "3ch", "4ch")}
    lax = Plane([0, 0, 0], [1, 0, 0], [0, 0, -1], (1.26, 1.26), (224, 224), 8.0)
    stack = [Plane([0, 0, -10.0 * k], [0.8, 0.6, 0], [-0.6, 0.8, 0], (1.8, 1.8), (200, 200),
                   8.0) for k in range(12)]
    lax_views = {"sax": stack, "2ch": views["2ch"], "3ch": views["3ch"]}
    return [
        ("SAX input, 2CH/3CH/4CH lines, sigma 6 px", sax, views, ("2ch", "3ch", "4ch"),
         {"sigma_px": 6.0}),
        ("SAX input, 2CH/3CH/4CH lines, sigma 3.75 mm", sax, views, ("2ch", "3ch", "4ch"),
         {"sigma_mm": 3.75}),
        ("LAX input, SAX stack (12 lines) + 2CH + 3CH, sigma 6 px", lax, lax_views,
         ("sax", "2ch", "3ch"), {"sigma_px": 6.0}),
    ]


def _rate(plane, views, channels, kwargs, seconds: float) -> tuple[float, int]:
    line_targets(plane, views, channels, **kwargs)  # warm up
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            heat, present = line_targets(plane, views, channels, **kwargs)
        n += 50
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per scenario")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for name, plane, views, channels, kwargs in _cases(rng):
        rate, n = _rate(plane, views, channels, kwargs, args.seconds)
        rows.append({"scenario": name, "size": "3x224x224", "per_second": round(rate, 1),
                     "ms_each": round(1000 / rate, 4), "repeats": n})
        print(f"{name}: {rate:,.0f} /s ({1000 / rate:.3f} ms each)")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(args.out / "targets.csv", buf.getvalue())
    md = ["# Line-heatmap targets: 3 channels of 224 x 224, one CPU core", "",
          f"`python benchmarks/bench_targets.py --seconds {args.seconds:g}` "
          f"(threads limited to 1; numpy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end). Aim: >= 1,000 per second.", "",
          "| scenario | per second | ms each |", "|---|---:|---:|"]
    md += [f"| {r['scenario']} | {r['per_second']:,.0f} | {r['ms_each']:.3f} |" for r in rows]
    write_text(args.out / "targets.md", "\n".join(md) + "\n")
    print(f"wrote {args.out / 'targets.csv'} and {args.out / 'targets.md'}")


if __name__ == "__main__":
    main()
