"""The competing pretext methods: their inputs and targets, the contrastive losses against
hand-computed values, a few steps lower each method's loss, and the gather under DDP gives
the gradient of the global loss."""

import math
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from planessl.config import PretrainConfig, load_config
from planessl.data import SampleSpec, make_sample
from planessl.data.pretext_inputs import (anatomy_regions, genesis_corrupt, intensity_jitter,
                                          rotate_quarter)
from planessl.tasks.contrastive_loss import multi_positive_nt_xent, positive_mask
from planessl.tasks.registry import COMPETING_TASKS, build_module, task_needs

from ddp_launch import free_port, pretrain_rank
from synthetic_studies import make_synthetic_study


# ----------------------------------------------------------------------------- losses by hand
def test_nt_xent_matches_a_hand_computed_example():
    # z1 = z2 = (1, 0), z3 = (0, 1), temperature 1, the only positive pair (1, 2):
    # anchor 1: -log(e^1 / (e^1 + e^0)) = log(1 + e^-1); anchor 2 the same; anchor 3 has no
    # positive and does not count.
    z = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # normalised inside
    pos = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    loss = multi_positive_nt_xent(z, pos, temperature=1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


def _loop_reference(z: np.ndarray, pos: np.ndarray, t: float) -> float:
    """The multi-positive NT-Xent written out anchor by anchor (independent of the
    vectorised version)."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    terms = []
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        denom = sum(math.exp(float(z[i] @ z[a]) / t) for a in others)
        ps = [p for p in others if pos[i, p]]
        if ps:
            terms.append(-sum(math.log(math.exp(float(z[i] @ z[p]) / t) / denom)
                              for p in ps) / len(ps))
    return sum(terms) / len(terms)


def test_nt_xent_with_several_positives_matches_the_loop():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(6, 4))
    pos = np.zeros((6, 6), dtype=bool)
    for a, b in [(0, 1), (0, 2), (1, 2), (3, 4)]:
        pos[a, b] = pos[b, a] = True
    got = multi_positive_nt_xent(torch.tensor(z), torch.tensor(pos), temperature=0.5).item()
    assert got == pytest.approx(_loop_reference(z, pos, 0.5), rel=1e-5)


def test_positive_masks_of_simclr_gcl_and_pcl():
    ids = torch.tensor([0, 1, 2, 3, 0])  # embedding 4 is the second view of image 0
    loc = torch.tensor([0.10, 0.15, 0.90, 0.30, 0.10])
    known = torch.tensor([True, True, True, False, True])
    simclr = positive_mask("simclr", ids, loc, known)
    assert simclr[0, 4] and simclr[4, 0] and not simclr[0, 1]
    gcl = positive_mask("gcl", ids, loc, known, partitions=4)  # parts 0, 0, 3, (1), 0
    assert gcl[0, 1] and gcl[1, 4] and not gcl[0, 2]
    assert not gcl[3, 1] and not gcl[3, 0]  # unknown location: only its own views
    pcl = positive_mask("pcl", ids, loc, known, threshold=0.1)
    assert pcl[0, 1] and not pcl[1, 2]
    loc2 = torch.tensor([0.10, 0.21, 0.90, 0.30, 0.10])  # 0.11 apart: not positives
    assert not positive_mask("pcl", ids, loc2, known, threshold=0.1)[0, 1]


# ----------------------------------------------------------------------------- inputs and targets
def test_rotation_and_genesis_inputs():
    rng = np.random.default_rng(0)
    image = np.random.default_rng(1).normal(size=(16, 16)).astype(np.float32)
    rotated, k = rotate_quarter(image, rng)
    assert np.array_equal(rotated, np.rot90(image, k))
    ks = {rotate_quarter(image, np.random.default_rng(s))[1] for s in range(40)}
    assert ks == {0, 1, 2, 3}
    a = genesis_corrupt(image, np.random.default_rng(5))
    b = genesis_corrupt(image, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.dtype == np.float32
    assert not np.allclose(a, image)
    assert a.min() >= image.min() - 1e-5 and a.max() <= image.max() + 1e-5  # same range
    j = intensity_jitter(image, np.random.default_rng(2))
    assert j.shape == image.shape and abs(float(j.mean())) < 1e-4


def test_anatomy_regions_against_world_coordinates():
    study = make_synthetic_study(4)
    sax = study.series[0].planes[2]
    cut = [s.planes[0] for s in study.series if s.view in ("2ch", "4ch")]
    regions = anatomy_regions(sax, cut)
    # Independent: each pixel centre's world point against each plane's equation.
    i, j = np.meshgrid(np.arange(sax.shape[0]), np.arange(sax.shape[1]), indexing="ij")
    world = sax.pixel_to_world(i.ravel(), j.ravel()).reshape(-1, 3)
    expect = np.zeros(world.shape[0], dtype=np.int64)
    for c, plane in enumerate(cut):
        expect += (((world - plane.origin) @ plane.normal) > 0).astype(np.int64) << c
    assert np.array_equal(regions.ravel(), expect)
    assert len(np.unique(regions)) == 4  # the two long-axis planes cross inside the image
    assert (anatomy_regions(sax, [cut[0], None]) == -1).all()


@pytest.mark.parametrize("task", COMPETING_TASKS)
def test_samples_carry_the_targets_of_each_method(task):
    needs = task_needs(task)
    spec = SampleSpec(image_size=32, spacing_mm=2.0, slice_location=needs.slice_location,
                      line_channels=(), pretext_input=needs.pretext_input,
                      region_channels=("2ch", "4ch") if needs.regions else ())
    s = make_sample(make_synthetic_study(1), 0, 1, 0, spec, None, np.random.default_rng(0))
    want = {"anatomy": "regions", "simclr": "image2", "gcl": "image2", "pcl": "image2",
            "rotation": "rotation", "genesis": "target"}[task]
    assert want in s and s["image"].shape == (1, 32, 32)
    if needs.slice_location:
        assert s["slice_mask"].item() == 1.0


# ----------------------------------------------------------------------------- training
def _batch(task: str, n: int = 6) -> dict[str, torch.Tensor]:
    needs = task_needs(task)
    spec = SampleSpec(image_size=32, spacing_mm=2.0, slice_location=needs.slice_location,
                      line_channels=(), pretext_input=needs.pretext_input,
                      region_channels=("2ch", "4ch") if needs.regions else ())
    rng = np.random.default_rng(0)
    items = [make_sample(make_synthetic_study(k), 0, k % 5, 0, spec, None, rng) for k in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


@pytest.mark.parametrize("task", COMPETING_TASKS)
def test_a_few_steps_lower_the_loss(task):
    torch.manual_seed(0)
    cfg = load_config(PretrainConfig, overrides=["model.preset=tiny", f"task.name={task}",
                                                 "optim.lr=3e-3", "optim.schedule=constant"])
    module = build_module(cfg)
    batch = _batch(task)
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    losses = []
    for _ in range(8):
        loss = module.step_losses(batch, "train")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0], losses
    state = module.transferable_state_dict()
    assert any(k.startswith("encoder.") for k in state)
    assert all(k.split(".")[0] in ("encoder", "decoder", "heads") for k in state)


# ----------------------------------------------------------------------------- gather under DDP
def _gather_rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from planessl.tasks.contrastive_loss import gather_across_processes, world_size

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 3)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])  # pairs across the two processes
    local = layer(x[rank * 4:(rank + 1) * 4])
    z, r = gather_across_processes(local)
    assert r == rank and z.shape == (8, 3)
    loss = multi_positive_nt_xent(z, ids[:, None] == ids[None, :], 0.5) * world_size()
    loss.backward()
    grad = layer.weight.grad.clone()
    dist.all_reduce(grad)  # what DDP does: the mean over processes
    torch.save(grad / 2, os.path.join(out, f"grad{rank}.pt"))
    dist.destroy_process_group()


def test_gather_gives_the_gradient_of_the_global_loss(tmp_path):
    mp.spawn(_gather_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 3)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    multi_positive_nt_xent(layer(x), ids[:, None] == ids[None, :], 0.5).backward()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"grad{rank}.pt", weights_only=True)
        assert torch.allclose(got, layer.weight.grad, atol=1e-6)


# ----------------------------------------------------------------------------- each method under DDP
@pytest.mark.parametrize("task", COMPETING_TASKS)
def test_each_method_runs_under_two_process_ddp(tmp_path, task):
    from planessl.cache import write_cache

    cache = write_cache(tmp_path / "c", [make_synthetic_study(k) for k in range(8)])
    out = tmp_path / "run"
    mp.spawn(pretrain_rank, args=([f"task.name={task}"], str(cache.path), str(out), free_port()),
             nprocs=2, join=True)
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
        assert torch.isfinite(r0[k].float()).all(), k
    assert (out / "weights.safetensors").is_file()
