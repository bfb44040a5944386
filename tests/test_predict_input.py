"""``planessl predict --input``: source DICOM series and NIfTI volumes, traceable names,
labels on the input's own grid, optional DICOM SEG."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from planessl.cli import main
from planessl.phantom import make_study
from planessl.phantom.writers import write_dicom
from planessl.predict import stack_affine

FT = ["model.preset=tiny", "trainer.progress_bar=false", "trainer.threads=1", "data.batch_size=4",
      "finetune.steps=3", "finetune.val_every_n_steps=3", "split.val_size=1",
      "split.pool_size=3", "split.test_fraction=0.25"]


@pytest.fixture(scope="module")
def model(phantom_cache, tmp_path_factory) -> Path:
    """A tiny segmentation model trained for a few steps from scratch."""
    out = tmp_path_factory.mktemp("ft") / "run"
    assert main(["finetune", "--data", str(phantom_cache), "--labelled", "2", "--init", "scratch",
                 "--out", str(out), "--seed", "1"] + FT) == 0
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[Path, Path, object]:
    """One phantom study written as DICOM (one folder per SAX slice) and its SAX as NIfTI."""
    root = tmp_path_factory.mktemp("src")
    study = make_study(3, 0, frames=2)
    write_dicom(study, root / "exam1")
    sax = study.views("sax")[0]
    nii = root / "nifti" / "case1_SA_ED.nii.gz"
    nii.parent.mkdir()
    vol = np.asarray(sax.pixels[:, 0]).transpose(1, 2, 0)
    nib.save(nib.Nifti1Image(vol, stack_affine(sax.planes)), str(nii))
    nib.save(nib.Nifti1Image(np.zeros(vol.shape, np.uint8), stack_affine(sax.planes)),
             str(root / "nifti" / "case1_SA_ED_gt.nii.gz"))
    (root / "nifti" / "broken.nii.gz").write_bytes(b"not a nifti")
    return root / "exam1", root / "nifti", study


def _sax_files(exam: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(f, stop_before_pixels=True)
            for f in sorted(exam.glob("study/sax_*/*.dcm"))]


def test_nifti_input_named_after_file_on_its_grid(model, sources, tmp_path, capsys):
    _, nifti, _ = sources
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", str(nifti), "--out", str(out)]) == 0
    err = capsys.readouterr().out
    assert "broken.nii.gz" in err and "case1_SA_ED_gt.nii.gz: named like a label map" in err
    src = nib.load(str(nifti / "case1_SA_ED.nii.gz"))
    pred = nib.load(str(out / "case1_SA_ED_pred.nii.gz"))
    assert pred.shape == src.shape and np.allclose(pred.affine, src.affine)
    assert pred.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2, 3}
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["case1_SA_ED_pred.nii.gz"]
    index = json.loads((out / "predictions.json").read_text())
    assert index["entries"][0]["source"] == str(nifti / "case1_SA_ED.nii.gz")


def _check_grid(pred, files: list[pydicom.Dataset], n_slices: int, n_frames: int) -> None:
    """The label map's array and affine are those of the DICOM images."""
    ds = files[0]
    assert pred.shape == (int(ds.Rows), int(ds.Columns), n_slices, n_frames)
    # voxel (0, 0, k) lands on the ImagePositionPatient of a slice (RAS = -x, -y, z of LPS)
    positions = np.unique(np.round([np.asarray(d.ImagePositionPatient, float) for d in files], 3),
                          axis=0)
    assert len(positions) == n_slices
    for k in range(n_slices):
        ras = pred.affine @ np.array([0, 0, k, 1.0])
        lps = np.array([-ras[0], -ras[1], ras[2]])
        assert np.abs(positions - lps).max(axis=1).min() < 1e-3
    # axis i runs down the columns (IOP column cosine), axis j along the rows
    iop = np.asarray(ds.ImageOrientationPatient, float)
    flip, spacing = np.array([-1, -1, 1]), np.asarray(ds.PixelSpacing, float)
    assert np.allclose(pred.affine[:3, 0], flip * iop[3:] * spacing[0], atol=1e-4)
    assert np.allclose(pred.affine[:3, 1], flip * iop[:3] * spacing[1], atol=1e-4)


