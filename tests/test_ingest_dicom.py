"""DICOM ingest: DSB layout, views, stacks and cines, enhanced MR, bad input, PHI, resume."""

import csv
import dataclasses
import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from planessl.cache import Cache
from planessl.cli import main
from planessl.geometry import stack_geometry
from planessl.ingest import ingest
from planessl.io.dicom_scan import discover_dicom, load_dicom

from dicom_fixtures import (AXIS, jpeg2000_header_copy, write_cardiac_study, write_enhanced,
                            write_image)

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def load_all(src):
    sources, skipped = discover_dicom([Path(src)])
    return [load_dicom(s, f"s{k}", skipped) for k, s in enumerate(sources)], skipped


def test_dsb_layout_stack_base_to_apex_and_named_views(tmp_path):
    write_cardiac_study(tmp_path / "a", "1.2.9.1", n_slices=5, n_frames=3)
    (study,), skipped = load_all(tmp_path)
    assert not skipped
    views = {s.name: s for s in study.series}
    assert set(views) == {"sax", "2ch", "4ch"}
    sax = views["sax"]
    assert sax.pixels.shape == (5, 3, 16, 16)
    assert "merged from 5 series" in sax.view_reason and "name says 'sax'" in sax.view_reason
    pos = np.array([p.origin @ AXIS for p in sax.planes])
    assert np.all(np.diff(pos) > 7.9)  # written apex-first, cached base -> apex
    assert sax.frame_times == [0.0, 40.0, 80.0] and sax.ed_frame == 0
    # frame order by trigger time: instance f+1 has pixels offset by 7*(f+1)
    assert sax.pixels[0, 1, 0, 0] - sax.pixels[0, 0, 0, 0] == 7
    assert "2ch" in views["2ch"].view_reason and views["4ch"].pixels.shape == (1, 3, 16, 16)


def test_views_from_geometry_without_names(tmp_path):
    write_cardiac_study(tmp_path / "a", "1.2.9.2", n_slices=4, n_frames=2)
    for d in (tmp_path / "a").iterdir():  # drop the DSB folder names
        d.rename(tmp_path / "a" / f"series{d.name.split('_')[1]}")
    for f in (tmp_path / "a").rglob("IM-*"):
        ds = pydicom.dcmread(f)
        ds.SeriesDescription = "cine retro"
        ds.save_as(f)
    (study,), _ = load_all(tmp_path)
    views = {s.view: s for s in study.series}
    assert set(views) == {"sax", "2ch", "4ch"}
    assert "by geometry" in views["sax"].view_reason
    assert "heuristic" in views["4ch"].view_reason and "heuristic" in views["2ch"].view_reason


def test_enhanced_multiframe(tmp_path):
    write_enhanced(tmp_path / "enh.dcm", "1.2.9.3", n_slices=4, n_frames=2)
    (study,), skipped = load_all(tmp_path)
    assert not skipped
    (s,) = study.series
    assert s.view == "sax" and s.pixels.shape == (4, 2, 12, 12)
    # base -> apex along AXIS: slice k has value 100 k (+ frame index)
    np.testing.assert_array_equal(s.pixels[:, :, 0, 0], [[0, 1], [100, 101], [200, 201], [300, 301]])
    assert s.frame_times == [0.0, 30.0]
    assert s.planes[0].spacing == (1.5, 1.5)


