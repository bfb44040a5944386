"""Knee caches answer what the user does not set, printed as `from the cache: ...`:
`planessl pretrain --data KNEE_CACHE` takes input views and line channels from the knee planes
it holds (what knee planes cannot serve is refused with one line); pretraining and
classification from scratch narrow the input grid to the exams' field of view (the cardiac
default, 128 px of 2 mm = 256 mm, is mostly padding around a ~150 mm knee field of view)."""

from __future__ import annotations

import math

import pytest
import yaml

from planessl.cache import Cache
from planessl.cli import main
from planessl.field_of_view import field_of_view_mm, image_size_for
from planessl.finetune import FinetuneConfig
from planessl.finetune_defaults import classification_defaults

# small network, default grid (128 px of 2 mm, narrowed on knee caches: two poolings, so a
# multiple of 4 pixels)
TINY = ["--max-steps", "1", "model.features=[4,8,16]", "data.batch_size=2",
        "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1",
        "data.val_fraction=0.25"]
KNEE = ["sagittal", "coronal", "axial"]


@pytest.fixture(scope="module")
def knee_cache(tmp_path_factory):
    from planessl.cache import write_cache
    from planessl.phantom.knee import make_knee_study

    root = tmp_path_factory.mktemp("knee")
    write_cache(root / "cache", [make_knee_study(0, i) for i in range(4)])
    return root / "cache"


@pytest.fixture(scope="module")
def sagittal_only(knee_cache, tmp_path_factory):
    """The same exams with their sagittal series only."""
    from planessl.cache import Cache, write_cache

    cache = Cache(knee_cache)
    studies = []
    for sid in cache.ids:
        study = cache.load(sid, mmap=False)
        study.series = [s for s in study.series if s.view == "sagittal"]
        studies.append(study)
    out = tmp_path_factory.mktemp("sag") / "cache"
    write_cache(out, studies)
    return out


def _config(run) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


@pytest.mark.parametrize("task", ["slices", "lines", "multitask", "simclr"])
def test_knee_pretraining_needs_no_override(knee_cache, tmp_path, capsys, task):
    run = tmp_path / task
    assert main(["pretrain", "--data", str(knee_cache), "--task", task, "--out", str(run)]
                + TINY) == 0
    out = capsys.readouterr().out
    cfg = _config(run)
    assert cfg["data"]["input_views"] == ["sagittal", "coronal", "axial"]
    assert "from the cache: data.input_views=[sagittal,coronal,axial]" in out
    fov = field_of_view_mm(Cache(knee_cache), Cache(knee_cache).ids, KNEE)
    size = 4 * math.ceil(fov / 2.0 / 4)
    assert cfg["data"]["image_size"] == size < 128
    assert f"from the cache: data.image_size={size} (the knee exams' field of view" in out
    if task in ("lines", "multitask"):
        assert cfg["task"]["line_channels"] == ["sagittal", "coronal", "axial"]
        assert "from the cache: task.line_channels=[sagittal,coronal,axial]" in out
    else:
        assert "task.line_channels" not in out


def test_user_settings_win(knee_cache, tmp_path, capsys):
    run = tmp_path / "given"
    assert main(["pretrain", "--data", str(knee_cache), "--task", "lines", "--out", str(run)]
                + TINY + ["data.input_views=[sagittal]", "task.line_channels=[coronal]",
                          "data.image_size=64"]) == 0
    assert "from the cache" not in capsys.readouterr().out
    cfg = _config(run)
    assert cfg["data"]["input_views"] == ["sagittal"]
    assert cfg["task"]["line_channels"] == ["coronal"]


def test_one_plane_refuses_the_line_tasks_and_runs_slices(sagittal_only, tmp_path, capsys):
    assert main(["pretrain", "--data", str(sagittal_only), "--task", "lines", "--out",
                 str(tmp_path / "l")] + TINY) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs lines between two knee planes" in err[0] \
        and "--task slices" in err[0]
    assert main(["pretrain", "--data", str(sagittal_only), "--task", "slices", "--out",
                 str(tmp_path / "s")] + TINY) == 0
    assert _config(tmp_path / "s")["data"]["input_views"] == ["sagittal"]


def test_anatomy_is_refused_on_knee(knee_cache, tmp_path, capsys):
    assert main(["pretrain", "--data", str(knee_cache), "--task", "anatomy", "--out",
                 str(tmp_path / "a")] + TINY) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "knee exams: the anatomy task" in err[0]


def test_cardiac_cache_keeps_the_cardiac_defaults(phantom_cache, tmp_path, capsys):
    run = tmp_path / "cardiac"
    assert main(["pretrain", "--data", str(phantom_cache), "--task", "slices", "--out",
                 str(run)] + TINY) == 0
    assert "from the cache" not in capsys.readouterr().out
    assert _config(run)["data"]["input_views"] == ["sax"]
    assert _config(run)["data"]["image_size"] is None  # the preset's 128 px


def _widest(cache: Cache, sid: str) -> float:
    """Independent of field_of_view_mm: the largest extent (mm) of the study's planes, from
    the world positions of their first and last pixels (plus one pixel)."""
    import numpy as np

    out = 0.0
    for s in cache.load(sid, mmap=False).series:
        p = s.planes[0]
        rows, cols = p.shape
        down = np.linalg.norm(p.pixel_to_world(rows - 1, 0) - p.pixel_to_world(0, 0)) + p.spacing[0]
        across = np.linalg.norm(p.pixel_to_world(0, cols - 1) - p.pixel_to_world(0, 0)) + p.spacing[1]
        out = max(out, down, across)
    return out


def test_field_of_view_and_grid_size(knee_cache):
    cache = Cache(knee_cache)
    fov = field_of_view_mm(cache, cache.ids, KNEE)
    widest = sorted(_widest(cache, sid) for sid in cache.ids)
    assert fov == pytest.approx((widest[1] + widest[2]) / 2, abs=1e-3)  # median of 4
    assert 120 < fov < 200  # a knee, not a chest
    assert image_size_for(155.0, 2.0, 4, 128) == 80
    assert image_size_for(300.0, 2.0, 4, 128) == 128  # never widened
    assert image_size_for(3.0, 2.0, 4, 128) == 16
    assert field_of_view_mm(cache, cache.ids, ["sax"]) is None


def test_classification_from_scratch_narrows_the_grid(knee_cache):
    cache = Cache(knee_cache)
    cfg = FinetuneConfig()
    cfg.finetune.task = "classification"
    notes = classification_defaults(cfg, cache, set())
    fov = field_of_view_mm(cache, cache.ids, cfg.data.input_views)
    assert cfg.data.image_size == 16 * math.ceil(fov / 2.0 / 16) < 128
    assert any(n.startswith(f"data.image_size={cfg.data.image_size} (the knee exams' field "
                            f"of view") for n in notes), notes
    # the user's grid or preset, or a pretrained start (which keeps its run's grid): unchanged
    for given, scratch in (({"data.image_size"}, True), ({"model.preset"}, True),
                           (set(), False)):
        cfg = FinetuneConfig()
        cfg.finetune.task = "classification"
        notes = classification_defaults(cfg, cache, given, scratch=scratch)
        assert cfg.data.image_size is None and not any("image_size" in n for n in notes)
