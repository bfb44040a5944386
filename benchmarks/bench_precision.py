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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FINETUNE_CONFIG = ROOT / "configs" / "acdc_finetune.yaml"
PRECISIONS = ("32-true", "bf16-mixed")

# The pretraining setting of the brief (features, grid, batch, one thread).
PRETRAIN_OVERRIDES = ["task.name=multitask", "model.features=[8,16,32,64,128]",
                      "data.image_size=96", "data.spacing_mm=2.4", "data.batch_size=8",
                      "trainer.threads=1"]
# A ~24-subject phantom cache: 2 validation and ~5 test studies, the rest the labelled pool.
FINETUNE_OVERRIDES = ["split.val_size=2", "split.test_fraction=0.2"]
FINETUNE_LABELLED = 3


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


# ----------------------------------------------------------------------------- children
def load1() -> float:
    return os.getloadavg()[0]


def clocks() -> tuple[float, float]:
    """(wall, CPU time of this process): with one thread the CPU time of a step is far
    less sensitive to other jobs on a shared machine than its wall time."""
    return time.perf_counter(), time.process_time()


def step_stats(walls: list[float], cpus: list[float], sizes: list[int], batch: int) -> dict:
    """Rates from the median wall and CPU times of the full-batch steps."""
    full = [k for k, n in enumerate(sizes) if n == batch]
    wall = statistics.median(walls[k] for k in full)
    cpu = statistics.median(cpus[k] for k in full)
    return {"images_per_s": batch / wall, "median_step_s": wall,
            "images_per_cpu_s": batch / cpu, "median_step_cpu_s": cpu,
            "steps_timed": len(full), "batch": batch}


def timer_callback(warmup: int):
    """A Lightning callback timing consecutive training batches, validation excluded."""
    import pytorch_lightning as pl

    class Timer(pl.Callback):
        def __init__(self) -> None:
            self.ends: list[tuple[float, float]] = []
            self.starts: list[float] = []
            self.sizes: list[int] = []
            self.val_between: list[tuple[float, float]] = []
            self.val_time = (0.0, 0.0)
            self.load_before = self.load_after = float("nan")

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.starts.append(time.perf_counter())

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.ends.append(clocks())
            self.sizes.append(int(batch["image"].shape[0]))
            self.val_between.append(self.val_time)
            self.val_time = (0.0, 0.0)
            if len(self.ends) == warmup:  # the timed window starts here
                self.load_before = load1()

        def on_train_end(self, trainer, module):
            self.load_after = load1()

        def on_validation_start(self, trainer, module):
            self._v = clocks()

        def on_validation_end(self, trainer, module):
            now = clocks()
            self.val_time = tuple(t + n - v for t, n, v in zip(self.val_time, now, self._v))

        def result(self) -> dict:
            ks = range(max(1, warmup), len(self.ends))
            dt = [[self.ends[k][i] - self.ends[k - 1][i] - self.val_between[k][i] for k in ks]
                  for i in (0, 1)]
            batch = max(self.sizes)
            full = [k for k in ks if self.sizes[k] == batch]
            # Between batches (loading and augmenting the next batch; validation taken out)
            # and inside the step (forward, loss, backward, optimiser, logging).
            data = [self.starts[k] - self.ends[k - 1][0] - self.val_between[k][0] for k in full]
            compute = [self.ends[k][0] - self.starts[k] for k in full]
            return {**step_stats(dt[0], dt[1], [self.sizes[k] for k in ks], batch),
                    "median_data_s": statistics.median(data),
                    "median_compute_s": statistics.median(compute),
                    "load_before": self.load_before, "load_after": self.load_after}

    return Timer()


def child_pretrain(cache: str, precision: str, steps: int, warmup: int, out: str) -> dict:
    from planessl.config import PretrainConfig, load_config
    from planessl.pretraining import run_pretraining

    timer = timer_callback(warmup)
    cfg = load_config(PretrainConfig, overrides=PRETRAIN_OVERRIDES + [
        f"trainer.precision={precision}", f"trainer.max_steps={warmup + steps}",
        "trainer.max_epochs=-1", "trainer.progress_bar=false"])
    run_pretraining(cfg, cache, out, callbacks=[timer])
    return timer.result()