def test_pydicom_real_localizer_and_classic_files(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(PYDICOM_FILES / "dicomdirtests" / "98892003" / "MR2", src / "loc")
    for name in ("MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                 "MR_truncated.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        shutil.copy(PYDICOM_FILES / name, src / name)
    out = tmp_path / "cache"
    report = ingest([src], out, workers=1, progress=False)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert "truncated" in reasons["MR_truncated.dcm"] or "pixel" in reasons["MR_truncated.dcm"]
    if importlib.util.find_spec("jpeg_ls") is None:
        assert "decode" in reasons["MR_small_jpeg_ls_lossless.dcm"]
    else:  # pyjpegls (a dependency of highdicom) decodes it: a copy of MR_small
        assert "duplicate slice position" in reasons["MR_small_jpeg_ls_lossless.dcm"]
    cache = Cache(out)
    # The three MR_small variants share a study: identical slices are duplicates.
    shapes = sorted(tuple(s.pixels.shape) for sid in cache.ids for s in cache.load(sid).series)
    assert (1, 1, 64, 64) in shapes
    loc = [cache.load(sid) for sid in cache.ids
           if any(s.pixels.shape[2:] == (16, 16) for s in cache.load(sid).series)]
    # Three studies; each T/S/C pilot study is one series of three orthogonal planes: split.
    assert len(loc) == 3
    tris = [st for st in loc if len(st.series) == 3]
    assert len(tris) == 2
    tri = tris[0]
    assert all(s.view == "other" and "localizer" in s.view_reason for s in tri.series)
    normals = np.array([s.planes[0].normal for s in tri.series])
    np.testing.assert_allclose(np.abs(normals @ normals.T), np.eye(3), atol=1e-6)
    ref = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    small = [s.pixels[0, 0] for sid in cache.ids for s in cache.load(sid).series
             if s.pixels.shape[2:] == (64, 64)]
    assert small and all(np.array_equal(p, ref.pixel_array) for p in small)


def make_bad_corpus(root: Path) -> dict[str, str]:
    """A good study plus one file (or folder) per kind of bad input; returns name -> the
    words its skip reason must contain."""
    write_cardiac_study(root / "good", "1.2.9.10", n_slices=4, n_frames=2)
    expect = {}
    kw = dict(series="1.2.9.20.1", number=1, desc="sax", origin=[0, 0, 0])
    f = write_image(root / "bad" / "truncated.dcm", study="1.2.9.20", **kw)
    f.write_bytes(f.read_bytes()[:-200])
    expect["truncated.dcm"] = "truncated"
    (root / "bad" / "notes.txt").write_text("not an image")
    expect["notes.txt"] = "not a DICOM file"
    for tag, name in (("ImageOrientationPatient", "no_iop.dcm"),
                      ("ImagePositionPatient", "no_ipp.dcm"), ("PixelSpacing", "no_ps.dcm")):
        write_image(root / "bad" / name, study="1.2.9.21", drop=(tag,), **kw)
        expect[name] = f"missing {tag}"
    write_image(root / "bad" / "skew.dcm", study="1.2.9.22", row=[1, 0, 0], col=[0.3, 1, 0],
                series="s", number=1, desc="x", origin=[0, 0, 0])
    expect["skew.dcm"] = "not orthonormal"
    # mixed frames of reference: a 2-slice series in another FoR inside the good study
    for k in range(2):
        write_image(root / "good" / "other_for" / f"f{k}.dcm", study="1.2.9.10",
                    series="1.2.9.10.77", number=77, desc="4ch", origin=[0, 0, 8 * k],
                    frame_uid="9.9.9", trigger=None)
    expect["f0.dcm"] = "frame of reference"
    write_image(root / "one" / "single.dcm", study="1.2.9.23", series="1.2.9.23.1",
                number=1, desc="SAX cine", origin=[0, 0, 0])
    expect["single.dcm"] = "one-slice"
    for k, name in enumerate(("dup_a.dcm", "dup_b.dcm")):
        write_image(root / "dup" / name, study="1.2.9.24", series="1.2.9.24.1", number=1,
                    desc="other", origin=[0, 0, 0], instance=k + 1, trigger=0.0)
    expect["dup_b.dcm"] = "duplicate slice position"
    for k in range(3):
        write_image(root / "size" / f"s{k}.dcm", study="1.2.9.25", series="1.2.9.25.1",
                    number=1, desc="sax", origin=AXIS * 8 * k, instance=k + 1)
    write_image(root / "size" / "big.dcm", study="1.2.9.25", series="1.2.9.25.1", number=1,
                desc="sax", origin=AXIS * 24, shape=(20, 20), instance=4)
    expect["big.dcm"] = "image size 20x20 differs"
    jpeg2000_header_copy(root / "bad" / "j2k.dcm", study="1.2.9.26", **kw)
    expect["j2k.dcm"] = "cannot decode"
    os.symlink(root / "nowhere", root / "bad" / "unreadable.dcm")
    expect["unreadable.dcm"] = "not a readable DICOM file"
    (root / "empty").mkdir()
    return expect


def test_bad_input_corpus_one_line_each_rest_cached(tmp_path, capsys):
    src = tmp_path / "src"
    expect = make_bad_corpus(src)
    out = tmp_path / "cache"
    keys = tmp_path / "keys.csv"
    rc = main(["ingest", str(src), str(src / "empty"), "--out", str(out), "--workers", "2",
               "--no-progress", "--keys", str(keys)])
    assert rc == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    # the cache names files by opaque id; the --keys table (outside it) holds their paths
    path_of = {row["cache_id"]: row["source_key"].removeprefix("file:")
               for row in csv.DictReader(keys.open())}
    lines = {Path(path_of[s["file"]]).name: s["reason"]
             for s in manifest["skipped"] + manifest["warnings"]}
    lines[src.name + "/empty"] = ""
    for name, words in expect.items():
        assert name in lines, f"no line for {name}: {sorted(lines)}"
        assert words in lines[name], (name, lines[name])
        assert name in printed
    assert "empty folder" in printed
    cache = Cache(out)
    good = [cache.load(i) for i in cache.ids if "sax" in cache.entry(i)["views"]
            and cache.entry(i)["views"]["sax"]["slices"] == 4]
    assert len(good) == 1 and {s.view for s in good[0].series} == {"sax", "2ch", "4ch"}
    size = [cache.entry(i) for i in cache.ids if cache.entry(i)["views"].get("sax", {}).get("slices") == 3]
    assert len(size) == 1  # the 3 same-size slices were kept
    assert main(["check", str(out)]) == 0


def test_nothing_cached_exits_nonzero(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    assert main(["ingest", str(tmp_path / "empty"), str(tmp_path / "junk"), "--out",
                 str(tmp_path / "c"), "--no-progress"]) == 1
    assert "nothing was cached" in capsys.readouterr().err


def test_cache_holds_no_phi(tmp_path):
    write_cardiac_study(tmp_path / "src", "1.2.9.99.123456", n_slices=3, n_frames=2)
    out = tmp_path / "cache"
    ingest([tmp_path / "src"], out, progress=False)
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for secret in (b"Doe", b"SECRET-ID-42", b"20200101", b"1.2.9.99.123456", b"1.2.3.4",
                   b"CINE_segmented"):
        assert secret not in blob


def test_rerun_skips_unchanged_and_resumes_after_interruption(tmp_path):
    write_cardiac_study(tmp_path / "src" / "a", "1.2.9.31", n_slices=3, n_frames=2)
    write_cardiac_study(tmp_path / "src" / "b", "1.2.9.32", n_slices=3, n_frames=2)
    out = tmp_path / "cache"
    r1 = ingest([tmp_path / "src"], out, progress=False)
    assert len(r1.written) == 2
    # Simulate an interruption: a half-written temp folder and a lost manifest + study.
    (out / "studies" / ".tmp-deadbeef-1234").mkdir()
    (out / "manifest.json").unlink()
    victim = r1.written[0]["id"]
    shutil.rmtree(out / "studies" / victim)
    r2 = ingest([tmp_path / "src"], out, progress=False)
    assert [e["id"] for e in r2.written] == [victim] and len(r2.unchanged) == 1
    assert not (out / "studies" / ".tmp-deadbeef-1234").exists()
    assert len(Cache(out)) == 2
    # Touching a source file makes its study change.
    f = next((tmp_path / "src" / "b").rglob("IM-*"))
    os.utime(f, (1, 1))
    r3 = ingest([tmp_path / "src"], out, progress=False)
    assert len(r3.written) == 1 and len(r3.unchanged) == 1


def test_phantom_dicom_matches_phantom_study(tmp_path):
    from planessl.phantom import make_study
    from planessl.phantom.writers import write_subject

    study = make_study(0, 0, frames=3)
    write_subject(study, tmp_path / "src", "dicom")
    out = tmp_path / "cache"
    ingest([tmp_path / "src"], out, progress=False)
    cache = Cache(out)
    (sid,) = cache.ids
    got = cache.load(sid)
    assert {s.view for s in got.series} == {s.view for s in study.series}
    for ref in study.series:
        (s,) = got.views(ref.view)
        assert s.pixels.shape == ref.pixels.shape
        np.testing.assert_allclose(s.pixels, np.clip(np.rint(ref.pixels), 0, 65535), atol=0)
        for a, b in zip(s.planes, ref.planes):
            np.testing.assert_allclose(a.origin, b.origin, atol=1e-3)
            np.testing.assert_allclose(a.normal, b.normal, atol=1e-5)
    rel = stack_geometry(got.views("sax")[0].planes).relative
    np.testing.assert_allclose(rel, np.sort(rel))


def _phantom_with_reversed_files(tmp_path):
    """A phantom DICOM study whose SAX series numbers and frame instance numbers run
    backwards (so labels must follow the base -> apex and trigger-time ordering)."""
    from planessl.phantom import make_study
    from planessl.phantom.writers import write_subject

    study = make_study(0, 0, frames=3)
    write_subject(study, tmp_path / "src", "dicom")
    for f in (tmp_path / "src").rglob("IM-*.dcm"):  # reverse instance numbers per series
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = 10 - int(ds.InstanceNumber)
        ds.save_as(f)
    for npz in (tmp_path / "src").rglob("labels.npz"):
        z = dict(np.load(npz))
        z["instance_numbers"] = 10 - z["instance_numbers"]
        np.savez(npz, **z)
    return study


def test_phantom_dicom_labels_follow_slice_and_frame_order(tmp_path):
    study = _phantom_with_reversed_files(tmp_path)
    out = tmp_path / "cache"
    report = ingest([tmp_path / "src"], out, progress=False)
    assert not any("labels.npz" in s.path for s in report.skipped + report.warnings)
    assert report.cached[0]["labels"] is True
    got = Cache(out).load(Cache(out).ids[0])
    for ref in study.series:
        (s,) = got.views(ref.view)
        assert s.labels is not None and s.labelled_frames == list(ref.labelled_frames)
        np.testing.assert_array_equal(s.labels, ref.labels)


def test_bad_label_sidecar_warns_and_caches_without_its_labels(tmp_path):
    study = _phantom_with_reversed_files(tmp_path)
    bad = next((tmp_path / "src").rglob("2ch_*")) / "labels.npz"
    z = dict(np.load(bad))
    z["labels"][0, 0, 0] = 9
    np.savez(bad, **z)
    short = next((tmp_path / "src").rglob("4ch_*")) / "labels.npz"
    z = dict(np.load(short))
    z["labels"] = z["labels"][:, :-1]
    np.savez(short, **z)
    report = ingest([tmp_path / "src"], tmp_path / "cache", progress=False)
    warned = {Path(w.path).parent.name.split("_")[0]: w.reason for w in report.warnings
              if w.path.endswith("labels.npz")}
    assert set(warned) == {"2ch", "4ch"}
    assert "label values [9]" in warned["2ch"] and "without these labels" in warned["2ch"]
    assert "label maps are" in warned["4ch"]
    got = Cache(tmp_path / "cache").load(Cache(tmp_path / "cache").ids[0])
    assert got.views("2ch")[0].labels is None and got.views("4ch")[0].labels is None
    np.testing.assert_array_equal(got.views("sax")[0].labels, study.views("sax")[0].labels)


def test_fast_header_scan_matches_pydicom_scan(tmp_path):
    from planessl.io import dicom_scan
    from planessl.io.dicom_fast import read_fast_header

    write_cardiac_study(tmp_path / "a", "1.2.9.77", n_slices=3, n_frames=4)
    files = sorted(str(f) for f in (tmp_path / "a").rglob("IM-*"))
    assert all(read_fast_header(f, dicom_scan._WANTED) is not None for f in files)
    for f in files:
        (fast,), (slow,) = dicom_scan.scan_file(f), dicom_scan.scan_file_pydicom(Path(f))
        for attr in ("origin", "row_dir", "col_dir", "spacing", "shape", "thickness"):
            np.testing.assert_array_equal(getattr(fast.plane, attr), getattr(slow.plane, attr))
        assert dataclasses.replace(fast, plane=None) == dataclasses.replace(slow, plane=None)
    # Implicit VR little endian is not for the walker: pydicom reads it, same records.
    ds = pydicom.dcmread(files[1])
    implicit = tmp_path / "implicit.dcm"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(implicit, enforce_file_format=True)
    assert read_fast_header(str(implicit), dicom_scan._WANTED) is None
    (rec,) = dicom_scan.scan_file(implicit)
    assert rec.instance_number == int(ds.InstanceNumber) and rec.fast_pixels is not None
