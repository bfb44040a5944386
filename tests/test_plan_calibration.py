"""Line calibration of a planning model and the inverse-variance weights of the plane fit."""

import json
import math
import shutil

import numpy as np
import pytest

from planessl.cache import write_cache
from planessl.cli import main
from planessl.errors import PlaneSSLError
from planessl.geometry import intersection_line
from planessl.phantom import make_study
from planessl.planning.calibration import (CALIBRATION_FILE, MIN_LINES, LineCalibration,
                                           calibrate, sigma_from_distances)
from planessl.planning.fit import Line3D, fit_plane_robust, lift_line, plane_errors
from planessl.planning.plan import (LineRecord, PlanResult, TargetResult, acquired_plane,
                                    choose_inputs, input_images, oracle_lines, weigh_lines)


@pytest.fixture(scope="module")
def exam():
    """A phantom exam with localizers: its input images and acquired target planes."""
    study = make_study(3, 0, "small", localizers=True)
    series, _ = choose_inputs(study, None)
    images = input_images(series)
    names = [s.name for s in series]
    targets = {v: acquired_plane(study, v, exclude=names)[1] for v in ("2ch", "4ch", "sax")}
    return images, targets


def shifted(line: Line3D, normal: np.ndarray, d: float) -> Line3D:
    """The line moved by ``d`` mm along ``normal``: every point of it ``d`` mm off a plane
    with that normal that held it."""
    return Line3D(point=line.point + d * normal, direction=line.direction,
                  segment=(line.segment[0] + d * normal, line.segment[1] + d * normal),
                  source=line.source)


def turned(image, abc, degrees: float):
    """The pixel line ``abc`` turned by ``degrees`` about its point nearest the image centre."""
    a, b, c = abc
    ci, cj = (image.plane.shape[0] - 1) / 2, (image.plane.shape[1] - 1) / 2
    s = a * ci + b * cj + c
    i0, j0 = ci - s * a, cj - s * b
    t = math.radians(degrees)
    a2, b2 = a * math.cos(t) - b * math.sin(t), a * math.sin(t) + b * math.cos(t)
    return a2, b2, -(a2 * i0 + b2 * j0)


def test_sigma_is_the_sd_of_normal_errors():
    rng = np.random.default_rng(0)
    errors = rng.normal(0.0, 3.0, 20000)
    assert sigma_from_distances(np.abs(errors)) == pytest.approx(float(np.std(errors)), rel=0.03)
    # A few gross outliers barely move it (a plain rms would more than double).
    spoiled = np.concatenate([np.abs(errors), np.full(400, 200.0)])
    assert sigma_from_distances(spoiled) == pytest.approx(3.0, rel=0.06)
    assert math.sqrt(np.mean(spoiled ** 2)) > 6.0
    with pytest.raises(ValueError):
        sigma_from_distances([])


def test_calibration_measures_each_lines_distance_from_the_true_plane(exam):
    images, targets = exam
    target = targets["2ch"]
    normal = np.asarray(target.normal, float)
    records = oracle_lines(images, target)
    # Move every true line off the plane by a known distance: its rms distance is exactly that.
    offsets = {"loc_2ch": [4.0], "loc_4ch": [2.0], "loc_sax": [1.0, -3.0, 5.0, -7.0, 9.0]}
    used = {k: list(v) for k, v in offsets.items()}
    moved = []
    for img, rec in zip(images, records):
        assert rec.line3d is not None
        d = used[img.view].pop(0)
        moved.append(LineRecord(rec.image, rec.abc, None, None, shifted(rec.line3d, normal, d)))
    results = [PlanResult("s", "test", "test", [], "", [
        TargetResult("2ch", fit=None, lines=moved, acquired_plane=target)], images)] * 2
    cal = calibrate(results, source="two copies")
    assert cal.studies == 2
    assert cal.n_lines["2ch"] == {"loc_2ch": 2, "loc_4ch": 2, "loc_sax": 10}
    # Only loc_sax has >= MIN_LINES lines: its sigma is 1.4826 x the median |offset| (5 mm).
    assert MIN_LINES > 2
    assert set(cal.sigma_mm["2ch"]) == {"loc_sax"}
    assert cal.sigma_mm["2ch"]["loc_sax"] == pytest.approx(1.4826 * 5.0, rel=1e-6)
    assert cal.weight("2ch", "loc_sax") == pytest.approx(1 / (1.4826 * 5.0) ** 2)
    assert cal.weight("2ch", "loc_4ch") is None and cal.weight("3ch", "loc_sax") is None
    # A target without its acquired plane is not measured; nothing measured is an error.
    blind = [PlanResult("s", "t", "t", [], "", [TargetResult("2ch", None, moved)], images)]
    with pytest.raises(PlaneSSLError, match="no target view had"):
        calibrate(blind)


