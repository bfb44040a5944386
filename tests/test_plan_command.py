"""``planessl plan``: view planning from input images, with the oracle's lines, a perfect
stand-in model, a tiny trained model and the UK Biobank demo subject."""

import json

import numpy as np
import pytest

from planessl.cache import write_cache
from planessl.cli import main
from planessl.data.transforms import input_plane
from planessl.phantom import make_study
from planessl.planning.plan import choose_inputs, format_result, open_study, plan
from planessl.targets import line_heatmap


@pytest.fixture(scope="module")
def study_cache(tmp_path_factory):
    """One phantom study (SAX stack + 2CH, 3CH, 4CH) in a cache."""
    root = tmp_path_factory.mktemp("plan")
    return write_cache(root / "cache", [make_study(3, 0)]).path


def run_json(capsys, argv) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_oracle_recovers_the_acquired_long_axis_planes_from_sax(study_cache, capsys, tmp_path):
    png = tmp_path / "plan.png"
    out = run_json(capsys, ["plan", str(study_cache), "--oracle", "--inputs", "sax", "--json",
                            "--png", str(png)])
    assert set(out) >= {"study", "source", "lines_from", "inputs", "inputs_reason", "targets",
                        "png"}
    assert [d["series"] for d in out["inputs"]] == ["sax"]
    assert set(out["targets"]) == {"2ch", "3ch", "4ch"}
    for view, t in out["targets"].items():
        assert t["ok"], t["reason"]
        for key in ("ImagePositionPatient", "ImageOrientationPatient", "normal", "centre",
                    "residual_rms_mm", "spread_mm", "n_lines", "lines", "PixelSpacing"):
            assert key in t, key
        assert len(t["ImagePositionPatient"]) == 3 and len(t["ImageOrientationPatient"]) == 6
        assert t["acquired"]["series"] == view
        assert t["acquired"]["angle_deg"] < 0.5 and t["acquired"]["distance_mm"] < 0.5
        assert t["n_lines"] >= 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*"))  # written atomically: no temporary left


def test_oracle_on_a_dicom_folder(tmp_path, capsys):
    from planessl.phantom.writers import write_dicom

    write_dicom(make_study(3, 1), tmp_path / "exam")
    out = run_json(capsys, ["plan", str(tmp_path / "exam"), "--oracle", "--inputs", "sax",
                            "--targets", "2ch,4ch", "--json"])
    assert out["source"].startswith("dicom folder")
    for t in out["targets"].values():
        assert t["ok"] and t["acquired"]["angle_deg"] < 0.5 and t["acquired"]["distance_mm"] < 0.5


def test_oracle_text_report(study_cache, capsys):
    capsys.readouterr()
    assert main(["plan", str(study_cache), "--oracle", "--inputs", "sax",
                 "--targets", "2ch,4ch"]) == 0
    text = capsys.readouterr().out
    assert "inputs (--inputs sax): sax (view sax" in text
    assert text.count("ImagePositionPatient") == 2 and "3ch" not in text
    assert "vs acquired 2ch (series 2ch): angle 0.000 deg, distance 0.000 mm" in text
    assert "vs acquired 4ch (series 4ch): angle 0.000 deg, distance 0.000 mm" in text


def test_long_axis_inputs_plan_sax_and_unfit_targets_are_reported(study_cache, capsys):
    out = run_json(capsys, ["plan", str(study_cache), "--oracle", "--inputs", "2ch,4ch,3ch",
                            "--json"])
    sax = out["targets"]["sax"]
    assert sax["ok"] and sax["acquired"]["angle_deg"] < 0.5 and sax["acquired"]["distance_mm"] < 0.5
    # One long-axis input: a single line cannot give a plane; the reason says so.
    out = run_json(capsys, ["plan", str(study_cache), "--oracle", "--inputs", "2ch",
                            "--targets", "sax,4ch", "--json"])
    for t in out["targets"].values():
        assert not t["ok"] and "at least 2 lines, got 1" in t["reason"]
        assert t["ImagePositionPatient"] is None and t["acquired"]["angle_deg"] is None


