"""Pretraining on several caches: the epoch mix, per-cache checks, a mixed run, the CLI."""

from collections import Counter

import numpy as np
import pickle
import pytest
import pytorch_lightning as pl
import yaml

from planessl.cache import write_cache
from planessl.cli import main
from planessl.config import PretrainConfig, load_config
from planessl.data import PretrainDataset, SampleSpec
from planessl.data.mixing import EpochMix, allocate
from planessl.data.module import PretrainDataModule, check_caches
from planessl.config import AugmentConfig, PretrainDataConfig
from planessl.engine import load_weights
from planessl.errors import PlaneSSLError
from planessl.phantom import make_study
from planessl.pretraining import run_pretraining

from synthetic_studies import make_synthetic_study

TINY = ["model.preset=tiny", "data.batch_size=4", "trainer.progress_bar=false",
        "trainer.log_every_n_steps=1", "trainer.threads=1", "data.val_fraction=0.25"]
SPEC = SampleSpec(image_size=32, spacing_mm=6.0, sigma_mm=8.0)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """A SAX-only archive (slice targets only) and a multi-view phantom (lines too)."""
    root = tmp_path_factory.mktemp("mc")
    sax = write_cache(root / "sax", [make_synthetic_study(k, views=("sax",)) for k in range(4)])
    phantom = write_cache(root / "phantom", [make_study(0, k) for k in range(2)])
    return sax, phantom


def test_allocation_is_exact_and_proportional_by_default():
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate(100, [0.8, 0.2]) == [80, 20]  # exact arithmetic, no 79/21 by rounding
    assert allocate(7, [0, 2]) == [0, 7]
    with pytest.raises(PlaneSSLError):
        allocate(5, [0, 0])
    # Default weights: every unit of every part exactly once per epoch.
    mix = EpochMix([4, 2], seed=0)
    for epoch in range(3):
        assert sorted(mix.locate(epoch, i) for i in range(len(mix))) == \
            [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]


def test_weights_are_obeyed_and_units_covered_evenly():
    mix = EpochMix([6, 2], weights=[1, 1], seed=3)
    assert len(mix) == 8 and mix.counts == [4, 4]
    seen = Counter()
    subsets = set()
    for epoch in range(300):
        items = [mix.locate(epoch, i) for i in range(len(mix))]
        parts = Counter(p for p, _ in items)
        assert parts == {0: 4, 1: 4}                      # the weights, in every epoch
        assert Counter(u for p, u in items if p == 1) == {0: 2, 1: 2}   # oversampled: evenly
        sub = tuple(sorted(u for p, u in items if p == 0))
        assert len(set(sub)) == 4                         # undersampled: without repeats
        subsets.add(sub)
        seen.update(u for p, u in items if p == 0)
    assert len(subsets) > 5                               # a new subset each epoch
    freq = np.array([seen[u] for u in range(6)]) / 300
    assert np.allclose(freq, 4 / 6, atol=0.1)             # every study about as often
    again = EpochMix([6, 2], weights=[1, 1], seed=3)
    assert [again.locate(7, i) for i in range(8)] == [mix.locate(7, i) for i in range(8)]


def test_union_checks_and_a_cache_without_targets(caches):
    sax, phantom = caches
    # The SAX-only cache gives no line: fine for multitask when the phantom gives them...
    ids = check_caches([sax, phantom], ["sax"], ["2ch", "4ch"], True)
    assert [len(i) for i in ids] == [4, 2]
    # ...but for the lines task alone it gives nothing: one line naming it.
    with pytest.raises(PlaneSSLError) as err:
        check_caches([sax, phantom], ["sax"], ["2ch", "4ch"], False)
    msg = str(err.value)
    assert msg.startswith(str(sax.path)) and "no study gives a target" in msg and "\n" not in msg
    with pytest.raises(PlaneSSLError, match="none of them"):
        check_caches([sax, sax], ["sax"], ["2ch"], False)