def test_calibration_file_round_trip_and_bad_files(tmp_path):
    cal = LineCalibration({"2ch": {"loc_4ch": 3.5, "loc_sax": 11.0}},
                          {"2ch": {"loc_4ch": 20, "loc_sax": 90}}, 20, "somewhere")
    path = cal.save(tmp_path)
    assert path.name == CALIBRATION_FILE and not list(tmp_path.glob(".*.tmp"))
    back = LineCalibration.load(tmp_path)
    assert back.sigma_mm == cal.sigma_mm and back.studies == 20 and back.source == "somewhere"
    assert LineCalibration.load(tmp_path / "nothing-here") is None
    path.write_text("{not json")
    with pytest.raises(PlaneSSLError, match=CALIBRATION_FILE):
        LineCalibration.load(tmp_path)
    path.write_text(json.dumps({"sigma_mm": {"2ch": {"loc_4ch": -1.0}}}))
    with pytest.raises(PlaneSSLError, match="2ch/loc_4ch"):
        LineCalibration.load(tmp_path)


def test_weights_follow_the_calibration_and_fall_back_to_equal(exam):
    images, targets = exam
    records = oracle_lines(images, targets["2ch"])
    cal = LineCalibration({"2ch": {"loc_2ch": 20.0, "loc_4ch": 2.0, "loc_sax": 10.0}})
    view = {i.name: i.view for i in images}
    lines, how = weigh_lines(records, "2ch", images, cal)
    assert len(lines) == len(records) and how.startswith("1/sigma^2")
    for ln in lines:
        assert ln.weight == pytest.approx(1 / cal.sigma_mm["2ch"][view[ln.source]] ** 2)
    # each series once: the SAX localizer's lines share its weight
    n_sax = sum(v == "loc_sax" for v in view.values())
    lines, how = weigh_lines(records, "2ch", images, cal, balance_series=True)
    assert how.endswith("each series once")
    for ln in lines:
        expect = 1 / cal.sigma_mm["2ch"][view[ln.source]] ** 2
        assert ln.weight == pytest.approx(expect / (n_sax if view[ln.source] == "loc_sax" else 1))
    # equal on request, without a calibration, or when it lacks an input view
    for kw in ({"line_weights": "equal"}, {"calibration": None}):
        lines, how = weigh_lines(records, "2ch", images, **{"calibration": cal, **kw})
        assert how == "equal" and all(ln.weight == 1.0 for ln in lines)
    partial = LineCalibration({"2ch": {"loc_sax": 10.0}})
    lines, how = weigh_lines(records, "2ch", images, partial)
    assert all(ln.weight == 1.0 for ln in lines) and "no 2ch lines on loc_2ch, loc_4ch" in how
    with pytest.raises(PlaneSSLError, match="no 2ch lines on loc_2ch"):
        weigh_lines(records, "2ch", images, partial, "calibrated")
    with pytest.raises(PlaneSSLError, match="plan-calibrate"):
        weigh_lines(records, "2ch", images, None, "calibrated")
    with pytest.raises(PlaneSSLError, match="one of"):
        weigh_lines(records, "2ch", images, cal, "heavy")