def test_localizer_series_are_chosen_by_view_name(study_cache):
    study, _ = open_study(study_cache)
    with pytest.raises(Exception, match="no localizer series"):
        choose_inputs(study)
    for s in study.series:
        if s.view in ("2ch", "4ch"):
            s.view = "loc_" + s.view  # stand-ins for the phantom's localizers
    series, how = choose_inputs(study)
    assert [s.name for s in series] == ["2ch", "4ch"] and "loc_" in how
    result = plan(study, "test", oracle=True)
    assert [t.view for t in result.targets] == ["3ch", "sax"]
    three, sax = result.targets
    assert sax.fit.ok and sax.angle_deg < 0.5 and sax.distance_mm < 0.5
    # 2CH, 3CH and 4CH all contain the long axis: on 2CH and 4CH inputs the 3CH lines both
    # run along it, so they do not determine the 3CH plane, and that is what is reported.
    assert not three.fit.ok and "nearly parallel in space" in three.fit.reason
    assert three.angle_deg is None
    assert "localizer series" in format_result(result)


def test_user_errors(study_cache, tmp_path, capsys):
    capsys.readouterr()
    assert main(["plan", str(study_cache), "--oracle"]) == 2  # no localizers, no --inputs
    assert "--inputs" in capsys.readouterr().err
    assert main(["plan", str(study_cache), "--oracle", "--model", str(tmp_path),
                 "--inputs", "sax"]) == 2
    assert main(["plan", str(study_cache), "--oracle", "--inputs", "lax"]) == 2
    assert "no such view" in capsys.readouterr().err
    assert main(["plan", str(tmp_path), "--oracle", "--study", "x"]) == 2
    assert main(["plan", str(study_cache), "--model", str(tmp_path), "--inputs", "sax"]) == 2
    assert "config.yaml" in capsys.readouterr().err


class PerfectModel:
    """Stands in for a line model: the true heatmaps on the training grid."""

    channels = ["2ch", "4ch"]
    run = "perfect"

    def __init__(self, study):
        self.targets = {v: study.views(v)[0].planes[0] for v in self.channels}

    def heatmaps(self, images, tta=((0.0, False),)):
        """Exact maps: test-time augmentation (``tta``) would change nothing, so is ignored."""
        out = []
        for _, plane in images:
            grid = input_plane(plane, 2.0, 128)
            maps = [line_heatmap(grid, self.targets[v], sigma_mm=7.56) for v in self.channels]
            out.append((np.stack(maps), grid))
        return out


def test_model_lines_are_mapped_back_from_the_network_grid(study_cache):
    """Lines fitted to (true) heatmaps on the network's grid, mapped to the input images and
    lifted, give the target planes back to within the heatmap fit's precision."""
    study, source = open_study(study_cache)
    result = plan(study, source, inputs=["sax"], model=PerfectModel(study))
    assert [t.view for t in result.targets] == ["2ch", "4ch"]
    for t in result.targets:
        assert t.fit.ok, t.fit.reason
        assert t.angle_deg < 0.5 and t.distance_mm < 0.5, (t.angle_deg, t.distance_mm)
        assert all(r.peak is not None for r in t.lines)


