"""Commands that read source images given on the command line (``lines``, ``show-lines``,
``plan``, ``predict --input``) turn a damaged file into one line naming it and why: the other
inputs go on, or, where the file is required, ``planessl: error: ...`` and exit status 2,
never a traceback."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dicom_fixtures import write_image
from planessl.cli import main
from planessl.phantom import make_study
from planessl.phantom.writers import write_dicom


def _truncate(path: Path, keep: float) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    vol = (np.arange(24 * 24 * 8) % 97).reshape(24, 24, 8).astype(np.int16)
    affine = np.diag([1.5, 1.5, 6.0, 1.0])
    out = {}
    for name in ("good_sa.nii.gz", "cut_sa.nii.gz"):
        nib.save(nib.Nifti1Image(vol, affine), str(root / name))
        out[name] = root / name
    _truncate(out["cut_sa.nii.gz"], 0.5)
    for name, keep in (("good.dcm", 1.0), ("cut_pixels.dcm", 0.8), ("cut_header.dcm", 0.4)):
        p = write_image(root / name, study="1.2.5", series="1.2.5.1", number=1, desc="CINE_SAX",
                        origin=[0.0, 0.0, 0.0])
        out[name] = _truncate(p, keep) if keep < 1 else p
    return out


def _run(args: list[str], capsys) -> tuple[int, list[str]]:
    rc = main(args)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return rc, text.splitlines()


@pytest.mark.parametrize("bad,reason", [
    ("cut_sa.nii.gz:3", "voxel data cannot be read: the file is truncated"),
    ("cut_pixels.dcm", "file is truncated (pixel data ends early"),
    ("cut_header.dcm", "no pixel data: an image file truncated before its pixels"),
])
def test_lines_with_a_damaged_image_is_one_error_line(files, capsys, bad, reason):
    name, _, k = bad.partition(":")
    spec = str(files[name]) + (f":{k}" if k else "")
    good = str(files["good_sa.nii.gz"]) + ":2"
    rc, lines = _run(["lines", spec, good], capsys)
    assert rc == 2
    (line,) = [ln for ln in lines if str(files[name]) in ln]
    assert line.startswith(f"planessl: error: {files[name]}: {reason}"), line


def test_show_lines_skips_a_damaged_image_and_draws_the_rest(files, tmp_path, capsys):
    png = tmp_path / "lines.png"
    rc, lines = _run(["show-lines", str(files["good_sa.nii.gz"]) + ":1",
                      str(files["cut_sa.nii.gz"]) + ":2", str(files["good.dcm"]),
                      str(files["good_sa.nii.gz"]) + ":5", "--out", str(png),
                      "--titles", "a,b,c,d", "--any-frame-of-reference"], capsys)
    assert rc == 0, lines
    skipped = [ln for ln in lines if str(files["cut_sa.nii.gz"]) in ln]
    assert len(skipped) == 1 and "truncated" in skipped[0]
    assert png.is_file()
    rc, lines = _run(["show-lines", str(files["good_sa.nii.gz"]) + ":1",
                      str(files["cut_pixels.dcm"]), "--out", str(tmp_path / "x.png")], capsys)
    assert rc == 2  # both images are needed: the damaged one is the error
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"planessl: error: {files['cut_pixels.dcm']}: file is truncated")


def test_plan_names_a_damaged_localizer_file_and_plans_without_it(tmp_path, capsys):
    study = make_study(0, 2, frames=2, localizers=True)
    write_dicom(study, tmp_path / "exam")
    loc = sorted((tmp_path / "exam").rglob("*.dcm"))
    loc_sax = sorted(p for p in loc if "loc" in p.parent.name.lower()
                     and "sax" in p.parent.name.lower())
    assert len(loc_sax) >= 3
    cut = _truncate(loc_sax[1], 0.7)
    rc, lines = _run(["plan", str(tmp_path / "exam"), "--oracle", "--json"], capsys)
    assert rc == 0
    named = [ln for ln in lines if str(cut) in ln]
    assert len(named) == 1 and named[0].startswith(f"planessl: skipped {cut}: file is truncated")


def test_plan_on_a_damaged_file_alone_is_one_error_line(files, capsys):
    for name in ("cut_sa.nii.gz", "cut_pixels.dcm"):
        rc, lines = _run(["plan", str(files[name]), "--oracle"], capsys)
        assert rc == 2
        assert len(lines) == 1 and lines[0].startswith("planessl: error: ") \
            and "truncated" in lines[0], lines
