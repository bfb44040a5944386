"""``planessl lines``, ``planessl show-lines`` and ``planessl demo`` end to end, including
bad input: one clear line naming the file, exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from planessl.cli import main
from planessl.geometry_check import localizer_files


def _nifti(path: Path, affine: np.ndarray, shape=(20, 24, 3)) -> Path:
    img = nib.Nifti1Image(np.arange(np.prod(shape), dtype=np.float32).reshape(shape), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=0)
    nib.save(img, path)
    return path


@pytest.fixture
def two_volumes(tmp_path):
    # axial stack (RAS): x = i * 2 mm, y = j * 2 mm, z = 10 + 5 k
    axial = np.diag([2.0, 2.0, 5.0, 1.0])
    axial[2, 3] = 10.0
    # sagittal single slice at x = 16 mm (RAS): rows along -z, columns along y
    sag = np.array([[0, 0, 1.0, 16.0], [0, 1.5, 0, -4.0], [-1.5, 0, 0, 40.0], [0, 0, 0, 1]])
    return (_nifti(tmp_path / "axial.nii.gz", axial),
            _nifti(tmp_path / "sag.nii.gz", sag, shape=(30, 30, 1)))


def test_lines_json_on_nifti(two_volumes, capsys, tmp_path):
    axial, sag = two_volumes
    png = tmp_path / "line.png"
    assert main(["lines", f"{axial}:1", str(sag), "--json", "--png", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    # the sagittal plane x = 16 mm cuts the axial image at row i = 8 (x = 2 i)
    assert not out["parallel"] and out["angle_deg"] == pytest.approx(90.0)
    assert abs(out["a"]) == pytest.approx(1.0) and out["b"] == pytest.approx(0.0, abs=1e-12)
    assert -out["c"] / out["a"] == pytest.approx(8.0)
    assert out["endpoints"] == [[8.0, -0.5], [8.0, 23.5]] or \
        out["endpoints"] == [[8.0, 23.5], [8.0, -0.5]]
    assert png.read_bytes()[:4] == b"\x89PNG"
    # and the other way round: axial slice 1 is z = 15 mm; sagittal rows: z = 40 - 1.5 i
    assert main(["lines", str(sag), f"{axial}:1", "--json"]) == 0
    back = json.loads(capsys.readouterr().out)
    assert -back["c"] / back["a"] == pytest.approx(25 / 1.5)


def test_lines_text_and_parallel(two_volumes, capsys):
    axial, sag = two_volumes
    assert main(["lines", f"{axial}:0", f"{axial}:2"]) == 0
    assert "parallel" in capsys.readouterr().out
    assert main(["lines", f"{axial}:0", str(sag)]) == 0
    text = capsys.readouterr().out
    assert "a = " in text and "crosses A's field of view" in text and "90.000 deg" in text


def test_show_lines_png_and_table(two_volumes, capsys, tmp_path):
    axial, sag = two_volumes
    out = tmp_path / "sub" / "show.png"
    assert main(["show-lines", f"{axial}:0", f"{axial}:2", str(sag), "--out", str(out),
                 "--titles", "ax0,ax2,sag", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert len(table["lines"]) == 6
    pairs = {(r["A"], r["B"]): r for r in table["lines"]}
    assert pairs[("ax0", "ax2")]["parallel"] and not pairs[("ax0", "sag")]["parallel"]
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left
    assert main(["show-lines", f"{axial}:0", str(sag), "--out", str(out),
                 "--titles", "only-one"]) == 2
    assert "--titles has 1 titles for 2 images" in capsys.readouterr().err


def test_show_lines_refuses_mixed_frames_of_reference(capsys, tmp_path):
    files = localizer_files()  # three studies, three frames of reference
    out = tmp_path / "mixed.png"
    assert main(["show-lines", *files[:3], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "different DICOM frames of reference" in err and not out.exists()
    assert main(["show-lines", *files[:3], "--out", str(out), "--any-frame-of-reference"]) == 0


def test_geometry_check_writes_into_out(capsys, tmp_path):
    from planessl.geometry_check import run_geometry_check

    run_geometry_check(tmp_path / "geometry")
    text = capsys.readouterr().out
    assert "localizer 1" in text and "localizer 2" in text
    assert (tmp_path / "geometry" / "localizer_1.png").exists()


# ------------------------------------------------------------------- bad input
def _dicom_copy(tmp_path: Path, name: str, edit) -> Path:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    edit(ds)
    path = tmp_path / name
    ds.save_as(path)
    return path


def _one_error_line(capsys, argv, path, *fragments):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("planessl: error: ")
    assert str(path) in err[0]
    for f in fragments:
        assert f in err[0]
    assert "Traceback" not in captured.err


def test_bad_inputs_give_one_clear_line(tmp_path, capsys, two_volumes):
    axial, sag = two_volumes
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    _one_error_line(capsys, ["lines", str(text), str(sag)], text, "not an image")
    missing = tmp_path / "nope.dcm"
    _one_error_line(capsys, ["lines", str(sag), str(missing)], missing, "no such file")
    no_iop = _dicom_copy(tmp_path, "no_iop.dcm", lambda ds: delattr(ds, "ImageOrientationPatient"))
    _one_error_line(capsys, ["lines", str(no_iop), str(sag)], no_iop,
                    "missing ImageOrientationPatient")
    no_ipp = _dicom_copy(tmp_path, "no_ipp.dcm", lambda ds: delattr(ds, "ImagePositionPatient"))
    _one_error_line(capsys, ["lines", str(sag), str(no_ipp)], no_ipp,
                    "missing ImagePositionPatient")

    def skew(ds):
        ds.ImageOrientationPatient = [1, 0, 0, 0.3, 1, 0]
    skewed = _dicom_copy(tmp_path, "skew.dcm", skew)
    _one_error_line(capsys, ["lines", str(skewed), str(sag)], skewed, "not orthonormal")
    affine = np.eye(4)
    nocode = tmp_path / "nocode.nii"
    img = nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), affine)
    img.set_sform(affine, code=0)
    img.set_qform(affine, code=0)
    nib.save(img, nocode)
    _one_error_line(capsys, ["lines", f"{nocode}:0", str(sag)], nocode,
                    "sform_code and qform_code are both 0")
    _one_error_line(capsys, ["lines", f"{axial}:3", str(sag)], axial,
                    "slice index 3 is out of range (0..2)")
    _one_error_line(capsys, ["lines", str(axial), str(sag)], axial, "add :K")
    _one_error_line(capsys, ["show-lines", str(sag), str(text), "--out",
                             str(tmp_path / "x.png")], text, "not an image")


def test_valid_dicom_with_pixels_works(tmp_path, capsys, two_volumes):
    mr = get_testdata_file("MR_small.dcm")
    assert main(["lines", mr, str(two_volumes[1]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["A_shape"] == [64, 64]


def test_atomic_write_leaves_no_temp_and_normal_permissions(tmp_path):
    import os

    from planessl.atomic import atomic_path, write_text

    write_text(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_lines_without_frame_of_reference_uid_warns_and_matches(tmp_path, capsys):
    """Anonymisers blank FrameOfReferenceUID: the images are used together (one warning
    naming them) and give the same line as the originals."""
    from planessl.io.imagespec import load_image_spec

    by_for: dict[str, list[str]] = {}
    for f in localizer_files():
        by_for.setdefault(load_image_spec(f).frame_of_reference, []).append(f)
    a, b = next(files for files in by_for.values() if len(files) >= 2)[:2]
    assert main(["lines", a, b, "--json"]) == 0
    reference = json.loads(capsys.readouterr().out)
    blanked = []
    for k, f in enumerate((a, b)):
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = ""
        blanked.append(tmp_path / f"noref{k}")  # no extension either
        ds.save_as(blanked[-1])
    assert main(["lines", str(blanked[0]), str(blanked[1]), "--json"]) == 0
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    for key in ("a", "b", "c", "angle_deg"):
        assert got[key] == pytest.approx(reference[key])
    (warning,) = captured.err.strip().splitlines()
    assert "no FrameOfReferenceUID" in warning
    assert str(blanked[0]) in warning and str(blanked[1]) in warning