def _check_segs(hd, out: Path, names: list[str], pred, files: list[pydicom.Dataset],
                n_slices: int, n_frames: int) -> None:
    """One SEG per frame: 3 labelled segments, every source image referenced once, masks
    equal to the NIfTI label map on each source image."""
    assert len(names) == n_frames
    by_uid = {d.SOPInstanceUID: d for d in files}
    labels = np.asarray(pred.dataobj)
    inv = np.linalg.inv(pred.affine)
    referenced: list[str] = []
    for f, name in enumerate(names):
        seg = hd.seg.segread(str(out / name))
        assert pydicom.dcmread(out / name).Modality == "SEG"
        assert seg.number_of_segments == 3
        assert [d.SegmentLabel for d in seg.SegmentSequence] == ["RV", "myocardium", "LV"]
        assert seg.SegmentSequence[2].SegmentedPropertyTypeCodeSequence[0].CodeValue == "87878005"
        uids = [u[2] for u in seg.get_source_image_uids()]
        assert len(uids) == n_slices and set(uids) <= set(by_uid)
        referenced += uids
        for uid in uids:
            ds = by_uid[uid]
            mask = seg.get_pixels_by_source_instance([uid], segment_numbers=[1, 2, 3],
                                                     combine_segments=True)[0]
            lps = np.asarray(ds.ImagePositionPatient, float)
            k = int(round((inv @ np.array([-lps[0], -lps[1], lps[2], 1.0]))[2]))
            assert np.array_equal(mask, labels[:, :, k, f])
    assert sorted(referenced) == sorted(by_uid)


def test_dicom_stack_of_single_slice_series_named_by_description(model, sources, tmp_path,
                                                                 capsys):
    """Kaggle-style export (one series folder per SAX slice): one label map named by the
    SeriesDescription, one SEG per cine frame referencing the images of every series."""
    hd = pytest.importorskip("highdicom")
    exam, _, study = sources
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", str(exam), "--out", str(out),
                 "--dicom-seg"]) == 0
    log = capsys.readouterr().out
    assert "2ch_2: a 2ch series; the model segments sax" in log  # listed, not predicted
    index = json.loads((out / "predictions.json").read_text())
    [entry] = index["entries"]
    assert entry["file"] == "CINE_segmented_SAX_pred.nii.gz"
    assert entry["series_description"] == "CINE_segmented_SAX"
    sax = study.views("sax")[0]
    files = _sax_files(exam)
    pred = nib.load(str(out / entry["file"]))
    _check_grid(pred, files, sax.n_slices, sax.n_frames)
    assert entry["dicom_seg"] == [f"CINE_segmented_SAX_seg_t{f:02d}.dcm" for f in range(2)]
    _check_segs(hd, out, entry["dicom_seg"], pred, files, sax.n_slices, sax.n_frames)


def test_dicom_series_folder_named_by_folder(model, sources, tmp_path):
    """A scanner-style series (all slices and frames in one series, one folder, files
    without extension) is named by its folder; its SEG references that series."""
    hd = pytest.importorskip("highdicom")
    exam, _, study = sources
    series = tmp_path / "Exam 7" / "SAX cine (stack)"
    series.mkdir(parents=True)
    files = _sax_files(exam)
    for n, src in enumerate(sorted(exam.glob("study/sax_*/*.dcm"))):
        ds = pydicom.dcmread(src)
        ds.SeriesInstanceUID, ds.SeriesNumber = files[0].SeriesInstanceUID, 5
        ds.InstanceNumber = n + 1
        ds.save_as(series / f"IM{n:04d}")
    files = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(series.iterdir())]
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", str(tmp_path / "Exam 7"),
                 "--out", str(out), "--dicom-seg"]) == 0
    [entry] = json.loads((out / "predictions.json").read_text())["entries"]
    assert entry["file"] == "SAX_cine_stack_pred.nii.gz" and entry["source"] == str(series)
    sax = study.views("sax")[0]
    pred = nib.load(str(out / entry["file"]))
    _check_grid(pred, files, sax.n_slices, sax.n_frames)
    _check_segs(hd, out, entry["dicom_seg"], pred, files, sax.n_slices, sax.n_frames)
    seg = pydicom.dcmread(out / entry["dicom_seg"][0])
    assert [s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence] == \
        [files[0].SeriesInstanceUID]