def child_finetune(cache: str, precision: str, steps: int, warmup: int, out: str) -> dict:
    import planessl.engine as engine
    from planessl.finetune import finetune

    timer = timer_callback(warmup)
    build = engine.build_trainer

    def build_with_timer(*args, callbacks=(), **kwargs):  # finetune() takes no callbacks
        return build(*args, callbacks=[*callbacks, timer], **kwargs)

    engine.build_trainer = build_with_timer
    n = warmup + steps
    # One "epoch" of n steps: the only validation comes after the last timed batch.
    finetune(cache, FINETUNE_LABELLED, "scratch", out, config_file=str(FINETUNE_CONFIG),
             overrides=FINETUNE_OVERRIDES + [f"trainer.precision={precision}",
                                             f"finetune.steps={n}", f"finetune.val_every_n_steps={n}"],
             echo=lambda s: None)
    return timer.result()


def bare_loop(step, steps: int, warmup: int, batch: int) -> dict:
    walls, cpus = [], []
    load_before = float("nan")
    for k in range(warmup + steps):
        if k == warmup:
            load_before = load1()
        w0, c0 = clocks()
        step()
        w1, c1 = clocks()
        if k >= warmup:
            walls.append(w1 - w0)
            cpus.append(c1 - c0)
    load_after = load1()
    return {**step_stats(walls, cpus, [batch] * len(walls), batch),
            "load_before": load_before, "load_after": load_after}


def autocast_for(precision: str):
    """The autocast Lightning's precision plugin uses on CPU."""
    import contextlib

    import torch

    if precision == "bf16-mixed":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "32-true":
        return contextlib.nullcontext
    raise ValueError(f"unsupported precision {precision!r}")


def first_optimiser(conf):
    return conf["optimizer"] if isinstance(conf, dict) else conf


