"""Pretraining runs end to end: exact resume after a crash, run folder, CLI errors."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from planessl.cache import write_cache
from planessl.cli import main
from planessl.config import PretrainConfig, load_config
from planessl.engine import load_weights
from planessl.pretraining import run_pretraining

from synthetic_studies import make_synthetic_study

TINY = ["model.preset=tiny", "data.batch_size=2", "trainer.progress_bar=false",
        "trainer.log_every_n_steps=1", "trainer.threads=1", "data.val_fraction=0.25"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    return write_cache(root / "c", [make_synthetic_study(k) for k in range(6)])


class Crash(pl.Callback):
    """Simulates a killed process at the start of an epoch (after a checkpoint)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_crashed_run_resumes_to_the_same_weights(cache, tmp_path):
    cfg = load_config(PretrainConfig, overrides=TINY + ["trainer.max_epochs=4",
                                                        "optim.step_epochs=1"])
    run_pretraining(cfg, cache, tmp_path / "full")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_pretraining(cfg, cache, tmp_path / "cut", callbacks=[Crash(2)])
    assert (tmp_path / "cut/checkpoints/last.ckpt").is_file()
    assert not (tmp_path / "cut/weights.safetensors").exists()
    run_pretraining(cfg, cache, tmp_path / "cut", resume=True)
    full = load_weights(tmp_path / "full/weights.safetensors")
    cut = load_weights(tmp_path / "cut/weights.safetensors")
    assert full.keys() == cut.keys()
    assert all(torch.equal(full[k], cut[k]) for k in full)
    # The run folder: config, versions, both logs, preview, checkpoints.
    run = tmp_path / "cut"
    for name in ("config.yaml", "run_info.json", "metrics.csv", "val_heatmaps.png"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    # metrics.csv keeps the epochs before the crash and has each epoch's validation once.
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    epochs = [r.split(",")[header.index("epoch")] for r in rows[1:]
              if r.split(",")[header.index("val/loss")]]
    assert epochs == ["0", "1", "2", "3"]


def test_resume_with_loader_workers_is_exact(cache, tmp_path):
    """With worker processes the resumed epoch must use its own sample keys (Lightning
    creates the loader iterator before set_epoch; workers prefetch at creation); here on
    two caches mixed 1:2, so the per-epoch mix resumes exactly too."""
    sax = write_cache(tmp_path / "sax", [make_synthetic_study(10 + k, views=("sax",))
                                         for k in range(3)])
    cfg = load_config(PretrainConfig, overrides=TINY + ["trainer.max_epochs=3",
                                                        "data.num_workers=1",
                                                        "data.cache_weights=[1,2]"])
    run_pretraining(cfg, [cache, sax], tmp_path / "full")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_pretraining(cfg, [cache, sax], tmp_path / "cut", callbacks=[Crash(1)])
    run_pretraining(cfg, [cache, sax], tmp_path / "cut", resume=True)
    full = load_weights(tmp_path / "full/weights.safetensors")
    cut = load_weights(tmp_path / "cut/weights.safetensors")
    assert all(torch.equal(full[k], cut[k]) for k in full)


def cli(*args):
    return main(["pretrain", *[str(a) for a in args]])


def test_cli_user_errors_are_one_line(cache, tmp_path, capsys):
    empty = write_cache(tmp_path / "empty", [])
    sax_only = write_cache(tmp_path / "sax", [make_synthetic_study(k, views=("sax",))
                                              for k in range(2)])
    cases = [
        ((("--data", empty.path, "--out", tmp_path / "r1")), "no studies"),
        ((("--data", sax_only.path, "--task", "lines", "--out", tmp_path / "r2")), "2ch, 4ch"),
        ((("--data", cache.path, "--out", tmp_path / "r3", "optim.lrr=1")), "optim.lrr"),
        ((("--data", tmp_path / "nowhere", "--out", tmp_path / "r4")), "not a planessl cache"),
        ((("--data", cache.path, "--out", tmp_path / "r5", "--resume")), "no checkpoint"),
    ]
    bad = tmp_path / "r6/checkpoints"
    bad.mkdir(parents=True)
    (bad / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    cases.append(((("--data", cache.path, "--out", tmp_path / "r6", "--resume")), "corrupt checkpoint"))
    for args, words in cases:
        capsys.readouterr()
        assert cli(*args, *TINY) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("planessl: error:") and words in err, err
        assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_trains_slices_and_refuses_to_overwrite(cache, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli("--data", cache.path, "--task", "slices", "--out", out, "--max-steps", 3, *TINY) == 0
    w = load_weights(out / "weights.safetensors")
    assert any(k.startswith("heads.slices.") for k in w)
    assert not any(k.startswith("heads.lines.") for k in w)
    assert "max_steps: 3" in (out / "config.yaml").read_text()
    assert cli("--data", cache.path, "--task", "slices", "--out", out, *TINY) == 2
    assert "--resume" in capsys.readouterr().err


def test_cli_generates_phantom_data_and_trains_lines(tmp_path):
    out = tmp_path / "run"
    assert cli("--data", "phantom:2", "--task", "lines", "--out", out, "--max-steps", 1,
               *TINY) == 0
    assert len(list((out / "cache/studies").iterdir())) == 2
    w = load_weights(out / "weights.safetensors")
    assert w["heads.lines.conv.weight"].shape[0] == 2  # 2CH and 4CH channels