def test_mixed_samples_carry_their_masks_and_are_reproducible(caches):
    sax, phantom = caches
    ds = PretrainDataset([sax, phantom], [sax.ids, phantom.ids], SPEC, None, seed=1,
                         weights=[1, 1])
    assert len(ds) == 6 and ds.mix.counts == [3, 3]
    for i in range(len(ds)):
        part, _ = ds.mix.locate(0, i)
        s = ds[(0, i)]
        assert float(s["slice_mask"][0]) == 1.0           # both give slice locations
        assert (float(s["line_mask"].sum()) > 0) == (part == 1)   # only the phantom: lines
    clone = pickle.loads(pickle.dumps(ds))                # what a worker receives
    for key in [(0, 4), (2, 1)]:
        assert np.array_equal(clone[key]["image"].numpy(), ds[key]["image"].numpy())


def test_validation_is_split_per_cache(caches):
    sax, phantom = caches
    data = PretrainDataModule([sax, phantom], PretrainDataConfig(val_fraction=0.25),
                              AugmentConfig(), SPEC, seed=0)
    assert [len(v) for v in data.val_ids] == [1, 1] and [len(t) for t in data.train_ids] == [3, 1]
    assert len(data.val_set) == 2 * 2                      # val_images_per_study each


class Masks(pl.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_start(self, trainer, module, batch, i):
        self.rows += list(zip(batch["line_mask"].sum(1).tolist(), batch["slice_mask"][:, 0].tolist()))


def test_mixed_run_trains_both_targets_and_records_caches(caches, tmp_path):
    sax, phantom = caches
    cfg = load_config(PretrainConfig, overrides=TINY + ["trainer.max_steps=3",
                                                        "trainer.max_epochs=-1",
                                                        "data.cache_weights=[1,1]"])
    masks = Masks()
    run_pretraining(cfg, [sax.path, phantom.path], tmp_path / "run", callbacks=[masks])
    assert any(lines > 0 for lines, _ in masks.rows)               # phantom: line targets
    assert any(lines == 0 and sl == 1 for lines, sl in masks.rows)  # SAX-only: slices only
    saved = yaml.safe_load((tmp_path / "run/config.yaml").read_text())["data"]
    assert saved["caches"] == [str(sax.path.resolve()), str(phantom.path.resolve())]
    assert saved["cache_weights"] == [1.0, 1.0]
    w = load_weights(tmp_path / "run/weights.safetensors")
    assert any(k.startswith("heads.lines.") for k in w) and any(k.startswith("heads.slices.") for k in w)


def cli(*args):
    return main(["pretrain", *[str(a) for a in args]])


def test_cli_several_caches_resume_and_errors(caches, tmp_path, capsys):
    sax, phantom = caches
    out = tmp_path / "run"
    # overrides right after --data are overrides, not caches
    assert cli("--out", out, "--max-steps", 1, "--data", sax.path, phantom.path, *TINY) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert saved["cache_weights"] == [3.0, 1.0]           # default: the training studies
    # --resume without --data continues on the run's own caches
    assert cli("--out", out, "--resume", "--max-steps", 2, *TINY) == 0
    cases = [
        (("--data", sax.path, phantom.path, "--task", "lines", "--out", tmp_path / "r1"),
         f"{sax.path}: no study gives a target"),
        (("--data", sax.path, phantom.path, "--out", tmp_path / "r2", "data.cache_weights=[1]"),
         "1 value(s) for 2 cache(s)"),
        (("--out", tmp_path / "r3", "--data", sax.path, tmp_path / "nowhere"), "not a planessl cache"),
        (("--data", phantom.path, "--out", out, "--resume"), "was trained on"),
        (("--out", tmp_path / "r4"), "--data is required"),
    ]
    for args, words in cases:
        capsys.readouterr()
        assert cli(*args, *TINY) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("planessl: error:") and words in err, err
        assert len(err.splitlines()) == 1