def test_inverse_variance_weights_let_the_good_line_win(exam):
    """The 2CH plane from one accurate line on the 4CH localizer and the SAX localizer's lines,
    shifted more the farther their slice is from the base (one misjudgement of the exam that
    tilts the plane's long axis): weighted by a calibration that knows the SAX lines are worse,
    the fit follows the accurate line, which fixes the long axis, and errs less."""
    images, targets = exam
    target = targets["2ch"]
    records = []
    for img in images:
        true = intersection_line(img.plane, target)
        if img.view == "loc_2ch" or true is None:  # nearly parallel to the target
            continue
        if img.view == "loc_4ch":
            abc = turned(img, (true.a, true.b, true.c), 0.3)
        else:  # shifted across itself by 4 px per slice from the middle one, turned 1 deg
            a, b, c = turned(img, (true.a, true.b, true.c), 1.0)
            abc = (a, b, c + 4.0 * (img.slice - 2))
        records.append(LineRecord(img.name, abc, None, None, lift_line(img.plane, abc, img.name)))
    assert {img.view for img in images if img.name in {r.image for r in records}} == {
        "loc_4ch", "loc_sax"}
    cal = LineCalibration({"2ch": {"loc_4ch": 2.0, "loc_sax": 12.0}})
    errors = {}
    for how in ("equal", "calibrated"):
        lines, _ = weigh_lines(records, "2ch", images, cal, how)
        fit = fit_plane_robust(lines, reference=images[0].plane, outlier_rms_mm=None)
        assert fit.ok, fit.reason
        errors[how] = plane_errors(fit, target)
    assert errors["calibrated"][0] < 0.6 * errors["equal"][0], errors
    assert errors["calibrated"][1] < errors["equal"][1], errors


def test_plan_calibrate_command_and_plan_use_the_calibration(tmp_path, capsys):
    """End to end with the shipped model (copied): calibrate on five exams, then plan."""
    from planessl.planning.model import DEFAULT_MODEL_DIR

    model = tmp_path / "model"
    model.mkdir()
    for name in ("weights.safetensors", "config.yaml"):
        shutil.copyfile(DEFAULT_MODEL_DIR / name, model / name)
    cache = write_cache(tmp_path / "cache", [make_study(41, k, localizers=True) for k in range(5)])
    sid = cache.ids[0]
    plan_json = ["plan", str(cache.path), "--study", sid, "--model", str(model), "--json"]
    capsys.readouterr()
    assert main(plan_json) == 0  # before calibration: equal weights, and a hint how to calibrate
    out = capsys.readouterr()
    assert "no line calibration" in out.err and "plan-calibrate" in out.err
    assert all(t["line_weights"] == "equal" for t in json.loads(out.out)["targets"].values())
    assert main(["plan-calibrate", str(cache.path), str(tmp_path / "missing"),
                 "--model", str(model), "--ids", *cache.ids, "nosuch"]) == 0
    out = capsys.readouterr()
    assert "skipped" in out.err and "missing" in out.err  # the bad input is named, the rest go on
    assert "--ids nosuch: in none of the given caches" in out.err
    assert "line calibration of" in out.out and "loc_sax" in out.out
    cal = LineCalibration.load(model)
    assert cal.studies == 5 and cal.sigma_mm and all(
        s > 0 for by in cal.sigma_mm.values() for s in by.values())
    for t, by in cal.sigma_mm.items():  # measured where enough lines were predicted
        assert all(cal.n_lines[t][v] >= MIN_LINES for v in by)
    assert main(plan_json) == 0
    weighted = json.loads(capsys.readouterr().out)["targets"]
    assert any(t["line_weights"].startswith("1/sigma^2") for t in weighted.values())
    assert main(plan_json + ["--line-weights", "equal"]) == 0
    equal = json.loads(capsys.readouterr().out)["targets"]
    assert all(t["line_weights"] == "equal" for t in equal.values())
    assert main(plan_json[:-1]) == 0
    assert "line weights: " in capsys.readouterr().out