def set_deterministic(mode: str) -> None:
    """``on``: as Lightning's ``deterministic="warn"`` (planessl's default
    ``trainer.deterministic=true``) sets it, which also turns on
    ``torch.utils.deterministic.fill_uninitialized_memory`` (every new ``torch.empty`` is
    filled); ``on-nofill``: deterministic algorithms without that filling; ``off``."""
    import torch

    torch.use_deterministic_algorithms(mode != "off", warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = mode == "on"


def bare_model(kind: str, memfmt: str = "contiguous"):
    """``(step, batch, deterministic)`` of the bare ``kind`` (``pretrain`` or ``finetune``):
    ``step(cast)`` is one forward + loss (inside ``cast()``), backward and Adam step on fixed
    random tensors; ``deterministic`` is the trainer's setting in that configuration."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if kind == "pretrain":
        from planessl.config import PretrainConfig, load_config
        from planessl.pretraining import sample_spec
        from planessl.tasks.multitask import PretrainModule

        cfg = load_config(PretrainConfig, overrides=PRETRAIN_OVERRIDES + ["trainer.max_steps=1000"])
        spec = sample_spec(cfg)
        module = PretrainModule(cfg)
        opt = first_optimiser(module.configure_optimizers())
        b, s, c = cfg.data.batch_size, spec.image_size, len(spec.line_channels)
        batch = {"image": torch.randn(b, 1, s, s), "lines": torch.rand(b, c, s, s),
                 "line_mask": torch.ones(b, c), "slice": torch.rand(b, 1),
                 "slice_mask": torch.ones(b, 1)}

        def loss_fn():
            return module.losses(module(batch["image"]), batch)["loss"]
    else:
        from planessl.finetune import build_net, features_of, load_config_for
        from planessl.tasks.segmentation import SegmentationTask

        cfg = load_config_for(FINETUNE_OVERRIDES, str(FINETUNE_CONFIG))
        ft, o = cfg.finetune, cfg.optim
        module = SegmentationTask(build_net("segmentation", features_of(cfg), ft.n_classes),
                                  lr=o.lr, weight_decay=o.weight_decay, lambda_ce=ft.lambda_ce,
                                  lambda_dice=ft.lambda_dice, schedule="constant")
        opt = first_optimiser(module.configure_optimizers())
        b, s = cfg.data.batch_size, int(cfg.data.image_size)
        batch = {"image": torch.randn(b, 1, s, s),
                 "label": torch.randint(0, ft.n_classes, (b, 1, s, s))}

        def loss_fn():
            return module.loss(module(batch["image"]), batch["label"])
    if memfmt == "channels_last":
        module.to(memory_format=torch.channels_last)
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)

    def step(cast):
        with cast():
            loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, b, bool(cfg.trainer.deterministic)


def child_bare(kind: str, precision: str, steps: int, warmup: int, memfmt: str) -> dict:
    step, b, det = bare_model(kind, memfmt)
    set_deterministic("on" if det else "off")
    cast = autocast_for(precision)
    return bare_loop(lambda: step(cast), steps, warmup, b)


#: Conditions (memory format, precision, deterministic mode) of the in-process comparison,
#: in the order of a round.
ALTERNATING = [("contiguous", "32-true", "on"), ("contiguous", "bf16-mixed", "on"),
               ("contiguous", "bf16-mixed", "off"), ("contiguous", "32-true", "off"),
               ("contiguous", "32-true", "on-nofill"), ("contiguous", "bf16-mixed", "on-nofill"),
               ("channels_last", "32-true", "on"), ("channels_last", "bf16-mixed", "on")]
#: Rows of the in-process table: (memory format, deterministic mode).
ALT_ROWS = [("contiguous", "on"), ("contiguous", "on-nofill"), ("contiguous", "off"),
            ("channels_last", "on")]


def child_alternating(kind: str, rounds: int, warmup: int, channels_last: bool) -> dict:
    """The bare step with the conditions of :data:`ALTERNATING` taking turns step by step in
    one process, the order rotated every round: every condition sees the same moments of the
    other jobs' load. Two copies of the model (same initial weights), one per memory format."""
    conditions = [c for c in ALTERNATING if channels_last or c[0] == "contiguous"]
    models = {fmt: bare_model(kind, fmt) for fmt in {c[0] for c in conditions}}
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    load_before = float("nan")
    for r in range(warmup + rounds):
        if r == warmup:
            load_before = load1()
        k = r % len(conditions)  # rotated: every condition follows each other one in turn
        for fmt, prec, det in conditions[k:] + conditions[:k]:
            step, b, _ = models[fmt]
            set_deterministic(det)
            cast = autocast_for(prec)
            w0, c0 = clocks()
            step(cast)
            w1, c1 = clocks()
            if r >= warmup:
                key = f"{fmt}|{prec}|{det}"
                walls.setdefault(key, []).append(w1 - w0)
                cpus.setdefault(key, []).append(c1 - c0)
    load_after = load1()
    return {key: {**step_stats(walls[key], cpus[key], [b] * len(walls[key]), b),
                  "load_before": load_before, "load_after": load_after} for key in walls}


# ----------------------------------------------------------------------------- parent
def run_child(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--child", *args], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def verdict(x: float, y: float) -> str:
    """Words for two speed ratios (new / old) of the same change."""
    if min(x, y) > 1.05:
        return "faster"
    if max(x, y) < 0.95:
        return "slower"
    return "no clear difference"


def reading(summary: dict[str, dict], alt: dict[str, dict], rows: list[dict]) -> list[str]:
    """Sentences computed from this run's numbers (not fixed text)."""
    out = []
    for kind in ("pretrain", "finetune"):
        t, b = summary[kind], summary[f"{kind} bare"]
        a = alt.get(kind, {})
        line = (f"- **{kind}**: training runs at {t['ratio']:.2f}x the fp32 rate in bf16-mixed; "
                f"the bare step gains {b['ratio']:.2f}x")
        if a:
            line += f" ({a[('contiguous', 'on', 'ratio')]:.2f}x when they alternate in one process)"
        line += (f". The training run reaches {t['fp32'] / b['fp32']:.2f} (fp32) and "
                 f"{t['bf16'] / b['bf16']:.2f} (bf16) of the bare rate")
        if "data_fp32" in t:
            d = (t["data_fp32"] + t["data_bf16"]) / 2
            line += (f"; {d:.3f} s of a training step (median) passes between batches, loading "
                     "and augmenting data, which bf16 does not speed up")
            if a:
                c32 = t["batch"] / a[("contiguous", "on", "32-true")]
                c16 = t["batch"] / a[("contiguous", "on", "bf16-mixed")]
                line += (f". With that time and the alternating bare steps ({c32:.3f} s fp32, "
                         f"{c16:.3f} s bf16), training would gain {(d + c32) / (d + c16):.2f}x")
        out.append(line + ".")
    for kind, a in alt.items():
        if ("channels_last", "on", "ratio") in a:
            x = a[("channels_last", "on", "32-true")] / a[("contiguous", "on", "32-true")]
            y = a[("channels_last", "on", "bf16-mixed")] / a[("contiguous", "on", "bf16-mixed")]
            out.append(f"- channels_last, {kind} bare step (alternating in one process): "
                       f"{x:.2f}x the contiguous rate in fp32, {y:.2f}x in bf16: {verdict(x, y)}.")
    for kind, a in alt.items():
        on32, on16 = a[("contiguous", "on", "32-true")], a[("contiguous", "on", "bf16-mixed")]
        x, y = a[("contiguous", "off", "32-true")] / on32, a[("contiguous", "off", "bf16-mixed")] / on16
        u, v = (a[("contiguous", "on-nofill", "32-true")] / on32,
                a[("contiguous", "on-nofill", "bf16-mixed")] / on16)
        out.append(f"- deterministic mode, {kind} bare step (alternating in one process): "
                   f"turning it off gives {x:.2f}x in fp32 and {y:.2f}x in bf16 "
                   f"({verdict(x, y)}); keeping the deterministic algorithms but not the "
                   f"filling of new tensors gives {u:.2f}x and {v:.2f}x. bf16 / fp32 is "
                   f"{a[('contiguous', 'on', 'ratio')]:.2f} as the trainer runs, "
                   f"{a[('contiguous', 'off', 'ratio')]:.2f} without deterministic mode.")
    pairs = {}
    for r in rows:
        if r.get("bf16_over_fp32_pair", "") != "":
            pairs.setdefault(r["measure"], []).append(r["bf16_over_fp32_pair"])
    spread = max((max(v) - min(v) for v in pairs.values() if len(v) > 1), default=0.0)
    cpu_share = statistics.mean(r["median_step_cpu_s"] / r["median_step_s"] for r in rows)
    noise = (f"- Noise: the per-repeat bf16 / fp32 ratios of one measure differ by up to "
             f"{spread:.2f} between repeats. A step's CPU time was {cpu_share:.2f} of its wall "
             "time on average")
    if cpu_share > 0.95:
        noise += (": the process was seldom descheduled, so the other jobs slow it in ways "
                  "CPU time does not show (shared caches and memory, the host's scheduling of "
                  "the virtual CPUs) and the CSV's CPU-time rates are no steadier")
    out.append(noise + ". Ratios from steps alternating in one process see the same load and "
               "are the most trustworthy here.")
    return out + [""]


def cpu_bf16_flags() -> str:
    """The CPU's native bf16 flags, as :func:`planessl.engine.cpu_has_native_bf16` reads them."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    found = [f for f in ("avx512_bf16", "amx_bf16") if f in have]
                    return ", ".join(found) if found else "no native bf16"
    except OSError:
        pass
    return "flags unknown"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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