def test_tiny_trained_model_runs_end_to_end(tmp_path, capsys):
    from planessl.config import PretrainConfig, load_config
    from planessl.pretraining import run_pretraining

    cache = write_cache(tmp_path / "cache", [make_study(5, k) for k in range(3)])
    cfg = load_config(PretrainConfig, overrides=[
        "task.name=lines", "task.line_channels=[2ch,4ch]", "model.preset=tiny",
        "data.batch_size=2", "trainer.max_steps=3", "trainer.max_epochs=1",
        "trainer.progress_bar=false", "trainer.threads=1", "trainer.accelerator=cpu",
        "trainer.precision=32-true", "data.val_fraction=0.34"])
    run_pretraining(cfg, cache, tmp_path / "run", quiet=True)
    sid = cache.ids[0]
    out = run_json(capsys, ["plan", str(cache.path), "--study", sid, "--model",
                            str(tmp_path / "run"), "--inputs", "sax", "--json",
                            "--png", str(tmp_path / "m.png")])
    assert out["lines_from"].startswith("model ")
    assert set(out["targets"]) == {"2ch", "4ch"}
    for t in out["targets"].values():
        assert len(t["lines"]) == out["inputs"][0]["slices"]  # one per SAX slice
        if t["ok"]:
            assert len(t["ImageOrientationPatient"]) == 6
            assert 0 <= t["acquired"]["angle_deg"] <= 90
        else:
            assert isinstance(t["reason"], str) and t["reason"]
    assert (tmp_path / "m.png").is_file()
    # The text report too (an untrained model's targets are planned or explained).
    assert main(["plan", str(cache.path), "--study", sid, "--model", str(tmp_path / "run"),
                 "--inputs", "sax"]) == 0
    text = capsys.readouterr().out
    assert "2ch:" in text and "4ch:" in text
    print(text)
    # Without the exported weights, the run's last checkpoint is used: same heatmaps.
    from planessl.planning.model import LineModel

    exported = LineModel(tmp_path / "run")
    (tmp_path / "run" / "weights.safetensors").rename(tmp_path / "w.safetensors")
    from_ckpt = LineModel(tmp_path / "run")
    assert from_ckpt.weights_path.name == "last.ckpt"
    study = cache.load(sid)
    image = [(study.series[0].pixels[0, 0], study.series[0].planes[0])]
    assert np.array_equal(exported.heatmaps(image)[0][0], from_ckpt.heatmaps(image)[0][0])


