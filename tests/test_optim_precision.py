"""Learning-rate schedules and the automatic precision choice."""

import pytest
import torch

from planessl import engine
from planessl.errors import PlaneSSLError
from planessl.tasks.optim import build_optimiser


def _lrs(schedule, steps=100, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    out = build_optimiser([{"params": [p], "lr": 1e-3}], 1e-3, schedule=schedule,
                          total_steps=steps, **kw)
    opt, sched = (out["optimizer"], out["lr_scheduler"]["scheduler"]) if isinstance(out, dict) else (out, None)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    return lrs


def test_cosine_warms_up_then_decays_to_zero():
    lrs = _lrs("cosine", warmup_steps=10)
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(5e-4)
    assert max(lrs) == pytest.approx(1e-3, rel=1e-3) and lrs.index(max(lrs)) == 10
    assert lrs[-1] < 1e-6 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_cosine_keeps_group_ratios():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    out = build_optimiser([{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 1e-4}], 1e-3,
                          schedule="cosine", warmup_steps=2, total_steps=20)
    opt, sched = out["optimizer"], out["lr_scheduler"]["scheduler"]
    for _ in range(7):
        opt.step()
        sched.step()
    g = opt.param_groups
    assert g[1]["lr"] == pytest.approx(0.1 * g[0]["lr"])


def test_constant_and_unknown_schedule():
    assert set(_lrs("constant", steps=5)) == {1e-3}
    with pytest.raises(PlaneSSLError, match="optim.schedule"):
        _lrs("linear")


def test_precision_auto(monkeypatch):
    assert engine.resolve_precision("32-true") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    assert engine.resolve_precision("auto", "auto") == "bf16-mixed"
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: False)
    assert engine.resolve_precision("auto", "cpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert engine.resolve_precision("auto", "gpu") == "16-mixed"
    assert engine.resolve_precision("auto", "cpu") == "32-true"
