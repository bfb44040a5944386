"""Anonymised DICOM exports (blank UIDs, files without extensions, one folder per series),
the ``--keys`` table, and manifest paths relative to the source."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pydicom
import pytest

from planessl.cache import Cache
from planessl.cli import main
from planessl.ingest import ingest
from planessl.io.sources import opaque_id, relative_to_sources
from planessl.phantom import make_study
from planessl.phantom.writers import write_subject

from dicom_fixtures import anonymised_export, write_cardiac_study


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    """Two phantom DICOM subjects (written once for the module)."""
    root = tmp_path_factory.mktemp("phantoms")
    studies = [make_study(0, k, frames=2) for k in range(2)]
    for s in studies:
        write_subject(s, root, "dicom")
    return [(s, root / s.id) for s in studies]


def _views(cache: Cache, sid: str) -> dict[str, str]:
    return {s.name: s.view_reason for s in cache.load(sid).series}


def test_blank_uids_one_study_per_exam_with_views(phantoms, tmp_path):
    src = tmp_path / "export"
    (named, named_dir), (plain, plain_dir) = phantoms
    files = anonymised_export(named_dir, src / "exam1")
    anonymised_export(plain_dir, src / "exam2", descriptions=False)
    ds = pydicom.dcmread(files[0])
    assert all(ds.get(k) == "" for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                        "SOPInstanceUID", "FrameOfReferenceUID"))
    assert all(f.suffix == "" for f in files)
    out = tmp_path / "cache"
    report = ingest([src], out, progress=False)
    assert not report.skipped
    assert len(report.cached) == 2, report.table()  # not one study per series folder
    cache = Cache(out)
    keys = {k.split("|")[0]: sid for k, sid in report.keys.items()}
    one = _views(cache, keys[f"dicom:folder:{src / 'exam1'}"])
    n_sax = named.views("sax")[0].n_slices
    assert set(one) == {"sax", "2ch", "3ch", "4ch"}
    assert "name says '2ch'" in one["2ch"] and "name says '4ch'" in one["4ch"]
    assert f"merged from {n_sax} series" in one["sax"]
    assert cache.load(keys[f"dicom:folder:{src / 'exam1'}"]).views("sax")[0].pixels.shape[:2] \
        == (n_sax, 2)
    # Without names the views come from geometry, which needs the exam's views together.
    exam2 = cache.load(keys[f"dicom:folder:{src / 'exam2'}"])
    two = {s.view: s.view_reason for s in exam2.series}
    assert "by geometry" in two["sax"] and len(exam2.series) == 4
    assert "other" not in two and {"2ch", "4ch"} & set(two)
    # One warning per exam: how it was grouped and the files without a frame of reference.
    assert len(report.warnings) == 2
    for w, exam in zip(sorted(report.warnings, key=lambda w: w.path), ("exam1", "exam2")):
        assert f"/{exam}/" in w.path
        assert "no StudyInstanceUID" in w.reason and "folder holding its series" in w.reason
        assert "without FrameOfReferenceUID" in w.reason


def test_frame_of_reference_groups_first_then_patient_date_time(phantoms, tmp_path):
    """Fallback order: FrameOfReferenceUID (across folders), then the folder, split by
    PatientID + StudyDate + StudyTime when one folder holds several patients."""
    (_, a_dir), (_, b_dir) = phantoms
    src = tmp_path / "src"
    # FrameOfReferenceUID kept: exam A's series are spread over two unrelated folders.
    keep_for = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    anonymised_export(a_dir, tmp_path / "tmp_a", blank=keep_for)
    for k, series in enumerate(sorted((tmp_path / "tmp_a").iterdir())):
        part = src / f"part{k % 2}"
        part.mkdir(parents=True, exist_ok=True)
        series.rename(part / series.name)
    sources, _ = _discover(src)
    assert len(sources) == 1 and sources[0].key.startswith("dicom:for:")
    assert sources[0].payload["grouped_by"] == "its FrameOfReferenceUID"
    # Everything blank, two patients' files flat in one folder: split by patient.
    flat = tmp_path / "flat"
    flat.mkdir()
    for d, pid in ((a_dir, "ANON1"), (b_dir, "ANON2")):
        for f in anonymised_export(d, tmp_path / f"tmp_{pid}", patient=pid):
            f.rename(flat / f"{pid}_{f.parent.name}_{f.name}")
    sources, _ = _discover(flat)
    assert sorted(s.key.split("|patient:")[1].split("|")[0] for s in sources) == ["ANON1",
                                                                                  "ANON2"]
    assert all("PatientID, StudyDate and StudyTime" in s.payload["grouped_by"]
               for s in sources)


def _discover(path: Path):
    from planessl.io.dicom_scan import discover_dicom

    return discover_dicom([path], progress=False)


def test_keys_table_outside_the_cache(tmp_path, capsys):
    write_cardiac_study(tmp_path / "src" / "a", "1.2.9.41", n_slices=3, n_frames=2)
    write_cardiac_study(tmp_path / "src" / "b", "1.2.9.42", n_slices=3, n_frames=2)
    out, keys = tmp_path / "cache", tmp_path / "records" / "keys.csv"
    assert main(["ingest", str(tmp_path / "src"), "--out", str(out), "--keys", str(keys),
                 "--no-progress", "--salt", "s3cret"]) == 0
    assert "keys: 2 source key(s)" in capsys.readouterr().out
    rows = list(csv.DictReader(keys.open()))
    assert [r["source_key"] for r in rows] == ["dicom:1.2.9.41", "dicom:1.2.9.42"]
    assert all(r["cache_id"] == opaque_id(r["source_key"], "s3cret") for r in rows)
    assert sorted(r["cache_id"] for r in rows) == sorted(Cache(out).ids)
    assert not list(keys.parent.glob(".*"))  # no temporary file left beside it
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"1.2.9.41" not in blob and b"keys.csv" not in blob
    # Inside the cache: refused before anything is read, one line naming the file.
    inside = out / "keys.csv"
    assert main(["ingest", str(tmp_path / "src"), "--out", str(out), "--keys", str(inside),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(inside) in err[0] and "outside the cache" in err[0]
    assert not inside.exists()


def test_manifest_names_skipped_files_by_id_not_path(tmp_path, capsys):
    secret = tmp_path / "Doe_Jane_1970"  # folder names above the source can carry PHI
    src = secret / "export"
    write_cardiac_study(src / "exam", "1.2.9.51", n_slices=3, n_frames=2)
    (src / "exam" / "notes.txt").write_text("not an image")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "junk.bin").write_bytes(b"\0" * 10)
    out, keys = tmp_path / "cache", tmp_path / "keys.csv"
    assert main(["ingest", str(src), str(tmp_path / "other"), "--out", str(out),
                 "--no-progress", "--keys", str(keys)]) == 0
    printed = capsys.readouterr().out
    assert str(src / "exam" / "notes.txt") in printed  # the user's terminal: full paths
    manifest = json.loads((out / "manifest.json").read_text())
    ids = {r["source_key"]: r["cache_id"] for r in csv.DictReader(keys.open())}
    notes, junk = ids[f"file:{src / 'exam' / 'notes.txt'}"], ids[f"file:{tmp_path / 'other' / 'junk.bin'}"]
    entries = {e["file"]: e for e in manifest["skipped"]}
    assert set(entries) == {notes, junk}
    assert entries[notes]["source"] == 1 and entries[junk]["source"] == 2
    text = (out / "manifest.json").read_text()
    for name in ("Doe_Jane", "export", "exam", "notes.txt", "junk.bin"):
        assert name not in text
    assert main(["summary", str(out)]) == 0
    assert f"  {notes} (source 1): not a DICOM file" in capsys.readouterr().out


def test_relative_to_sources_picks_the_deepest_source(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "f.dcm").write_bytes(b"")
    roots = [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "f.dcm"]
    assert relative_to_sources(tmp_path / "a" / "b" / "x", roots) == (1, "x")
    assert relative_to_sources(tmp_path / "a" / "y" / "x", roots) == (0, "y/x")
    assert relative_to_sources(tmp_path / "a", roots) == (0, ".")
    assert relative_to_sources(tmp_path / "f.dcm", roots) == (2, "f.dcm")
    assert relative_to_sources("/elsewhere/secret/z.dcm", roots) == (None, "z.dcm")
