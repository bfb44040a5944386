"""Exams as scanners export them (issue 20): vendor-named phantom exports, localizers by
name / ImageType / SequenceName / acquisition order, view names checked by geometry, a cache
free of source names, and ``planessl plan EXAM/`` from the localizers."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pydicom
import pytest

from planessl.cache import Cache
from planessl.cli import main
from planessl.ingest import ingest
from planessl.phantom import make_study
from planessl.phantom.writers import write_dicom

ALL_VIEWS = {"loc_2ch", "loc_4ch", "loc_sax", "2ch", "3ch", "4ch", "sax"}
PATIENT, DATE = "DOE^JANE", "20240101"


@pytest.fixture(scope="module")
def study():
    return make_study(0, 0, frames=3, localizers=True)


@pytest.fixture(scope="module")
def siemens(study, tmp_path_factory):
    """The Siemens exam of issue 20, as a phantom: folders carry a patient name and date."""
    root = tmp_path_factory.mktemp("siemens") / "exam056B"
    write_dicom(study, root, vendor="siemens", patient_name=PATIENT, study_date=DATE)
    return root


def _copy(exam: Path, tmp_path: Path) -> Path:
    out = tmp_path / "exam056B"
    shutil.copytree(exam, out)
    return out


def _series_dir(exam: Path, number: int) -> Path:
    (d,) = (exam / PATIENT / DATE).glob(f"Series{number:04d}_*")
    return d


def _rewrite(folder: Path, **values) -> None:
    for f in folder.iterdir():
        if f.name.startswith("IM-"):
            ds = pydicom.dcmread(f)
            for k, v in values.items():
                setattr(ds, k, v)
            ds.save_as(f)


def _views(cache_dir: Path) -> dict[str, tuple[str, str, int]]:
    cache = Cache(cache_dir)
    (sid,) = cache.ids
    return {s.name: (s.view, s.view_reason, s.n_slices) for s in cache.load(sid).series}


def test_siemens_export_is_laid_out_as_the_issue_exam(siemens):
    day = siemens / PATIENT / DATE
    folders = sorted(d.name for d in day.iterdir())
    assert folders == ["Series0003_trufi_2-chamber", "Series0004_trufi_4-chamber",
                       "Series0005_trufi_short-axis", "Series0006_TF Cine Retro_iPAT 4C",
                       "Series0007_TF Cine Retro_iPAT 2C", "Series0008_TF Cine Retro_iPAT LVOT",
                       "Series0010_TF Cine Retro_iPAT SAO"]
    loc = pydicom.dcmread(next((day / folders[0]).glob("IM-*")))
    cine = pydicom.dcmread(next((day / folders[3]).glob("IM-*")))
    for ds in (loc, cine):
        assert all(ds.get(k) == "" for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                            "SOPInstanceUID", "FrameOfReferenceUID"))
        assert ds.PatientName == PATIENT and ds.StudyDate == DATE
    assert all(f.suffix == "" for f in day.rglob("IM-*"))
    assert loc.SequenceName == "*tfiseg2d1" and cine.SequenceName == "tfi2d1_14"
    assert list(cine.ImageType)[-1] == "RETRO" and "RETRO" not in list(loc.ImageType)
    assert float(loc.SliceThickness) < float(cine.SliceThickness)  # thinner than the cines
    assert loc.AcquisitionTime < cine.AcquisitionTime
    assert len(list((day / folders[2]).glob("IM-*"))) == 5  # the SAX localizer's slices
    assert len(list((day / folders[6]).glob("IM-*"))) == 3  # one SAX slice x 3 frames


def test_siemens_export_caches_as_one_study_with_its_views_and_no_source_names(
        siemens, tmp_path, capsys):
    exam = _copy(siemens, tmp_path)
    (_series_dir(exam, 3) / "notes.txt").write_text("not an image")   # a skipped file
    out, keys = tmp_path / "cache", tmp_path / "records" / "keys.csv"
    assert main(["ingest", str(exam), "--out", str(out), "--no-progress", "--workers", "1",
                 "--keys", str(keys)]) == 0
    printed = capsys.readouterr().out
    views = _views(out)
    assert {v for v, _, _ in views.values()} == ALL_VIEWS and len(views) == 7
    for name in ("loc_2ch", "loc_4ch", "loc_sax"):
        view, why, _ = views[name]
        assert why.startswith("localizer: single frame") and "acquired before the cines" in why
        assert "mm slices (cines" in why  # thinner: reported, not decisive
    assert "name says 'lvot'" in views["3ch"][1]
    assert "name says '2c'" in views["2ch"][1] and "name says '4c'" in views["4ch"][1]
    assert views["sax"][2] == 1 and "name says 'sao'" in views["sax"][1]
    assert "perpendicular to the long axis" in views["sax"][1]
    # The console and the --keys table (outside the cache) have the readable paths ...
    assert f"{PATIENT}/{DATE}/Series0003_trufi_2-chamber/notes.txt" in printed
    rows = {r["source_key"]: r["cache_id"] for r in csv.DictReader(keys.open())}
    note_id = rows[f"file:{_series_dir(exam, 3) / 'notes.txt'}"]
    # ... the cache names the file by id and position, and no byte of a source name.
    manifest = json.loads((out / "manifest.json").read_text())
    (rec,) = [r for r in manifest["skipped"] if r["file"] == note_id]
    assert rec["reason"] == "not a DICOM file" and rec["study"] == Cache(out).ids[0]
    assert rec["position"] == "a file beside series 3"
    warn = {w["reason"].split(":")[0]: w for w in manifest["warnings"]}
    assert set(warn) == {"no StudyInstanceUID", "one-slice SAX 'stack'"}
    assert warn["no StudyInstanceUID"]["position"] == "series 3, image 1 of 1"
    assert warn["one-slice SAX 'stack'"]["position"] == "series 10, image 1 of 3"
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    names = {PATIENT, DATE, "DOE", "JANE", exam.name, tmp_path.name, "notes.txt"}
    names |= {p.name for p in exam.rglob("*")}
    for name in sorted(names):
        assert name.encode() not in blob, name


@pytest.mark.parametrize("vendor", ["ge", "philips"])
def test_ge_and_philips_localizers_by_acquisition_order(study, vendor, tmp_path):
    write_dicom(study, tmp_path / "exam", vendor=vendor)
    report = ingest([tmp_path / "exam"], tmp_path / "cache", progress=False)
    assert len(report.cached) == 1
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [
        ("phantom.json", "not a DICOM file")]  # the phantom's targets, beside the exam
    views = _views(tmp_path / "cache")
    assert {v for v, _, _ in views.values()} == ALL_VIEWS
    for name in ("loc_2ch", "loc_4ch"):
        assert "acquired before the cines" in views[name][1]
        assert "series name says" not in views[name][1]  # FIESTA VLA, sBTFE_2ch: no loc word
    assert views["sax"][2] == study.views("sax")[0].n_slices


def test_late_single_frame_sax_stack_is_not_a_localizer(siemens, tmp_path):
    """An LGE-like single-frame SAX stack acquired after the cines stays a view, while the
    trufi SAX localizer acquired before them is a localizer; named PSIR it says so."""
    exam = _copy(siemens, tmp_path)
    day = exam / PATIENT / DATE
    for number, text in ((30, "SAX stack"), (31, "tfl_PSIR_SAX")):
        late = day / f"Series{number:04d}_{text}"
        shutil.copytree(_series_dir(exam, 5), late)
        _rewrite(late, SeriesNumber=number, SeriesDescription=text, ProtocolName=text,
                 SeriesTime="113000", AcquisitionTime="113000")
    ingest([exam], tmp_path / "cache", progress=False)
    views = _views(tmp_path / "cache")
    assert sum(v == "loc_sax" for v, _, _ in views.values()) == 1
    assert "acquired before the cines" in views["loc_sax"][1]
    late = {n: (v, why) for n, (v, why, k) in views.items() if k == 5 and v != "loc_sax"}
    assert len(late) == 2 and all(v == "sax" for v, _ in late.values())
    reasons = " | ".join(why for _, why in late.values())
    assert "not a localizer" in reasons and "acquired after the cines (series 30" in reasons
    assert "series name says 'psir'" in reasons


def test_view_names_are_checked_by_geometry(siemens, tmp_path):
    """A one-slice cine without a view name, perpendicular to the long axis, is sax; a cine
    named SAX that contains the long axis is placed by geometry instead."""
    exam = _copy(siemens, tmp_path)
    _rewrite(_series_dir(exam, 10), SeriesDescription="TF Cine Retro_iPAT",
             ProtocolName="TF Cine Retro_iPAT")
    _series_dir(exam, 10).rename(exam / PATIENT / DATE / "Series0010")
    _rewrite(_series_dir(exam, 7), SeriesDescription="TF Cine Retro_iPAT SA",
             ProtocolName="TF Cine Retro_iPAT SA")
    _series_dir(exam, 7).rename(exam / PATIENT / DATE / "Series0007")
    ingest([exam], tmp_path / "cache", progress=False)
    views = _views(tmp_path / "cache")
    assert {v for v, _, _ in views.values()} == ALL_VIEWS
    view, why, n = views["sax"]
    assert n == 1 and "one slice perpendicular to the long axis" in why
    assert "name says 'sa' but the plane contains the long axis" in views["2ch"][1]


def test_plan_exam_from_its_localizers(siemens, capsys):
    """`planessl plan EXAM/` with no option: the localizers are the inputs and every target
    the exam acquired is compared with its cine."""
    assert main(["plan", str(siemens), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inputs_reason"].startswith("localizer series")
    assert {d["view"] for d in out["inputs"]} == {"loc_2ch", "loc_4ch", "loc_sax"}
    targets = out["targets"]
    assert set(targets) == {"2ch", "3ch", "4ch", "sax"}
    for view, t in targets.items():
        assert t["acquired"]["series"] == view  # the 3CH is the LVOT cine
        assert t["ok"], (view, t["reason"])
        assert 0 <= t["acquired"]["angle_deg"] < 15 and 0 <= t["acquired"]["distance_mm"] < 10


def test_plan_names_the_3ch_target_as_the_exam_named_it(siemens, capsys):
    """The 3CH cine of the exam is named LVOT: the report says `3ch (LVOT)`, the JSON keeps
    the key `3ch` and gives the name-based label of the acquired series."""
    assert main(["plan", str(siemens), "--oracle"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert any(ln.startswith("3ch (LVOT): plane fitted") for ln in lines), text
    assert "vs acquired 3ch (LVOT) (series 3ch)" in text
    assert any(ln.startswith("sax (SAO): ") for ln in lines), text
    assert any(ln.startswith("2ch (2C): ") for ln in lines), text
    assert main(["plan", str(siemens), "--oracle", "--json"]) == 0
    targets = json.loads(capsys.readouterr().out)["targets"]
    assert targets["3ch"]["acquired"]["name_says"] == "LVOT"
    assert targets["4ch"]["acquired"]["name_says"] == "4C"


def test_plan_label_only_where_the_name_says_more_than_the_view():
    """`3ch` named `3-ch`, a view set by geometry against its name, or no name: no label."""
    from types import SimpleNamespace

    from planessl.planning.plan import name_label

    def label(view, reason):
        return name_label(SimpleNamespace(view=view, view_reason=reason))

    assert label("3ch", "name says 'lvot'; geometry agrees") == "LVOT"
    assert label("sax", "name says 'sao'; one slice") == "SAO"
    assert label("3ch", "name says '3 ch'; cine ordered") is None
    assert label("3ch", "name says '3ch'") is None
    assert label("sax", "name says '2c' is perpendicular to the long axis: a short-axis "
                        "slice") is None
    assert label("3ch", "by geometry: contains the long axis") is None


def test_vendor_option_is_dicom_only(tmp_path, capsys):
    assert main(["phantom", "--subjects", "1", "--out", str(tmp_path / "u"), "--format",
                 "ukbb", "--vendor", "siemens"]) == 2
    assert "--vendor names DICOM series" in capsys.readouterr().err
