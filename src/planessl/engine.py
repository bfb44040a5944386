"""Training engine on PyTorch Lightning, shared by pretraining and fine-tuning.

A run folder holds::

    RUN/config.yaml, run_info.json      resolved configuration, seed, package versions
    RUN/checkpoints/last.ckpt           everything needed to resume exactly (--resume)
    RUN/checkpoints/best-*.ckpt         best by the monitored validation metric
    RUN/metrics.csv                     CSV log;  RUN/tensorboard/  TensorBoard log
    RUN/weights.safetensors             transferable weights (written by the caller)
    RUN/log.txt                         library messages and warnings of a quiet run
                                        (:func:`quiet_logging`, used by ``planessl experiment``)

The device is chosen at run time (``accelerator="auto"``); several devices or nodes use
DDP, either launched by Lightning (``devices=N``) or by ``torchrun`` (detected from its
environment variables).
"""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from planessl.config import TrainerConfig
from planessl.errors import PlaneSSLError

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
WEIGHTS_FILE = "weights.safetensors"


def parse_devices(devices: str | int) -> int | str:
    """``"auto"`` stays; a number becomes an int (devices per node)."""
    if isinstance(devices, int):
        return devices
    text = str(devices).strip()
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise PlaneSSLError(f"trainer.devices must be 'auto' or a positive number, got {devices!r}") from None
    if value < 1:
        raise PlaneSSLError(f"trainer.devices must be positive, got {value}")
    return value


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX, read from Linux's
    ``/proc/cpuinfo``); elsewhere ``False``, so bf16 is never chosen where it is emulated
    (slower than fp32)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """Lightning's precision for ``trainer.precision`` (``auto`` picks bf16 mixed precision
    on GPUs and CPUs that compute it natively, fp16 mixed on older GPUs, else 32-bit;
    anything else is passed through)."""
    if precision != "auto":
        return precision
    accelerator = str(accelerator).lower()
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in ("auto", "cpu") and cpu_has_native_bf16():
        return "bf16-mixed"
    return "32-true"


#: Loggers of the libraries a training run talks through (Lightning's "GPU available",
#: "Seed set to", model summary, tips; MONAI's messages).
LIBRARY_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch",
                   "lightning.fabric", "lightning", "monai", "torch")
RUN_LOGGER = "planessl.run"
LOG_FILE = "log.txt"


