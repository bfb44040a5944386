"""Semi-supervised segmentation fine-tuning (finetune.semi=fixmatch|bcp) on tiny phantom
caches: the default path, the unlabelled pool, training, exact resume, DDP, bad settings."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import numpy as np
import torch
import torch.multiprocessing as mp

from planessl.cache import Cache, write_cache
from planessl.cli import main
from planessl.errors import PlaneSSLError
from planessl.finetune import finetune
from planessl.phantom import make_study

from ddp_launch import free_port, join_as_torchrun

BASE = ["model.preset=tiny", "trainer.progress_bar=false", "trainer.threads=1",
        "trainer.accelerator=cpu", "data.batch_size=2", "finetune.steps=4",
        "finetune.val_every_n_steps=2", "split.val_size=1", "split.pool_size=3",
        "split.test_fraction=0.25"]
SEMI = ["finetune.unlabelled=pool", "semi.batch_size=2", "semi.supervised_steps=1",
        "semi.rampup_steps=2",
        "semi.threshold=0.3"]  # a low threshold: an untrained network's pixels count


def _run(cache, out, extra, init="scratch", **kw):
    return finetune(cache, 2, str(init), out, BASE + extra, seed=3, quiet=True, echo=lambda m: None, **kw)


def _weights(run: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(run / "weights.safetensors"))


def _last_state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def _metrics(run: Path) -> list[dict]:
    import csv
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def pretrain_run(phantom_cache, tmp_path_factory) -> Path:
    from planessl.config import PretrainConfig, load_config
    from planessl.pretraining import run_pretraining

    out = tmp_path_factory.mktemp("pre") / "run"
    cfg = load_config(PretrainConfig, None, BASE[:4] + ["task.name=slices", "trainer.max_steps=2",
                                                        "trainer.max_epochs=-1"])
    run_pretraining(cfg, phantom_cache, out)
    return out


def test_default_path_is_the_supervised_one(phantom_cache, tmp_path):
    a = tmp_path / "default"
    _run(phantom_cache, a, [])
    b = tmp_path / "none"
    said: list[str] = []
    finetune(phantom_cache, 2, "scratch", b, BASE + ["finetune.semi=none", "finetune.unlabelled=pool"],
             seed=3, quiet=True, echo=said.append)
    assert any("finetune.unlabelled is ignored" in m for m in said)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not (a / "unlabelled.json").exists() and not (b / "unlabelled.json").exists()
    ckpt = _last_state(a)
    assert "semi" not in ckpt and not any(k.startswith("teacher.") for k in ckpt["state_dict"])
    assert set(_metrics(a)[0]) >= {"train_loss"} and "train_unsup_loss" not in _metrics(a)[0]
    assert not any("unsup" in k for r in _metrics(a) for k in r)


@pytest.mark.parametrize("method,init", [("fixmatch", "scratch"), ("bcp", "pretrained")])
def test_method_trains_logs_and_keeps_test_out(method, init, phantom_cache, pretrain_run, tmp_path):
    out = tmp_path / method
    model = _run(phantom_cache, out, [f"finetune.semi={method}"] + SEMI,
                 init=pretrain_run if init == "pretrained" else "scratch")
    assert model["steps"] == 4 and (out / "weights.safetensors").is_file()
    rows = [r for r in _metrics(out) if r.get("train_unsup_loss")]
    assert rows, "no unlabelled loss logged"
    for r in rows:
        for key in ("train_loss", "train_sup_loss", "train_unsup_loss", "train_unsup_weight"):
            assert math.isfinite(float(r[key])), (key, r[key])
    assert float(rows[-1]["train_unsup_weight"]) > 0
    if method == "fixmatch":
        assert all(0 <= float(r["train_confident"]) <= 1 for r in rows)
    split = json.loads((out / "split.json").read_text())
    used = json.loads((out / "unlabelled.json").read_text())["studies"]
    ids = [i for v in used.values() for i in v]
    assert ids and not set(ids) & set(split["test"] + split["val"] + split["train"])
    assert set(ids) == set(Cache(phantom_cache).ids) - set(split["test"] + split["val"] + split["train"])
    ckpt = _last_state(out)  # last.ckpt: the state at the last validation
    assert ckpt["semi"]["method"] == method
    assert ckpt["semi"]["unlabelled_position"] == ckpt["global_step"] * 2 > 0
    if method == "bcp":
        state = ckpt["state_dict"]
        teacher = {k[len("teacher."):]: v for k, v in state.items() if k.startswith("teacher.")}
        student = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
        assert teacher.keys() == student.keys()
        assert any(not torch.equal(teacher[k], student[k]) for k in teacher)  # an EMA, not a copy
        assert json.loads((out / "transfer.json").read_text())["transferred"]


def test_unlabelled_sources_never_hold_test_studies_or_read_labels(phantom_cache, tmp_path, monkeypatch):
    from planessl.data.labelled import GridSpec
    from planessl.data.unlabelled import InMemoryUnlabelledDataset, unlabelled_sources

    cache = Cache(phantom_cache)
    # a second cache holding the same patients under the same ids (another ingestion)
    other = write_cache(tmp_path / "again", [make_study(0, i) for i in range(4)])
    test, val, train = cache.ids[:2], cache.ids[2:3], cache.ids[5:7]
    excluded = test + val + train
    sources = unlabelled_sources(cache, ["pool", str(other.path)], excluded, ["sax"])
    loaded: list[str] = []

    class Poison:
        def __getattr__(self, name):
            raise AssertionError("a label map of an unlabelled study was read")

        def __getitem__(self, key):
            raise AssertionError("a label map of an unlabelled study was read")

    original = Cache.load

    def spy(self, sid, mmap=True):
        loaded.append(sid)
        study = original(self, sid, mmap)
        for s in study.series:
            object.__setattr__(s, "labels", Poison())
        return study

    monkeypatch.setattr(Cache, "load", spy)
    data = InMemoryUnlabelledDataset(sources, GridSpec(32, 6.0), 1.5, "edes")
    assert loaded and not set(loaded) & set(excluded)
    assert [sid for _, ids in sources for sid in ids] == loaded
    assert loaded == [i for i in cache.ids if i not in excluded] + [other.ids[3]]
    assert data.images.shape[1:] == (1, 48, 48) and len(data) > 0
    with pytest.raises(PlaneSSLError, match="no unlabelled study"):
        unlabelled_sources(other, ["pool"], other.ids, ["sax"])


def _with_callbacks(*callbacks):
    """A build_trainer that adds ``callbacks`` to the run's trainer."""
    from planessl import engine

    real = engine.build_trainer

    def build(*args, callbacks=(), **kw):
        return real(*args, callbacks=[*callbacks, *extra], **kw)

    extra = list(callbacks)
    return build


