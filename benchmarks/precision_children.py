"""The measurements of ``bench_precision.py``, each run in a child process (``--child``):
the measured settings, the timers (wall and CPU clocks, load average, a Lightning
callback), the training runs (``child_pretrain``, ``child_finetune``) and the bare steps
(``bare_model``, ``child_bare``, ``child_alternating``)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FINETUNE_CONFIG = ROOT / "configs" / "acdc_finetune.yaml"

# The pretraining setting of the brief (features, grid, batch, one thread).
PRETRAIN_OVERRIDES = ["task.name=multitask", "model.features=[8,16,32,64,128]",
                      "data.image_size=96", "data.spacing_mm=2.4", "data.batch_size=8",
                      "trainer.threads=1"]
# A ~24-subject phantom cache: 2 validation and ~5 test studies, the rest the labelled pool.
FINETUNE_OVERRIDES = ["split.val_size=2", "split.test_fraction=0.2"]
FINETUNE_LABELLED = 3


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