@contextlib.contextmanager
def quiet_logging(log_path: str | Path) -> Iterator[Callable[[str], None]]:
    """Send everything a run says to ``log_path`` (appended) instead of the console.

    Inside the block, the records of :data:`LIBRARY_LOGGERS`, Python warnings
    (``UserWarning`` of Lightning, MONAI, torch...) and anything printed to ``sys.stdout``
    or ``sys.stderr`` go to the file; an exception escaping the block is written there too
    (and raised as usual). Yields an ``echo`` function writing one line to the same file,
    for planessl's own per-run messages. Console handlers are restored on exit.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s",
                                               "%Y-%m-%d %H:%M:%S"))
        saved = []
        for name in LIBRARY_LOGGERS + (RUN_LOGGER, "py.warnings"):
            lg = logging.getLogger(name)
            saved.append((lg, lg.handlers[:], lg.propagate, lg.level))
            lg.handlers = [handler]
            lg.propagate = False
            if name.startswith(("lightning", "pytorch_lightning", RUN_LOGGER, "py.warnings")):
                lg.setLevel(logging.INFO)  # as Lightning sets itself: its info lines are logged
        run_log = logging.getLogger(RUN_LOGGER)
        warn_log = logging.getLogger("py.warnings")

        def show(message, category, filename, lineno, file=None, line=None):
            warn_log.warning("%s", warnings.formatwarning(message, category, filename, lineno,
                                                         line).rstrip())

        try:
            # catch_warnings restores the filters and showwarning on exit; entering it also
            # resets the "shown once" registries, so every run's log lists its own warnings.
            with warnings.catch_warnings(), contextlib.redirect_stdout(stream), \
                    contextlib.redirect_stderr(stream):
                warnings.showwarning = show
                try:
                    yield run_log.info
                except BaseException:
                    run_log.error("run failed:\n%s", traceback.format_exc().rstrip())
                    raise
        finally:
            for lg, handlers, propagate, level in saved:
                lg.handlers, lg.propagate = handlers, propagate
                lg.setLevel(level)
            handler.close()


def build_trainer(cfg: TrainerConfig, out_dir: str | Path, *, monitor: str = "val/loss",
                  mode: str = "min", callbacks: Iterable[Callback] = (),
                  use_distributed_sampler: bool = False, quiet: bool = False) -> pl.Trainer:
    """A Trainer writing into ``out_dir``: last + best checkpoints, CSV + TensorBoard logs.

    ``use_distributed_sampler=False`` because planessl's loaders shard by rank themselves
    (:class:`planessl.data.EpochSampler`); pass ``True`` for plain shuffled loaders.
    ``quiet=True`` (runs inside :func:`quiet_logging`, e.g. the cells of an experiment):
    no progress bar whatever ``cfg.progress_bar`` says; the model summary and Lightning's
    other messages are log records, which :func:`quiet_logging` sends to the run's log.
    """
    out_dir = Path(out_dir)
    devices = parse_devices(cfg.devices)
    strategy = cfg.strategy
    if strategy == "auto" and ((isinstance(devices, int) and devices > 1) or cfg.num_nodes > 1):
        strategy = "ddp"
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    checkpoint = ModelCheckpoint(dirpath=out_dir / CHECKPOINT_DIR, filename="best-{epoch}-{step}",
                                 monitor=monitor, mode=mode, save_top_k=1, save_last=False,
                                 auto_insert_metric_name=False)
    # Lightning (2.6) writes a monitored callback's last.ckpt only at validations where the
    # best checkpoint was also saved, so --resume would restart from the last improvement.
    # A second, unmonitored callback rewrites last.ckpt at every validation (and epoch end).
    last = ModelCheckpoint(dirpath=out_dir / CHECKPOINT_DIR, filename=Path(LAST_CHECKPOINT).stem,
                           monitor=None, save_top_k=1, save_last=False,
                           enable_version_counter=False)
    all_callbacks: list[Callback] = [checkpoint, last, *callbacks]
    progress_bar = cfg.progress_bar and not quiet
    if progress_bar:
        all_callbacks.append(TQDMProgressBar(refresh_rate=max(1, cfg.log_every_n_steps // 2)))
    loggers = [CSVLogger(save_dir=out_dir, name="", version=""),
               TensorBoardLogger(save_dir=out_dir, name="tensorboard", version="",
                                 default_hp_metric=False)]
    return pl.Trainer(
        accelerator=cfg.accelerator, devices=devices, num_nodes=cfg.num_nodes, strategy=strategy,
        precision=resolve_precision(cfg.precision, cfg.accelerator), max_epochs=cfg.max_epochs, max_steps=cfg.max_steps,
        max_time=cfg.max_time,
        deterministic="warn" if cfg.deterministic else False,
        log_every_n_steps=cfg.log_every_n_steps, check_val_every_n_epoch=cfg.val_every_n_epochs,
        callbacks=all_callbacks, logger=loggers, default_root_dir=out_dir,
        enable_progress_bar=progress_bar, use_distributed_sampler=use_distributed_sampler,
        num_sanity_val_steps=0)


def last_checkpoint(out_dir: str | Path) -> Path:
    """The run's ``last.ckpt``, checked to be a readable checkpoint.

    Raises:
        PlaneSSLError: missing, truncated or otherwise unreadable.
    """
    path = Path(out_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT
    if not path.is_file():
        raise PlaneSSLError(f"{path}: no checkpoint to resume from (run without --resume first)")
    try:
        with zipfile.ZipFile(path) as archive:  # torch.save's format; detects truncation
            bad = archive.testzip()
        if bad is not None:
            raise zipfile.BadZipFile(f"damaged member {bad}")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # any failure to read it means the file is unusable
        raise PlaneSSLError(f"{path}: corrupt checkpoint, cannot resume "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "loops" not in ckpt:
        raise PlaneSSLError(f"{path}: not a planessl training checkpoint (no state_dict/loops)")
    return path


def save_weights(state: dict[str, torch.Tensor], path: str | Path,
                 metadata: dict[str, str] | None = None) -> Path:
    """Write tensors as safetensors (no code execution on load), atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp),
              metadata=metadata)
    os.replace(tmp, path)
    return path


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file: safetensors, or a ``torch.save`` state dict (loaded with
    ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise PlaneSSLError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PlaneSSLError(f"{path}: cannot read weights ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:120]})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PlaneSSLError(f"{path}: not a state dict")
    return state


METRICS_FILE = "metrics.csv"


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    import csv
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def fit(trainer: pl.Trainer, module: pl.LightningModule, datamodule: pl.LightningDataModule | None,
        out_dir: str | Path, ckpt_path: str | Path | None = None, *,
        train_dataloaders=None, val_dataloaders=None) -> None:
    """``trainer.fit`` (on ``datamodule``, or on ``train_dataloaders`` / ``val_dataloaders``),
    resuming from ``ckpt_path`` when given, keeping the run's earlier ``metrics.csv`` rows
    (Lightning's CSV logger would delete them): rows logged before the checkpoint's step
    are kept, later ones (lost work after a crash) are replaced."""
    import csv

    out_dir = Path(out_dir)
    old = out_dir / METRICS_FILE
    kept = out_dir / f".{METRICS_FILE}.before-resume"
    if ckpt_path is not None and trainer.is_global_zero and old.is_file():
        os.replace(old, kept)
    trainer.fit(module, train_dataloaders=train_dataloaders, val_dataloaders=val_dataloaders,
                datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    if not (kept.is_file() and trainer.is_global_zero):
        return
    step = int(torch.load(ckpt_path, map_location="cpu", weights_only=False).get("global_step", 0))
    fields, rows = _read_csv(kept)
    rows = [r for r in rows if r.get("step", "") != "" and int(float(r["step"])) < step]
    if old.is_file():
        new_fields, new_rows = _read_csv(old)
        fields += [f for f in new_fields if f not in fields]
        rows += new_rows
    tmp = out_dir / f".{METRICS_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, old)
    kept.unlink()
