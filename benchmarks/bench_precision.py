"""Benchmark of training precision on CPU: images/s in ``32-true`` against ``bf16-mixed``
(Lightning precision strings; ``trainer.precision=auto`` resolves to ``bf16-mixed`` on CPUs
with AVX-512 BF16 or AMX, see :func:`planessl.engine.resolve_precision`).

Measures, each in both precisions:

* ``pretrain``: :func:`planessl.pretraining.run_pretraining`, multitask, features
  [8, 16, 32, 64, 128], 96 x 96 at 2.4 mm, batch 8, one thread, on a phantom cache; time
  between consecutive training batches (data loading included, validation excluded).
* ``pretrain bare``: forward + losses + backward + Adam step of the same
  :class:`~planessl.tasks.multitask.PretrainModule` on in-memory random tensors of the same
  shapes, under the same autocast as Lightning's ``bf16-mixed`` (``torch.autocast("cpu",
  torch.bfloat16)`` around forward and loss; backward and step outside), and with
  deterministic algorithms on as the trainer has them (``trainer.deterministic=true``).
* ``finetune``: :func:`planessl.finetune.finetune` with ``configs/acdc_finetune.yaml`` (its
  grid and augmentation) on a phantom cache, segmentation, scratch; time between batches.
* ``finetune bare``: SegmentationNet + DiceCE loss + Adam step on random tensors.
* ``bare, alternating in one process``: the bare steps with eight conditions taking turns
  step by step in one process (order rotated every round): fp32 and bf16, each with
  deterministic mode ``on`` (as the trainer sets it: deterministic algorithms plus
  ``torch.utils.deterministic.fill_uninitialized_memory``), ``on-nofill`` (the algorithms
  without the filling of new tensors) and ``off``, and with a second copy of the model and
  its input in ``torch.channels_last`` memory format (mode ``on``; measured only, the
  library does not use it). On a shared machine these ratios are the steadiest, since every
  condition sees the same moments of the other jobs' load.

Every measurement runs in its own process with one torch thread; the first
``--warmup`` steps are excluded and the rate is ``batch / median step time`` over full
batches. The machine may be shared: the 1-minute load average is recorded before and after
each measurement, and the precisions are interleaved per repeat in ABBA order (fp32, bf16 |
bf16, fp32 | ...) so that a drifting load hits both alike. The bf16/fp32 ratio of a measure
is its mean bf16 rate over its mean fp32 rate; per-repeat pair ratios are in the CSV. CPU
time per step is recorded beside wall time.

Usage::

    PYTHONPATH=src python benchmarks/bench_precision.py [--repeats 2] [--steps 16]
        [--bare-steps 20] [--warmup 3] [--alt-rounds 24] [--cache-root DIR]
        [--no-channels-last]

About 6 minutes at the defaults on 2 shared CPU cores (phantom caches included).
Writes ``benchmarks/results/precision.csv`` and ``precision.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The child measurements and the reading live in sibling modules; every name is
# imported here, so ``bench_precision.NAME`` keeps working.
from precision_children import (  # noqa: E402, F401
    ALT_ROWS, ALTERNATING, FINETUNE_CONFIG, FINETUNE_LABELLED, FINETUNE_OVERRIDES,
    PRETRAIN_OVERRIDES, ROOT, autocast_for, bare_loop, bare_model, child_alternating,
    child_bare, child_finetune, child_pretrain, clocks, first_optimiser, load1,
    set_deterministic, step_stats, timer_callback)
from precision_report import cpu_bf16_flags, cpu_name, reading, verdict  # noqa: E402, F401

RESULTS = ROOT / "benchmarks" / "results"
PRECISIONS = ("32-true", "bf16-mixed")


def make_caches(root: Path, n_pretrain: int, n_finetune: int, seed: int = 0) -> dict[str, Path]:
    """Phantom caches: ``n_pretrain`` subjects for pretraining and a copy of the first
    ``n_finetune`` of them for fine-tuning (reused when already there)."""
    from planessl.cache import rebuild_manifest, write_study
    from planessl.phantom import make_study

    big, small = root / f"pre{n_pretrain}", root / f"ft{n_finetune}"
    have = len(list((big / "studies").glob("*"))) if (big / "studies").is_dir() else 0
    if have < n_pretrain or not (big / "manifest.json").is_file():
        for k in range(n_pretrain):
            write_study(big, make_study(seed=seed, index=k))
        rebuild_manifest(big)
    if not (small / "manifest.json").is_file():
        for d in sorted((big / "studies").iterdir())[:n_finetune]:
            shutil.copytree(d, small / "studies" / d.name, dirs_exist_ok=True)
        rebuild_manifest(small)
    return {"pretrain": big, "finetune": small}


# ----------------------------------------------------------------------------- parent
def run_child(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--child", *args], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2, help="fp32/bf16 pairs per measure")
    ap.add_argument("--steps", type=int, default=16, help="timed steps of the training runs")
    ap.add_argument("--bare-steps", type=int, default=20, help="timed bare steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    ap.add_argument("--pretrain-subjects", type=int, default=44,
                    help="phantom subjects for pretraining (44: 40 training studies = 5 full "
                         "batches per epoch)")
    ap.add_argument("--finetune-subjects", type=int, default=24)
    ap.add_argument("--no-channels-last", action="store_true",
                    help="leave channels_last out of the in-process comparison")
    ap.add_argument("--alt-rounds", type=int, default=24,
                    help="rounds of the in-process alternating bare steps (0: skip)")
    ap.add_argument("--cache-root", default=None,
                    help="keep (and reuse) the phantom caches here; default: a temporary "
                         "folder, removed at the end")
    ap.add_argument("--child", nargs="+", default=None)
    args = ap.parse_args()
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "pretrain":
            out = child_pretrain(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])
        elif kind == "finetune":
            out = child_finetune(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])
        elif kind == "bare":
            out = child_bare(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])
        elif kind == "alternating":
            out = child_alternating(rest[0], int(rest[1]), int(rest[2]), rest[3] == "1")
        else:
            raise SystemExit(f"unknown child {kind}")
        print(json.dumps(out))
        return

    import torch

    from planessl.engine import resolve_precision

    t_start = time.time()
    root = Path(args.cache_root or tempfile.mkdtemp(prefix="planessl-bench-precision-"))
    t0 = time.time()
    caches = make_caches(root, args.pretrain_subjects, args.finetune_subjects)
    cache_s = time.time() - t0
    runs = root / "runs"
    shutil.rmtree(runs, ignore_errors=True)

    def bare(kind: str, memfmt: str = "contiguous"):
        return lambda p, tag: ["bare", kind, p, str(args.bare_steps), str(args.warmup), memfmt]

    def trained(kind: str):
        return lambda p, tag: [kind, str(caches[kind]), p, str(args.steps), str(args.warmup),
                               str(runs / tag)]

    measures = [("pretrain", trained("pretrain")), ("pretrain bare", bare("pretrain")),
                ("finetune", trained("finetune")), ("finetune bare", bare("finetune"))]
    rows = []

    def show(name, prec, res, extra=""):
        print(f"[{time.time() - t_start:5.0f} s] {name:28s} {prec:10s}{extra}: "
              f"{res['images_per_s']:6.1f} img/s (median step {res['median_step_s']:.3f} s,"
              f" load {res['load_before']:.2f}->{res['load_after']:.2f})", flush=True)

    for rep in range(args.repeats):
        order = PRECISIONS if rep % 2 == 0 else PRECISIONS[::-1]  # ABBA
        for name, argv in measures:
            for prec in order:
                tag = f"{name.replace(' ', '_')}-{prec}-r{rep}"
                t = time.time()
                res = run_child(argv(prec, tag))
                rows.append({"measure": name, "memory_format": "contiguous", "precision": prec,
                             "deterministic": "on",
                             "repeat": rep, **res, "wall_s": time.time() - t})
                show(name, prec, res, f" rep {rep}")
    # Pair ratios (same repeat, adjacent in time).
    by = {(r["measure"], r["precision"], r["repeat"]): r for r in rows}
    for r in rows:
        fp32 = by[(r["measure"], "32-true", r["repeat"])]
        bf16 = r["precision"] == "bf16-mixed"
        r["bf16_over_fp32_pair"] = r["images_per_s"] / fp32["images_per_s"] if bf16 else ""
    summary = {}
    for name, _ in measures:
        mine = [r for r in rows if r["measure"] == name]
        rate = {p: statistics.mean(r["images_per_s"] for r in mine if r["precision"] == p)
                for p in PRECISIONS}
        loads = [v for r in mine for v in (r["load_before"], r["load_after"])]
        summary[name] = {"fp32": rate["32-true"], "bf16": rate["bf16-mixed"], "batch": mine[0]["batch"],
                         "ratio": rate["bf16-mixed"] / rate["32-true"],
                         "pairs": [r["bf16_over_fp32_pair"] for r in mine
                                   if r["precision"] == "bf16-mixed"],
                         "load_min": min(loads), "load_max": max(loads)}
        if "median_data_s" in mine[0]:
            for prec, short in (("32-true", "fp32"), ("bf16-mixed", "bf16")):
                for part in ("data", "compute"):
                    summary[name][f"{part}_{short}"] = statistics.mean(
                        r[f"median_{part}_s"] for r in mine if r["precision"] == prec)

    # The bare steps with precision, deterministic mode and memory format taking turns in
    # one process.
    alt = {}
    if args.alt_rounds > 0:
        for kind in ("pretrain", "finetune"):
            t = time.time()
            res = run_child(["alternating", kind, str(args.alt_rounds), str(args.warmup),
                             "0" if args.no_channels_last else "1"])
            name = f"{kind} bare, alternating in one process"
            a = {}
            for key, r in res.items():
                fmt, prec, det = key.split("|")
                rows.append({"measure": name, "memory_format": fmt, "precision": prec,
                             "deterministic": det, "repeat": "", **r, "wall_s": time.time() - t,
                             "bf16_over_fp32_pair": ""})
                show(name, prec, r, f" {fmt} det {det}")
                a[(fmt, det, prec)] = r["images_per_s"]
                a["load"] = (r["load_before"], r["load_after"])
            for fmt, det in ALT_ROWS:
                if (fmt, det, "32-true") in a:
                    a[(fmt, det, "ratio")] = a[(fmt, det, "bf16-mixed")] / a[(fmt, det, "32-true")]
            alt[kind] = a
    total_s = time.time() - t_start

    RESULTS.mkdir(parents=True, exist_ok=True)
    fields = ["measure", "memory_format", "precision", "deterministic", "repeat", "batch", "steps_timed",
              "median_step_s", "images_per_s", "median_data_s", "median_compute_s",
              "median_step_cpu_s", "images_per_cpu_s",
              "bf16_over_fp32_pair", "load_before", "load_after", "wall_s"]
    with open(RESULTS / "precision.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})

    cmd = "PYTHONPATH=src python benchmarks/bench_precision.py"
    for flag, value, default in (("--repeats", args.repeats, 2), ("--steps", args.steps, 16),
                                 ("--bare-steps", args.bare_steps, 20), ("--warmup", args.warmup, 3),
                                 ("--alt-rounds", args.alt_rounds, 24)):
        if value != default:
            cmd += f" {flag} {value}"
    if args.no_channels_last:
        cmd += " --no-channels-last"
    loads = [v for r in rows for v in (r["load_before"], r["load_after"])]
    load_lo, load_hi = min(loads), max(loads)
    lines = [
        "# Training throughput: 32-true vs bf16-mixed on CPU", "",
        f"Command: `{cmd}` ({total_s / 60:.1f} min in all, {cache_s:.0f} s of it making the "
        f"phantom caches; run {time.strftime('%Y-%m-%d %H:%M', time.localtime(t_start))}).", "",
        f"Machine: {cpu_name()} ({cpu_bf16_flags()}), {os.cpu_count()} cores, 1-minute "
        f"load average {load_lo:.1f}-{load_hi:.1f} during the measurements"
        f"{' (other jobs shared the machine)' if load_lo > 1.5 else ''}, "
        f"Python {platform.python_version()}, torch {torch.__version__}; "
        f"`trainer.precision=auto` resolves to `{resolve_precision('auto', 'cpu')}` here. "
        "One torch thread per measurement, each in its own process.", "",
        f"Pretraining: `run_pretraining`, multitask, features [8, 16, 32, 64, 128], 96 x 96 at "
        f"2.4 mm, batch 8, {args.pretrain_subjects} phantom subjects. Fine-tuning: `finetune` "
        f"with `configs/acdc_finetune.yaml` (96 x 96 at 1.6 mm, batch 8, its augmentation), "
        f"segmentation from scratch with {FINETUNE_LABELLED} labelled of "
        f"{args.finetune_subjects} phantom subjects (`{' '.join(FINETUNE_OVERRIDES)}`). "
        f"Training runs: {args.warmup} warm-up + {args.steps} timed steps, time between "
        "consecutive batches (data loading included, validation excluded). Bare: "
        f"{args.warmup} + {args.bare_steps} steps of forward, loss, backward and Adam step of "
        "the same module on random tensors of the same shapes, under the same autocast and "
        "with deterministic algorithms on, as the trainer runs them. Rate = batch / median "
        f"step time; each measure is the mean of {args.repeats} repeats, the precisions "
        "interleaved in ABBA order (fp32, bf16 | bf16, fp32 | ...).", "",
        "Between batches: median seconds per step from the end of one training batch to the "
        "start of the next (loading and augmenting a batch), fp32 / bf16.", "",
        "| measure | fp32 images/s | bf16 images/s | bf16 / fp32 | per-repeat ratios | "
        "between batches (s) | load (1 min) |", "|---|---|---|---|---|---|---|"]
    for name, m in summary.items():
        between = f"{m['data_fp32']:.3f} / {m['data_bf16']:.3f}" if "data_fp32" in m else ""
        lines.append(f"| {name} | {m['fp32']:.1f} | {m['bf16']:.1f} | **{m['ratio']:.2f}** | "
                     f"{', '.join(f'{p:.2f}' for p in m['pairs'])} | {between} | "
                     f"{m['load_min']:.1f}-{m['load_max']:.1f} |")
    if alt:
        lines += ["", f"Bare step, conditions taking turns step by step in one process "
                  f"({args.alt_rounds} rounds after {args.warmup}, order rotated every round; "
                  "images/s from the median step). Deterministic `on` is what the trainer sets "
                  "(planessl's default `trainer.deterministic=true`): deterministic algorithms "
                  "and `torch.utils.deterministic.fill_uninitialized_memory`; `on-nofill`: the "
                  "algorithms without the filling of new tensors; `off`: neither. "
                  "`channels_last`: model and input in that memory format (a second copy of the "
                  "model).", "",
                  "| bare step | memory format | deterministic | fp32 images/s | bf16 images/s | "
                  "bf16 / fp32 | load (1 min) |", "|---|---|---|---|---|---|---|"]
        for kind, a in alt.items():
            for fmt, det in ALT_ROWS:
                if (fmt, det, "ratio") in a:
                    lines.append(f"| {kind} | {fmt} | {det} | {a[(fmt, det, '32-true')]:.1f} | "
                                 f"{a[(fmt, det, 'bf16-mixed')]:.1f} | "
                                 f"**{a[(fmt, det, 'ratio')]:.2f}** | "
                                 f"{a['load'][0]:.1f}-{a['load'][1]:.1f} |")
    lines += ["", "Every measurement, with its CPU time and the load average before and after "
              "its timed steps, is in `precision.csv`.", "", "## Reading", ""]
    lines += reading(summary, alt, rows)
    (RESULTS / "precision.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if args.cache_root is None:  # ~0.8 GB of phantom caches and run folders
        shutil.rmtree(root, ignore_errors=True)
    else:
        shutil.rmtree(runs, ignore_errors=True)

if __name__ == "__main__":
    main()
