"""Benchmark of pretraining: training throughput against the bare model, and peak memory
against the number of studies in the cache.

* ``pretrain``: images/s of ``planessl pretrain`` at its defaults (small preset, 128 x 128,
  batch 20, multitask, augmentation on, ``data.num_workers`` as given), timed between
  consecutive training batches (data loading included, validation excluded).
* ``bare``: forward + backward + Adam step of the same module on in-memory random tensors
  of the same shapes.
* Peak resident memory (ru_maxrss) of a pretraining process on a cache of 10 and of 200
  phantom subjects (same number of steps; batch 9 in both so the batch shapes match).

Each measurement runs in its own process. Usage::

    PYTHONPATH=src python benchmarks/bench_pretrain.py --steps 12 [--workers 0 1]

Writes ``benchmarks/results/pretrain.csv`` and ``pretrain.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def make_caches(root: Path, n_max: int, seed: int = 0) -> dict[int, Path]:
    """Phantom caches of 10 and ``n_max`` subjects (the small one a copy of the first 10)."""
    from planessl.cache import rebuild_manifest, write_study
    from planessl.phantom import make_study

    big, small = root / f"c{n_max}", root / "c10"
    have = len(list((big / "studies").glob("*"))) if (big / "studies").is_dir() else 0
    if have < n_max:
        for k in range(n_max):
            write_study(big, make_study(seed=seed, index=k))
        rebuild_manifest(big)
    if not (small / "manifest.json").is_file():
        for d in sorted((big / "studies").iterdir())[:10]:
            shutil.copytree(d, small / "studies" / d.name, dirs_exist_ok=True)
        rebuild_manifest(small)
    return {10: small, n_max: big}


def child_pretrain(cache: str, steps: int, workers: int, out: str, batch: int = 0) -> dict:
    import pytorch_lightning as pl

    from planessl.config import PretrainConfig, load_config
    from planessl.pretraining import run_pretraining

    class Timer(pl.Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []
            self.sizes: list[int] = []
            self.val_time = 0.0
            self.val_between: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.ends.append(time.perf_counter())
            self.sizes.append(int(batch["image"].shape[0]))
            self.val_between.append(self.val_time)
            self.val_time = 0.0

        def on_validation_start(self, trainer, module):
            self._v = time.perf_counter()

        def on_validation_end(self, trainer, module):
            self.val_time += time.perf_counter() - self._v

    timer = Timer()
    cfg = load_config(PretrainConfig, overrides=[
        f"trainer.max_steps={steps}", "trainer.max_epochs=-1", "trainer.progress_bar=false",
        f"data.num_workers={workers}"] + ([f"data.batch_size={batch}"] if batch else []))
    run_pretraining(cfg, cache, out, callbacks=[timer])
    skip = 2  # warm-up
    dts = [timer.ends[k] - timer.ends[k - 1] - timer.val_between[k]
           for k in range(skip + 1, len(timer.ends))]
    images = sum(timer.sizes[skip + 1:])
    return {"images_per_s": images / sum(dts), "steps_timed": len(dts),
            "batch": timer.sizes[-1], "peak_rss_mb": peak_rss_mb()}


def child_bare(steps: int) -> dict:
    import torch

    from planessl.config import PretrainConfig, load_config
    from planessl.pretraining import sample_spec
    from planessl.tasks.multitask import PretrainModule

    torch.manual_seed(0)
    cfg = load_config(PretrainConfig)
    spec = sample_spec(cfg)
    module = PretrainModule(cfg)
    opt = module.configure_optimizers()
    b, s, c = cfg.data.batch_size, spec.image_size, len(spec.line_channels)
    batch = {"image": torch.randn(b, 1, s, s), "lines": torch.rand(b, c, s, s),
             "line_mask": torch.ones(b, c), "slice": torch.rand(b, 1), "slice_mask": torch.ones(b, 1)}
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss = module.losses(module(batch["image"]), batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    dts = times[2:]
    return {"images_per_s": b * len(dts) / sum(dts), "steps_timed": len(dts), "batch": b,
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_child(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, __file__, "--child", *args], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--cache-root", default=None, help="reuse phantom caches here")
    ap.add_argument("--child", nargs="+", default=None)
    args = ap.parse_args()
    if args.child:
        kind = args.child[0]
        if kind == "bare":
            out = child_bare(int(args.child[1]))
        else:
            out = child_pretrain(args.child[1], int(args.child[2]), int(args.child[3]), args.child[4],
                                 int(args.child[5]) if len(args.child) > 5 else 0)
        print(json.dumps(out))
        return

    import torch
    root = Path(args.cache_root or tempfile.mkdtemp(prefix="planessl-bench-"))
    caches = make_caches(root, args.subjects)
    rows = []
    bare = run_child(["bare", str(args.steps)])
    rows.append({"measure": "bare forward+backward+step", "subjects": "", "workers": "",
                 **bare})
    for w in args.workers:
        res = run_child(["pretrain", str(caches[args.subjects]), str(args.steps), str(w),
                         str(root / f"run-w{w}")])
        rows.append({"measure": "pretrain", "subjects": args.subjects, "workers": w, **res})
    # Memory against the number of studies: batch 9 so that the 10-study cache (9 training
    # studies) gives the same batch shape as the 200-study one.
    for n in (10, args.subjects):
        mem = run_child(["pretrain", str(caches[n]), str(args.steps), "0", str(root / f"run-mem{n}"), "9"])
        rows.append({"measure": "pretrain, batch 9 (memory)", "subjects": n, "workers": 0, **mem})
    for r in rows:
        r["ratio_to_bare"] = r["images_per_s"] / bare["images_per_s"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    fields = ["measure", "subjects", "workers", "batch", "steps_timed", "images_per_s",
              "ratio_to_bare", "peak_rss_mb"]
    with open(RESULTS / "pretrain.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = ["# Pretraining throughput and memory", "",
             f"Command: `PYTHONPATH=src python benchmarks/bench_pretrain.py --steps {args.steps} "
             f"--workers {' '.join(map(str, args.workers))}`", "",
             f"Machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads; defaults: small preset, 128 x 128, batch 20, "
             "multitask, augmentation on. Other jobs shared the machine.", "",
             "| measure | subjects | workers | images/s | ratio to bare | peak RSS (MB) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['measure']} | {r['subjects']} | {r['workers']} | "
                     f"{r['images_per_s']:.2f} | {r['ratio_to_bare']:.3f} | {r['peak_rss_mb']:.0f} |")
    (RESULTS / "pretrain.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