def _stop_after(step: int):
    import pytorch_lightning as pl

    class Stop(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            if trainer.global_step >= step:
                trainer.should_stop = True

    return Stop()


def _save_final(path: Path):
    import pytorch_lightning as pl

    class Save(pl.Callback):
        batches = 0

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.batches += 1

        def on_train_end(self, trainer, module):
            torch.save({"step": trainer.global_step, "state": module.state_dict(),
                        "position": module._position, "batches": self.batches}, path)

    return Save()


@pytest.mark.parametrize("method", ["fixmatch", "bcp"])
def test_resume_repeats_an_uninterrupted_run(method, phantom_cache, tmp_path, monkeypatch):
    from planessl import engine

    extra = [f"finetune.semi={method}"] + SEMI
    with monkeypatch.context() as m:
        m.setattr(engine, "build_trainer", _with_callbacks(_save_final(tmp_path / "whole.pt")))
        _run(phantom_cache, tmp_path / "whole", extra)
    cut = tmp_path / "cut"
    with monkeypatch.context() as m:
        m.setattr(engine, "build_trainer", _with_callbacks(_stop_after(2)))
        _run(phantom_cache, cut, extra)
    assert _last_state(cut)["global_step"] == 2  # the first validation always writes it
    with monkeypatch.context() as m:
        m.setattr(engine, "build_trainer", _with_callbacks(_save_final(tmp_path / "resumed.pt")))
        _run(phantom_cache, cut, extra, resume=True)
    a = torch.load(tmp_path / "whole.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert a["step"] == b["step"] == 4 and a["position"] == b["position"] == 4 * 2
    assert (a["batches"], b["batches"]) == (4, 2)  # the resumed run trained steps 2 and 3 only
    assert a["state"].keys() == b["state"].keys()
    if method == "bcp":
        assert any(k.startswith("teacher.") for k in a["state"])
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k
    steps = [int(r["step"]) for r in _metrics(cut) if r.get("train_loss")]
    assert steps == sorted(steps)
    with pytest.raises(PlaneSSLError, match="semi.threshold"):
        _run(phantom_cache, cut, extra + ["semi.threshold=0.5"], resume=True)


def _ddp_rank(rank: int, cache: str, out: str, port: int) -> None:
    import pytorch_lightning as pl

    from planessl import engine

    join_as_torchrun(rank, port)
    seen, real = [], engine.build_trainer

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(float(batch["u_weak"].sum()))

        def on_train_end(self, trainer, module):
            torch.save({"params": {k: v.detach().clone() for k, v in module.state_dict().items()},
                        "seen": seen}, os.path.join(out, f"rank{rank}.pt"))

    engine.build_trainer = lambda *a, callbacks=(), **kw: real(*a, callbacks=[*callbacks, Record()], **kw)
    finetune(cache, 2, "scratch", out, BASE + ["trainer.devices=2", "finetune.steps=2",
                                               "finetune.semi=bcp"] + SEMI,
             seed=3, quiet=True, echo=lambda m: None)


def test_two_process_ddp(phantom_cache, tmp_path):
    out = tmp_path / "ddp"
    mp.spawn(_ddp_rank, args=(str(phantom_cache), str(out), free_port()), nprocs=2, join=True)
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert len(r0["seen"]) == len(r1["seen"]) == 2
    assert r0["seen"] != r1["seen"]  # each rank drew its own unlabelled images
    for k in r0["params"]:  # student and teacher identical on both ranks
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    assert any(k.startswith("teacher.") for k in r0["params"])
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["semi"][
        "unlabelled_position"] == 2 * 2 * 2  # steps x processes x batch


def _one_line_error(capsys, argv) -> str:
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_semi_settings_are_one_line_errors(phantom_cache, tmp_path, capsys):
    base = ["finetune", "--data", str(phantom_cache), "--init", "scratch", "--labelled", "2",
            "--out", str(tmp_path / "x")] + BASE
    cases = [
        (["finetune.semi=mixmatch"], "finetune.semi must be one of"),
        (["finetune.semi=fixmatch"], "needs unlabelled images"),
        (["finetune.semi=fixmatch", "finetune.unlabelled=pool", "semi.threshold=1.5"], "semi.threshold"),
        (["finetune.semi=bcp", "finetune.unlabelled=pool", "semi.crop=0"], "semi.crop"),
        (["finetune.semi=bcp", "finetune.unlabelled=pool", "semi.frames=some"], "semi.frames"),
        (["finetune.semi=bcp", f"finetune.unlabelled={tmp_path / 'nothing'}"], "nothing"),
        (["finetune.semi=bcp", "finetune.unlabelled=pool", "semi.ema_decay=x"], "semi.ema_decay"),
    ]
    for extra, expected in cases:
        assert expected in _one_line_error(capsys, base + extra), extra
        assert not (tmp_path / "x").exists(), extra  # refused before the run folder is made
    cls = ["finetune", "--task", "classification", "--data", str(phantom_cache), "--init",
           "scratch", "--labelled", "2", "--out", str(tmp_path / "c"), "finetune.semi=fixmatch",
           "finetune.unlabelled=pool"] + BASE
    assert "is for segmentation" in _one_line_error(capsys, cls)
    assert "no fine-tuning run to resume" in _one_line_error(capsys, base + ["--resume"])


def test_weight_schedule_boxes_and_stream():
    from planessl.data.semi_batches import SemiBatches, random_box, unlabelled_position
    from planessl.tasks.semi import rampup

    assert rampup(0, 100) == pytest.approx(math.exp(-5)) and rampup(100, 100) == 1.0
    assert rampup(50, 100) == pytest.approx(math.exp(-5 * 0.25)) and rampup(7, 0) == 1.0
    rng = np.random.default_rng(0)
    for _ in range(50):
        box = random_box(rng, 48, 2 / 3)  # BCP: a square of 2/3 of the side
        rows, cols = np.nonzero(box)
        assert box.sum() == 32 * 32 and np.ptp(rows) == np.ptp(cols) == 31
        cut = random_box(rng, 48)  # CutMix: 2-40 % of the image, one rectangle
        rows, cols = np.nonzero(cut)
        assert 0.01 <= cut.mean() <= 0.42 and cut.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
    # the stream: every image once per pass, passes differ, ranks interleave
    batches = SemiBatches.__new__(SemiBatches)
    batches.unlabelled, batches.seed, batches._perm = list(range(10)), 5, None
    first, second = batches.stream(0, 10), batches.stream(10, 10)
    assert sorted(first) == sorted(second) == list(range(10)) and first != second
    assert batches.stream(7, 6) == first[7:] + second[:3]
    assert unlabelled_position(3, 1, 2, 4) == (3 * 2 + 1) * 4
