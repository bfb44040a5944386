"""Two-process DDP on gloo (CPU), launched the way torchrun launches it: both ranks end
with the same parameters although each saw different images."""

import os

import torch
import torch.multiprocessing as mp

from planessl.cache import Cache, write_cache
from planessl.config import PretrainConfig, load_config
from planessl.pretraining import run_pretraining

from ddp_launch import free_port, join_as_torchrun
from synthetic_studies import make_synthetic_study


def _rank(rank: int, cache_dir: str, out: str, port: int) -> None:
    join_as_torchrun(rank, port)
    seen = []

    import pytorch_lightning as pl

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(batch["image"].sum().item())

    cfg = load_config(PretrainConfig, overrides=[
        "model.preset=tiny", "data.batch_size=2", "trainer.progress_bar=false",
        "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=3",
        "trainer.max_epochs=-1", "data.val_fraction=0.25"])
    module = run_pretraining(cfg, Cache(cache_dir), out, callbacks=[Record()])
    torch.save({"params": {k: v.detach().clone() for k, v in module.state_dict().items()},
                "seen": seen}, os.path.join(out, f"rank{rank}.pt"))


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    cache = write_cache(tmp_path / "c", [make_synthetic_study(k) for k in range(8)])
    out = tmp_path / "run"
    mp.spawn(_rank, args=(str(cache.path), str(out), free_port()), nprocs=2, join=True)
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert len(r0["seen"]) == len(r1["seen"]) == 3
    assert r0["seen"] != r1["seen"]  # each rank trained on its own shard
    assert r0["params"].keys() == r1["params"].keys()
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    assert (out / "weights.safetensors").is_file() and (out / "config.yaml").is_file()
