"""The restoration term of the plane-geometry tasks (``task.restore_weight``): slice location
(or lines) plus Models Genesis restoration, so that the slice task pretrains the decoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from planessl.config import PretrainConfig, load_config
from planessl.data import SampleSpec, make_sample
from planessl.errors import PlaneSSLError
from planessl.pretraining import sample_spec
from planessl.tasks.registry import build_module

from ddp_launch import free_port, pretrain_rank
from synthetic_studies import make_synthetic_study

OVERRIDES = ["model.preset=tiny", "task.name=slices", "task.restore_weight=1.0",
             "optim.lr=3e-3", "optim.schedule=constant"]


def _batch(n: int = 6) -> dict[str, torch.Tensor]:
    spec = SampleSpec(image_size=32, spacing_mm=2.0, slice_location=True, line_channels=(),
                      pretext_input="genesis")
    rng = np.random.default_rng(0)
    items = [make_sample(make_synthetic_study(k), 0, k % 5, 0, spec, None, rng) for k in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_the_samples_hold_a_corrupted_input_and_the_clean_target():
    cfg = load_config(PretrainConfig, overrides=OVERRIDES)
    spec = sample_spec(cfg)
    assert spec.pretext_input == "genesis" and spec.slice_location
    plain = sample_spec(load_config(PretrainConfig, overrides=["task.name=slices"]))
    assert plain.pretext_input == "image"


def test_slices_with_restoration_train_the_decoder_and_lower_both_losses():
    torch.manual_seed(0)
    module = build_module(load_config(PretrainConfig, overrides=OVERRIDES))
    assert all(p.requires_grad for p in module.backbone.decoder.parameters())
    batch = _batch()
    # the slice head sees the clean image, not the corrupted input
    out = module.outputs(batch)
    assert torch.allclose(out["slices"], module(batch["target"])["slices"])
    assert not torch.allclose(out["slices"], module(batch["image"])["slices"])
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    before = [p.detach().clone() for p in module.backbone.decoder.parameters()]
    history = []
    for _ in range(10):
        parts = module.step_losses(batch, "train")
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        history.append({k: v.item() for k, v in parts.items()})
    assert all(math.isfinite(h["loss"]) for h in history)
    assert history[-1]["restore_loss"] < history[0]["restore_loss"]
    assert history[-1]["slice_loss"] < history[0]["slice_loss"]
    assert math.isclose(history[0]["loss"], history[0]["restore_loss"] + history[0]["slice_loss"],
                        rel_tol=1e-5)
    moved = [not torch.equal(a, b) for a, b in zip(before, module.backbone.decoder.parameters())]
    assert all(moved)
    state = module.transferable_state_dict()
    assert any(k.startswith("decoder.") for k in state)
    assert "restore_mse" in module.logged_metric_names()


def test_the_slice_task_alone_still_freezes_the_decoder():
    module = build_module(load_config(PretrainConfig, overrides=["model.preset=tiny",
                                                                 "task.name=slices"]))
    assert not any(p.requires_grad for p in module.backbone.decoder.parameters())


@pytest.mark.parametrize("bad, message", [
    (["task.name=genesis", "task.restore_weight=1"], "plane-geometry"),
    (["task.name=slices", "task.restore_weight=-1"], ">= 0"),
])
def test_misuse_is_refused(bad, message):
    with pytest.raises(PlaneSSLError, match=message):
        sample_spec(load_config(PretrainConfig, overrides=bad))


def test_multitask_with_restoration_runs_under_two_process_ddp(tmp_path):
    from planessl.cache import write_cache

    cache = write_cache(tmp_path / "c", [make_synthetic_study(k) for k in range(8)])
    out = tmp_path / "run"
    overrides = ["task.name=multitask", "task.restore_weight=0.5"]
    mp.spawn(pretrain_rank, args=(overrides, str(cache.path), str(out), free_port()), nprocs=2,
             join=True)
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert any(k.startswith("heads.restore") for k in r0)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
        assert torch.isfinite(r0[k].float()).all(), k
    metrics = (out / "metrics.csv").read_text().splitlines()[0]
    assert "val/restore_mse" in metrics
