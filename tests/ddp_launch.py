"""Two-process DDP on gloo (CPU) in tests, launched the way torchrun launches it."""

from __future__ import annotations

import os
import socket

import torch


def free_port() -> int:
    """A free TCP port on localhost for the process group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_as_torchrun(rank: int, port: int, world_size: int = 2) -> None:
    """Set the variables torchrun sets (Lightning detects them and joins the process group),
    and one torch thread per process."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world_size),
                      RANK=str(rank), LOCAL_RANK=str(rank), GROUP_RANK="0", NODE_RANK="0",
                      LOCAL_WORLD_SIZE=str(world_size), TORCHELASTIC_RUN_ID="test")
    torch.set_num_threads(1)


def pretrain_rank(rank: int, overrides: list[str], cache_dir: str, out: str, port: int) -> None:
    """One rank of a 2-step, 2-process pretraining (``overrides`` on the tiny preset); saves
    the rank's final state dict as ``out/rank<rank>.pt``."""
    from planessl.cache import Cache
    from planessl.config import PretrainConfig, load_config
    from planessl.pretraining import run_pretraining

    join_as_torchrun(rank, port)
    cfg = load_config(PretrainConfig, overrides=[
        "model.preset=tiny", "data.batch_size=3", "trainer.progress_bar=false",
        "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=2",
        "trainer.max_epochs=-1", "data.val_fraction=0.25", *overrides])
    module = run_pretraining(cfg, Cache(cache_dir), out)
    torch.save({k: v.detach().clone() for k, v in module.state_dict().items()},
               os.path.join(out, f"rank{rank}.pt"))
