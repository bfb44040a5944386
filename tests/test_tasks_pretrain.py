"""Pretext tasks: a step lowers the loss, masks ignore missing views, weights load safely,
lines are recovered from heatmaps."""

import numpy as np
import pytest
import torch

from planessl.config import PretrainConfig, load_config
from planessl.data import SampleSpec, make_sample
from planessl.engine import load_weights, save_weights
from planessl.evaluation.lines import batch_line_errors, fit_line, line_errors
from planessl.geometry import Plane, intersection_line
from planessl.targets import line_heatmap
from planessl.tasks.losses import masked_mse
from planessl.tasks.multitask import PretrainModule

from synthetic_studies import make_synthetic_study


def fixed_batch(n=4):
    spec = SampleSpec(image_size=32, spacing_mm=2.0, sigma_mm=6.0)
    rng = np.random.default_rng(0)
    items = [make_sample(make_synthetic_study(k), 0, k % 5, 0, spec, None, rng) for k in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


@pytest.mark.parametrize("task", ["lines", "slices", "multitask"])
def test_one_step_lowers_the_loss(task):
    torch.manual_seed(0)
    cfg = load_config(PretrainConfig, overrides=["model.preset=tiny", f"task.name={task}",
                                                 "optim.lr=3e-3"])
    module = PretrainModule(cfg)
    assert set(module.heads) == {"lines": {"lines"}, "slices": {"slices"},
                                 "multitask": {"lines", "slices"}}[task]
    batch = fixed_batch()
    opt = module.configure_optimizers()
    before = module.losses(module(batch["image"]), batch)["loss"]
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = module.losses(module(batch["image"]), batch)["loss"]
    assert float(after) < float(before.detach())


def test_masked_loss_ignores_missing_views():
    torch.manual_seed(0)
    pred = torch.randn(3, 2, 8, 8, requires_grad=True)
    target = torch.rand(3, 2, 8, 8)
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    loss = masked_mse(pred, target, mask)
    garbage = target.clone()
    garbage[0, 1] = 1e3
    garbage[2] = -1e3
    assert torch.equal(loss, masked_mse(pred, garbage, mask))
    loss.backward()
    assert pred.grad[0, 1].abs().sum() == 0 and pred.grad[2].abs().sum() == 0
    assert pred.grad[1].abs().sum() > 0
    manual = ((pred[0, 0] - target[0, 0]) ** 2).sum() + ((pred[1] - target[1]) ** 2).sum()
    assert float(loss) == pytest.approx(float(manual) / (3 * 64), rel=1e-5)
    nothing = masked_mse(pred, target, torch.zeros(3, 2))
    assert float(nothing) == 0.0 and nothing.requires_grad


def test_weights_roundtrip_safetensors_and_weights_only(tmp_path):
    cfg = load_config(PretrainConfig, overrides=["model.preset=tiny"])
    state = PretrainModule(cfg).transferable_state_dict()
    prefixes = {k.split(".")[0] for k in state}
    assert prefixes == {"encoder", "decoder", "heads"}
    assert any(k.startswith("heads.lines.") for k in state)
    save_weights(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        back = load_weights(tmp_path / name)
        assert back.keys() == state.keys()
        assert all(torch.equal(back[k], state[k]) for k in state)
    assert torch.load(tmp_path / "w.pt", weights_only=True).keys() == state.keys()


def test_line_extraction_recovers_a_known_line():
    rng = np.random.default_rng(2)
    checked = 0
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        a = Plane([0, 0, 0], [1, 0, 0], [0, 1, 0], (1.5, 1.5), (64, 64))
        b = Plane(rng.normal(size=3) * 10 + a.centre_world(), q[:, 0], q[:, 1], (1, 1), (8, 8))
        true = intersection_line(a, b)
        heat = line_heatmap(a, b, sigma_mm=5.0)
        if heat is None or abs(true.a * 31.5 + true.b * 31.5 + true.c) > 20:
            continue  # a line clipped by a corner is too short to fit its direction
        checked += 1
        noisy = heat + rng.normal(scale=0.05, size=heat.shape)
        fit = fit_line(noisy, (1.5, 1.5))
        angle, dist = line_errors(fit, (true.a, true.b, true.c), (64, 64), (1.5, 1.5))
        assert angle < 1.0 and dist < 0.5
    assert checked >= 10
    # A rotated line is reported as such: 30 degrees and the offset in mm.
    angle, dist = line_errors((np.cos(np.pi / 6), np.sin(np.pi / 6), -10.0), (1.0, 0.0, -10.0),
                              (21, 21), (2.0, 2.0))
    assert angle == pytest.approx(30.0, abs=0.01)
    # Empty predictions count as failures, not as errors of zero.
    out = batch_line_errors(np.zeros((1, 1, 8, 8)), np.array([[[1.0, 0.0, -3.0]]]),
                            np.ones((1, 1)), np.array([[1.0, 1.0]]))
    assert out["failed"] == [1.0] and out["angle_deg"] == []
