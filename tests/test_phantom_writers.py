"""Phantom writers and the ``planessl phantom`` command: geometry read back equals the
generator's, same seed gives same bytes, bad arguments are refused, runs are atomic."""

import argparse
import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from planessl.commands import phantom as phantom_command
from planessl.errors import PlaneSSLError
from planessl.io import dicom as dicom_io
from planessl.io import nifti as nifti_io
from planessl.phantom import make_study
from planessl.phantom.writers import write_subject

FRAMES = 3


@pytest.fixture(scope="module")
def study():
    return make_study(1, 4, frames=FRAMES)


def assert_same_plane(read, meant, thickness=True):
    assert np.allclose(read.origin, meant.origin, atol=1e-4)
    assert np.allclose(read.row_dir, meant.row_dir, atol=1e-5)
    assert np.allclose(read.col_dir, meant.col_dir, atol=1e-5)
    assert np.allclose(read.spacing, meant.spacing, atol=1e-5)
    assert read.shape == meant.shape
    if thickness:
        assert read.thickness == pytest.approx(meant.thickness, abs=1e-5)


def test_dicom_layout_geometry_pixels_labels(study, tmp_path):
    root = write_subject(study, tmp_path, "dicom", 4)
    assert root.name == study.id
    sax = study.views("sax")[0]
    folders = sorted(p.name for p in (root / "study").iterdir())
    assert folders == sorted([f"sax_{10 + k}" for k in range(sax.n_slices)]
                             + ["2ch_2", "3ch_3", "4ch_4"])
    uids = set()
    for s in study.series:
        for k, plane in enumerate(s.planes):
            folder = root / "study" / (f"sax_{10 + k}" if s.view == "sax" else
                                       {"2ch": "2ch_2", "3ch": "3ch_3", "4ch": "4ch_4"}[s.view])
            files = sorted(folder.glob("IM-*.dcm"))
            assert len(files) == FRAMES
            for f, path in enumerate(files):
                pixels, planes = dicom_io.read_image(path)
                assert_same_plane(planes[0], plane)
                assert np.abs(pixels[0] - s.pixels[k, f]).max() <= 0.5 + 1e-3
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                assert ds.SOPClassUID == pydicom.uid.MRImageStorage
                assert ds.InstanceNumber == f + 1
                assert float(ds.TriggerTime) == pytest.approx(s.frame_times[f], abs=0.01)
                assert ds.SeriesDescription and ds.PatientID and str(ds.PatientName)
                assert ds.FrameOfReferenceUID and ds.StudyInstanceUID
                uids.add(ds.SOPInstanceUID)
            saved = np.load(folder / "labels.npz")
            assert np.array_equal(saved["labels"], s.labels[k])
            assert list(saved["frames"]) == s.labelled_frames
            assert list(saved["instance_numbers"]) == list(range(1, FRAMES + 1))
    assert len(uids) == sum(s.n_slices for s in study.series) * FRAMES
    # SliceLocation increases from base to apex along the SAX stack.
    locs = [float(pydicom.dcmread(next((root / "study" / f"sax_{10 + k}").glob("*.dcm")),
                                  stop_before_pixels=True).SliceLocation)
            for k in range(sax.n_slices)]
    assert np.allclose(np.diff(locs), np.diff(locs)[0], atol=1e-3) and np.diff(locs)[0] > 0


def test_ukbb_layout_geometry_and_label_convention(study, tmp_path):
    root = write_subject(study, tmp_path, "ukbb", 4)
    names = {"sax": "sa", "2ch": "la_2ch", "3ch": "la_3ch", "4ch": "la_4ch"}
    for s in study.series:
        stem = names[s.view]
        img = nib.load(root / f"{stem}.nii.gz")
        assert img.shape == s.planes[0].shape + (s.n_slices, FRAMES)
        assert int(img.header["sform_code"]) == 1
        planes = nifti_io.read_planes(root / f"{stem}.nii.gz")
        for read, meant in zip(planes, s.planes):
            # NIfTI keeps the slice spacing, not the thickness, for a stack.
            assert_same_plane(read, meant, thickness=s.n_slices == 1)
        ed, _ = nifti_io.read_volume(root / f"{stem}_ED.nii.gz")
        assert np.abs(ed[..., 0].transpose(2, 0, 1) - s.pixels[:, s.ed_frame]).max() <= 0.5 + 1e-3
    sax = study.views("sax")[0]
    seg, _ = nifti_io.read_volume(root / "seg_sa_ES.nii.gz")
    seg = seg[..., 0].transpose(2, 0, 1)
    ours = sax.labels[:, sax.es_frame]
    # UK Biobank convention: 1 LV, 2 myocardium, 3 RV.
    assert np.array_equal(seg == 1, ours == 3) and np.array_equal(seg == 3, ours == 1)
    assert np.array_equal(seg == 2, ours == 2)
    la4, _ = nifti_io.read_volume(root / "seg_la_4ch_ED.nii.gz")
    assert set(np.unique(la4)) <= {0, 1, 2} and (la4 == 1).any()