def test_without_model_the_shipped_planning_model_plans_from_localizers(tmp_path, capsys):
    """No --model: the phantom-trained model shipped in the package is loaded (and said so)
    and plans from the localizers of a phantom exam it has not seen."""
    from planessl.planning.model import DEFAULT_MODEL_DIR, LineModel

    model = LineModel.default()
    assert model.run == DEFAULT_MODEL_DIR and model.weights_path.suffix == ".safetensors"
    assert model.weights_path.stat().st_size <= 5_000_000
    assert set(model.channels) >= {"2ch", "4ch", "sax"}
    assert {"loc_2ch", "loc_4ch", "loc_sax"} <= set(model.input_views)
    cache = write_cache(tmp_path / "cache", [make_study(77, 3, localizers=True)])
    capsys.readouterr()
    assert main(["plan", str(cache.path), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "shipped phantom-trained" in captured.err
    assert "shipped phantom-trained" in out["lines_from"]
    assert {d["view"] for d in out["inputs"]} == {"loc_2ch", "loc_4ch", "loc_sax"}
    assert set(out["targets"]) == set(model.channels)
    fitted = [t for t in out["targets"].values() if t["ok"]]
    assert fitted, {v: t["reason"] for v, t in out["targets"].items()}
    for t in fitted:
        assert 0 <= t["acquired"]["angle_deg"] <= 90 and t["acquired"]["distance_mm"] >= 0


def test_the_shipped_model_is_package_data():
    """A non-editable install ships the default model: pyproject lists its files."""
    from fnmatch import fnmatch
    from pathlib import Path

    import planessl
    from planessl.planning.model import DEFAULT_MODEL_DIR

    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("no pyproject.toml beside the tests")
    listed = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    pkg = Path(planessl.__file__).resolve().parent
    for name in ("weights.safetensors", "config.yaml", "line_calibration.json"):
        path = DEFAULT_MODEL_DIR / name
        assert path.is_file(), path
        rel = path.relative_to(pkg).as_posix()
        assert any(fnmatch(rel, pattern) for pattern in listed["planessl"]), rel


@pytest.mark.realdata
def test_ukbb_demo_oracle_from_sax(shared_data, capsys):
    subject = shared_data / "ukbb_demo" / "1"
    if not subject.is_dir():
        pytest.skip("ukbb_demo/1 is absent")
    out = run_json(capsys, ["plan", str(subject), "--oracle", "--inputs", "sax", "--json"])
    assert set(out["targets"]) == {"2ch", "4ch"}
    for t in out["targets"].values():
        assert t["ok"], t["reason"]
        assert t["n_lines"] == 12
        assert t["acquired"]["angle_deg"] < 1.0 and t["acquired"]["distance_mm"] < 1.0


def test_test_time_augmentation_maps_every_view_back_onto_the_grid(study_cache):
    """With a network that returns its input, the averaged heatmaps of the turned and
    mirrored views equal the un-augmented map (wherever every view covers the grid): each
    view's map is resampled back onto the image's grid the right way round."""
    import torch

    from planessl.planning.model import TTA_VIEWS, LineModel

    model = LineModel.__new__(LineModel)
    model.channels, model.image_size, model.spacing_mm = ["x"], 96, 2.5
    model.clip_percentiles, model.device = (1.0, 99.0), torch.device("cpu")
    model.module = lambda x: {"lines": x}
    study, _ = open_study(study_cache)
    series = study.views("4ch")[0]
    image = [(series.pixels[0, 0], series.planes[0])]
    (plain, grid), = model.heatmaps(image)
    (averaged, grid2), = model.heatmaps(image, tta=TTA_VIEWS)
    assert grid2 is not None and averaged.shape == plain.shape == (1, 96, 96)
    inner = np.s_[:, 20:-20, 20:-20]  # covered by every view turned by 10 deg
    scale = float(np.abs(plain[inner]).max())
    err = np.abs(averaged[inner] - plain[inner])
    assert float(np.median(err)) < 0.02 * scale  # interpolation only
    # A wrong way round (mirror not undone) would not match:
    assert float(np.median(np.abs(plain[inner][:, :, ::-1] - plain[inner]))) > 0.05 * scale


def test_a_plane_backed_by_a_minority_of_the_images_it_cuts_is_refused(study_cache):
    from planessl.cache import Cache
    from planessl.planning.fit import fit_plane_robust
    from planessl.planning.plan import acquired_plane, input_images, oracle_lines, support_check

    cache = Cache(study_cache)
    study = cache.load(cache.ids[0])
    series, _ = choose_inputs(study, ["sax"])
    images = input_images(series)
    target = acquired_plane(study, "2ch")[1]
    records = oracle_lines(images, target)
    lines = [r.line3d for r in records]
    cut = sum(line is not None for line in lines)
    assert cut >= 6
    full = fit_plane_robust(lines, reference=images[0].plane)
    support_check(full, images, 0.5)
    assert full.ok, full.reason  # every image the plane cuts has its line
    have = [k for k, line in enumerate(lines) if line is not None]
    keep = {have[0], have[len(have) // 2], have[-1]}  # three lines far apart in the stack
    three = [line if k in keep else None for k, line in enumerate(lines)]
    few = fit_plane_robust(three, reference=images[0].plane)
    assert few.ok and few.n_lines == 3, few.reason  # three exact lines fit the plane...
    support_check(few, images, 0.5)
    assert not few.ok  # ...but the plane cuts many more images that gave no line
    assert f"0 back it" in few.reason and f"sax: 3 of {cut}" in few.reason
    off = fit_plane_robust(three, reference=images[0].plane)
    support_check(off, images, 0.0)
    assert off.ok


def test_a_localizer_series_without_lines_is_outvoted_by_the_others():
    from planessl.planning.fit import fit_plane_robust
    from planessl.planning.plan import acquired_plane, input_images, oracle_lines, support_check

    study = make_study(3, 0, "small", localizers=True)
    series, _ = choose_inputs(study, None)
    images = input_images(series)
    assert {i.series for i in images} == {"loc_2ch", "loc_4ch", "loc_sax"}
    target = acquired_plane(study, "sax", exclude=[s.name for s in series])[1]
    records = oracle_lines(images, target)
    assert all(r.line3d is not None for r in records)  # the plane crosses every localizer
    # no line on any SAX-localizer slice: the two long-axis localizers still back the plane
    lines = [None if i.series == "loc_sax" else r.line3d for i, r in zip(images, records)]
    fit = fit_plane_robust(lines, reference=images[0].plane)
    support_check(fit, images, 0.5)
    assert fit.ok, fit.reason
    # a line on the 2CH localizer only: one of three crossed series backs the plane
    lines = [r.line3d if i.series == "loc_2ch" or i.name == "loc_sax[0]" else None
             for i, r in zip(images, records)]
    fit = fit_plane_robust(lines, reference=images[0].plane)
    assert fit.ok, fit.reason
    support_check(fit, images, 0.5)
    assert not fit.ok and "1 back it" in fit.reason
