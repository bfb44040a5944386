"""`planessl pretrain --data KNEE_CACHE` follows the cache: input views and line channels are
the knee planes it holds, printed as `from the cache: ...`; what knee planes cannot serve is
refused with one line."""

from __future__ import annotations

import pytest
import yaml

from planessl.cli import main

TINY = ["--max-steps", "1", "model.preset=tiny", "data.image_size=32", "data.spacing_mm=5.0",
        "data.batch_size=2", "trainer.accelerator=cpu", "trainer.progress_bar=false",
        "trainer.threads=1", "data.val_fraction=0.25"]


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
    if task in ("lines", "multitask"):
        assert cfg["task"]["line_channels"] == ["sagittal", "coronal", "axial"]
        assert "from the cache: task.line_channels=[sagittal,coronal,axial]" in out
    else:
        assert "task.line_channels" not in out


def test_user_settings_win(knee_cache, tmp_path, capsys):
    run = tmp_path / "given"
    assert main(["pretrain", "--data", str(knee_cache), "--task", "lines", "--out", str(run)]
                + TINY + ["data.input_views=[sagittal]", "task.line_channels=[coronal]"]) == 0
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