def test_acdc_layout(study, tmp_path):
    root = write_subject(study, tmp_path, "acdc", 4, {"height_cm": 170.0, "weight_kg": 70.0})
    sax = study.views("sax")[0]
    assert root.name == "patient005"
    info = dict(line.split(": ") for line in (root / "Info.cfg").read_text().splitlines())
    assert int(info["ED"]) == sax.ed_frame + 1 and int(info["ES"]) == sax.es_frame + 1
    assert int(info["NbFrame"]) == FRAMES
    assert info["Group"] in ("NOR", "HCM", "DCM") and float(info["Height"]) == 170.0
    gt, planes = nifti_io.read_volume(root / f"patient005_frame{sax.es_frame + 1:02d}_gt.nii.gz")
    expect = np.where(sax.labels[:, sax.es_frame] <= 3, sax.labels[:, sax.es_frame], 0)
    assert np.array_equal(gt[..., 0].transpose(2, 0, 1), expect)
    assert nib.load(root / "patient005_4d.nii.gz").shape[3] == FRAMES
    for read, meant in zip(planes, sax.planes):
        assert_same_plane(read, meant, thickness=False)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "phantom_run.json"}


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    phantom_command.register(parser.add_subparsers())
    args = parser.parse_args(["phantom", *argv])
    return args.func(args)


@pytest.mark.parametrize("fmt", ["dicom", "ukbb"])
def test_same_seed_same_bytes_any_workers(tmp_path, fmt):
    common = ["--subjects", "2", "--format", fmt, "--seed", "9", "--frames", "2"]
    assert _run(*common, "--out", str(tmp_path / "a")) == 0
    assert _run(*common, "--out", str(tmp_path / "b"), "--workers", "2") == 0
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert len(a) > 10 and a == b


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(PlaneSSLError, match="--subjects"):
        _run("--subjects", "-1", "--out", str(tmp_path / "x"))
    with pytest.raises(PlaneSSLError, match="unknown --format"):
        _run("--subjects", "1", "--format", "png", "--out", str(tmp_path / "x"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(PlaneSSLError, match="not empty"):
        _run("--subjects", "1", "--out", str(other))
    assert (other / "notes.txt").read_text() == "mine" and len(list(other.iterdir())) == 1


def test_interrupted_run_is_completed_without_half_subjects(tmp_path):
    out = tmp_path / "run"
    args = ["--subjects", "2", "--format", "acdc", "--frames", "2", "--out", str(out)]
    assert _run(*args) == 0
    complete = _digest(out)
    # Simulate an interruption: one subject missing, a half-written temporary folder left.
    import shutil
    shutil.rmtree(out / "patient002")
    (out / ".tmp-patient002-123").mkdir()
    (out / ".tmp-patient002-123" / "Info.cfg").write_text("ED: 1\n")
    assert _run(*args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["patient001", "patient002",
                                                     "phantom_run.json"]
    assert _digest(out) == complete
    # Another seed into the same folder is refused.
    with pytest.raises(PlaneSSLError):
        _run(*args, "--seed", "5")


def test_write_failure_leaves_no_subject(tmp_path, monkeypatch):
    import planessl.phantom.writers as writers

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(writers, "write_ukbb", boom)
    with pytest.raises(RuntimeError):
        write_subject(make_study(0, 0, frames=2), tmp_path, "ukbb")
    assert list(tmp_path.iterdir()) == []