def test_bad_inputs_one_line_each_rest_goes_on(model, sources, tmp_path, capsys):
    _, nifti, _ = sources
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", str(tmp_path / "missing"),
                 str(nifti / "broken.nii.gz"), str(nifti / "case1_SA_ED.nii.gz"),
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(str(tmp_path / "missing") in ln and "no such file" in ln for ln in lines)
    assert any("broken.nii.gz" in ln and "skipped" in ln for ln in lines)
    assert (out / "case1_SA_ED_pred.nii.gz").is_file()
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_no_usable_input_exits_2_with_one_line(model, sources, tmp_path, capsys):
    _, nifti, _ = sources
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", str(tmp_path / "missing"),
                 str(nifti / "broken.nii.gz"), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "no input could be predicted" in captured.err + captured.out
    assert not list(out.glob("*_pred.nii.gz"))


def test_name_clash_gets_input_prefix(model, sources, tmp_path):
    _, nifti, _ = sources
    other = tmp_path / "site2"
    other.mkdir()
    (other / "case1_SA_ED.nii.gz").write_bytes((nifti / "case1_SA_ED.nii.gz").read_bytes())
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", str(nifti / "case1_SA_ED.nii.gz"),
                 str(other), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.nii.gz")) == \
        ["case1_SA_ED_pred.nii.gz", "site2_case1_SA_ED_pred.nii.gz"]


def test_blanked_uids_label_map_yes_seg_no_with_one_line(model, sources, tmp_path, capsys):
    """An anonymised export without UIDs still gets its label map; the SEG, which could not
    reference the images, is declined on one line."""
    exam, _, _ = sources
    series = tmp_path / "anon" / "cine"
    series.mkdir(parents=True)
    for n, src in enumerate(sorted(exam.glob("study/sax_1[0-3]/*.dcm"))):
        ds = pydicom.dcmread(src)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            setattr(ds, keyword, "")
        ds.save_as(series / f"IM{n}")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", str(series), "--out", str(out),
                 "--dicom-seg"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "no DICOM SEG" in ln]
    assert len(lines) == 1 and "SOPInstanceUID" in lines[0] and str(series) in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["cine_pred.nii.gz", "predictions.json"]


def test_dicom_seg_needs_input(model, tmp_path, capsys):
    assert main(["predict", "--model", str(model), "--data", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--dicom-seg"]) == 2
    assert "--dicom-seg needs --input" in capsys.readouterr().err


def test_truncated_inputs_one_line_each_rest_goes_on(model, sources, tmp_path, capsys):
    """A truncated .nii.gz and a truncated DICOM file beside good inputs: one line each
    naming the file and why; the good volume and the DICOM series without the cut file are
    still segmented."""
    exam, nifti, _ = sources
    cut_nii = tmp_path / "cut_SA_ED.nii.gz"
    raw = (nifti / "case1_SA_ED.nii.gz").read_bytes()
    cut_nii.write_bytes(raw[: len(raw) // 2])
    series = tmp_path / "dicom" / "sax_cine"
    series.mkdir(parents=True)
    srcs = sorted(exam.glob("study/sax_1[0-3]/*.dcm"))
    for src in srcs:
        (series / f"{src.parent.name}_{src.name}").write_bytes(src.read_bytes())
    cut_dcm = sorted(series.iterdir())[0]
    raw = cut_dcm.read_bytes()
    cut_dcm.write_bytes(raw[: int(len(raw) * 0.8)])
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", str(cut_nii),
                 str(nifti / "case1_SA_ED.nii.gz"), str(series), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Traceback" not in text
    for cut in (cut_nii, cut_dcm):
        named = [ln for ln in text.splitlines() if str(cut) in ln]
        assert len(named) == 1 and "truncated" in named[0], text
    assert (out / "case1_SA_ED_pred.nii.gz").is_file()
    index = json.loads((out / "predictions.json").read_text())
    assert len(index["entries"]) == 2
