"""Experiment pretraining recipes: extra caches, weights, named arms, one pretraining per
method shared by the seeds (the training itself is stubbed: this is about the plumbing)."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from planessl.cache import write_cache
from planessl.config import config_to_dict, load_config
from planessl.errors import PlaneSSLError
from planessl import experiment as exp

from synthetic_studies import make_synthetic_study


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("arms")
    write_cache(root / "pool", [make_synthetic_study(k, views=("sax",)) for k in range(3)])
    write_cache(root / "phantom", [make_synthetic_study(10 + k) for k in range(2)])
    return root


def config(root: Path, **values) -> exp.ExperimentConfig:
    return load_config(exp.ExperimentConfig, None,
                       [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                        for k, v in {"data": "pool", **values}.items()])


def test_plans_of_methods_and_arms(caches):
    cfg = config(caches, pretrain=["optim.lr=0.1"], pretrain_data=["phantom"],
                 pretrain_weights=[1, 3],
                 arms={"mt-ph": {"task": "multitask", "data": ["phantom"], "weights": [1, 1],
                                 "overrides": ["task.alpha=2"]},
                       "lines-ph": {"task": "lines", "data": ["phantom"], "pool": False},
                       "mt-inherit": {"task": "multitask"}})
    assert exp.pretrain_plan("scratch", cfg, caches) is None
    plain = exp.pretrain_plan("slices", cfg, caches)
    assert plain.task == "slices" and plain.pool and plain.extra == (caches / "phantom",)
    assert plain.overrides == ("optim.lr=0.1", "data.cache_weights=[1.0,3.0]")
    arm = exp.pretrain_plan("mt-ph", cfg, caches)
    assert arm.overrides == ("optim.lr=0.1", "data.cache_weights=[1.0,1.0]", "task.alpha=2")
    only = exp.pretrain_plan("lines-ph", cfg, caches)
    assert not only.pool and only.task == "lines" and only.overrides == ("optim.lr=0.1",)
    inherit = exp.pretrain_plan("mt-inherit", cfg, caches)
    assert inherit.extra == plain.extra and "data.cache_weights=[1.0,3.0]" in inherit.overrides
    bad = [({"arms": {"x": {"task": "jigsaw"}}}, "x", "task must be one of"),
           ({"arms": {"x": {"pool": False, "data": []}}}, "x", "no data"),
           ({"arms": {"x": {"data": ["nowhere"]}}}, "x", "not a planessl cache"),
           ({}, "mystery", "unknown method 'mystery'")]
    for values, method, words in bad:
        with pytest.raises(PlaneSSLError, match=words):
            exp.pretrain_plan(method, config(caches, **values), caches)


def test_pretraining_shared_by_seeds_and_arms_in_the_loop(caches, tmp_path, monkeypatch):
    calls, cells = [], []

    def fake_pretrain(method, plan, seed, cache_path, ids, out, *rest):
        calls.append((method, plan.task, seed, out.name, tuple(ids)))
        return out

    def fake_cell(method, n, seed, init, *rest):
        cells.append((method, seed, Path(init).name))
        return {"method": method, "n": n, "seed": seed, "mean_dice": 0.5, "cell_seconds": 1.0}

    split = SimpleNamespace(pretrain=["s001", "s002"], to_dict=lambda: {"pretrain": ["s001", "s002"]})
    monkeypatch.setattr(exp, "pretrain_once", fake_pretrain)
    monkeypatch.setattr(exp, "run_cell", fake_cell)
    monkeypatch.setattr("planessl.finetune.make_split", lambda *a: split)
    cfg = config(caches, methods=["scratch", "multitask", "mt-ph"], labelled=[1], seeds=[4, 5],
                 pretrain_per_seed=False, arms={"mt-ph": {"data": ["phantom"]}})
    (caches / "exp.yaml").write_text(yaml.safe_dump(config_to_dict(cfg)))
    exp.run_experiment(caches / "exp.yaml", tmp_path / "out", echo=lambda s: None)
    # one pretraining per method, with the first seed, reused by both seeds' cells
    assert sorted(set(calls)) == [("mt-ph", "multitask", 4, "mt-ph", ("s001", "s002")),
                                  ("multitask", "multitask", 4, "multitask", ("s001", "s002"))]
    assert ("mt-ph", 5, "mt-ph") in cells and ("scratch", 5, "scratch") in cells
    # a new arm may be added when resuming; changing one that made results may not
    saved = config_to_dict(cfg)
    grown = dict(saved, methods=saved["methods"] + ["extra"],
                 arms={**saved["arms"], "extra": {**saved["arms"]["mt-ph"], "task": "lines"}})
    exp.check_resumable(tmp_path / "out", grown)
    changed = dict(saved, arms={"mt-ph": {**saved["arms"]["mt-ph"], "pool": False}})
    with pytest.raises(PlaneSSLError, match="different 'arms'"):
        exp.check_resumable(tmp_path / "out", changed)
    with pytest.raises(PlaneSSLError, match="different 'pretrain_per_seed'"):
        exp.check_resumable(tmp_path / "out", dict(saved, pretrain_per_seed=True))
    # a folder made before these keys existed still resumes
    old = {k: v for k, v in saved.items()
           if k not in ("arms", "pretrain_data", "pretrain_weights")}
    (tmp_path / "out/config.yaml").write_text(yaml.safe_dump(old))
    exp.check_resumable(tmp_path / "out", dict(saved, arms={}))
