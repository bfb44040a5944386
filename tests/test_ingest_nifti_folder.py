"""Any NIfTI folder: a challenge-style layout (<id>_SA_ED.nii.gz, <id>_SA_ED_gt.nii.gz,
<id>_LA_ED.nii.gz, ...) made from phantom studies is read with subjects, views, phases and
labels; what cannot be matched is listed with why; nothing cached names the formats tried."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from planessl.cache import Cache
from planessl.cli import main
from planessl.geometry import Plane, affine_from_planes
from planessl.ingest import detect_format, ingest
from planessl.io.nifti_names import parse_name
from planessl.io.sources import opaque_id
from planessl.study import Series


@pytest.fixture(scope="module")
def studies():
    from planessl.phantom import make_study

    return [make_study(0, i, frames=3) for i in range(2)]


def _save(data: np.ndarray, planes: list[Plane], path: Path) -> None:
    """(S, H, W) array as a NIfTI volume (X, Y, Z) with the planes' affine."""
    img = nib.Nifti1Image(np.ascontiguousarray(data.transpose(1, 2, 0)),
                          affine_from_planes(planes, ras=True))
    img.header.set_sform(img.affine, code=1)
    nib.save(img, str(path))


def _phase(s: Series, tag: str) -> int:
    return s.ed_frame if tag == "ED" else s.es_frame


def write_challenge(study, folder: Path, sid: str, lv_first: bool = False) -> None:
    """M&Ms-2-like files of one subject: SA ED/ES (+gt), LA (4CH) ED/ES, LA ED gt; the LA ES
    label is cropped to another grid (unmatched)."""
    sax, lax = study.views("sax")[0], study.views("4ch")[0]
    # lv_first: the M&Ms / UK Biobank convention (1 LV, 2 myo, 3 RV) instead of ACDC's
    lut = np.array([0, 3, 2, 1, 4, 5, 6] if lv_first else range(7), np.uint8)
    for tag in ("ED", "ES"):
        f = _phase(sax, tag)
        _save(np.rint(sax.pixels[:, f]).astype(np.int16), sax.planes,
              folder / f"{sid}_SA_{tag}.nii.gz")
        _save(lut[sax.labels[:, f]], sax.planes, folder / f"{sid}_SA_{tag}_gt.nii.gz")
        g = _phase(lax, tag)
        _save(np.rint(lax.pixels[:, g]).astype(np.int16), lax.planes,
              folder / f"{sid}_LA_{tag}.nii.gz")
    _save(lut[lax.labels[:, _phase(lax, "ED")]], lax.planes, folder / f"{sid}_LA_ED_gt.nii.gz")
    small = [p.centre_crop(64, 64) for p in lax.planes]
    _save(lut[lax.labels[:, _phase(lax, "ES"), 32:96, 32:96]], small,
          folder / f"{sid}_LA_ES_gt.nii.gz")


@pytest.fixture(scope="module")
def challenge(studies, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mnms") / "dataset"
    root.mkdir()
    write_challenge(studies[0], root, "001")
    write_challenge(studies[1], root, "002", lv_first=True)
    (root / "readme.txt").write_text("challenge data")
    return root


def test_names_parsed():
    n = parse_name(Path("001_SA_ED_gt.nii.gz"))
    assert (n.prefix, n.series, n.phase, n.label) == ("001", "sa", "ED", True)
    assert n.image_stem == "001_SA_ED"
    n = parse_name(Path("seg_sa_ES.nii"))
    assert (n.prefix, n.series, n.phase, n.label) == ("", "sa", "ES", True)
    n = parse_name(Path("patient001_frame_12.nii.gz"))
    assert (n.prefix, n.series, n.phase, n.label) == ("patient001", "", "frame12", False)
    assert parse_name(Path("A0S9V9_sa_mask.nii.gz")).base == \
        parse_name(Path("A0S9V9_sa.nii.gz")).base


def test_challenge_folder(challenge, studies, tmp_path):
    assert detect_format(challenge) == "nifti"
    out = tmp_path / "cache"
    report = ingest([challenge], out, progress=False)  # --format auto
    assert report.formats == {"nifti": 2} and len(report.cached) == 2
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"001_LA_ES_gt.nii.gz", "002_LA_ES_gt.nii.gz", "readme.txt"}
    assert "another grid than its image 001_LA_ES.nii.gz" in reasons["001_LA_ES_gt.nii.gz"]
    assert "64x64x1 vs" in reasons["001_LA_ES_gt.nii.gz"]
    assert "not a NIfTI file" in reasons["readme.txt"]
    cache = Cache(out)
    got = [cache.load(opaque_id(f"nifti:dataset/{sid}")) for sid in ("001", "002")]
    for ref, st in zip(studies, got):
        views = {s.view for s in st.series}
        (sax,) = st.views("sax")
        (lax,) = [s for s in st.series if s.view != "sax"]
        assert views == {"sax", lax.view} and lax.view in ("2ch", "3ch", "4ch")
        assert "geometry" in lax.view_reason
        r_sax, r_lax = ref.views("sax")[0], ref.views("4ch")[0]
        assert sax.pixels.shape == (r_sax.n_slices, 2) + r_sax.image_shape
        assert (sax.ed_frame, sax.es_frame) == (0, 1) and sax.labelled_frames == [0, 1]
        for f, tag in enumerate(("ED", "ES")):
            np.testing.assert_array_equal(sax.labels[:, f], r_sax.labels[:, _phase(r_sax, tag)])
            np.testing.assert_allclose(sax.pixels[:, f],
                                       np.rint(r_sax.pixels[:, _phase(r_sax, tag)]))
        for a, b in zip(sax.planes, r_sax.planes):
            np.testing.assert_allclose(a.origin, b.origin, atol=1e-3)
        assert lax.pixels.shape[:2] == (1, 2) and lax.labelled_frames == [0]  # ES gt unmatched
        np.testing.assert_array_equal(lax.labels[:, 0], r_lax.labels[:, _phase(r_lax, "ED")])
    assert "label 1 is the LV" in got[1].views("sax")[0].view_reason


def test_cli_format_nifti_and_summary(challenge, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(["ingest", str(challenge), "--out", str(out), "--format", "nifti",
                 "--no-progress", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 studies; 3 files skipped" in text
    rows = [line for line in text.splitlines() if " yes " in line]
    assert len(rows) == 2 and all("sax " in r and "x2" in r for r in rows)
    # the cache names files by opaque id and position, never by name (issue 20)
    assert "of the study): label volume on another grid than its image <file>" in text
    assert "001_LA_ES" not in text


def test_nothing_cached_names_formats(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("x")
    (src / "001_SA_ED_gt.nii.gz").write_bytes(b"")  # a label with no image
    assert main(["ingest", str(src), "--out", str(tmp_path / "c"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "nothing was cached: tried nifti (detected from the file names)" in err
    assert "1 NIfTI" in err and "formats: dicom, ukbb, acdc, acdc-h5, mrnet, nifti" in err
    assert main(["ingest", str(src), "--out", str(tmp_path / "c"), "--format", "dicom",
                 "--no-progress"]) == 1
    assert "try --format nifti" in capsys.readouterr().err


def test_subject_folders_with_cine_and_phase_files(studies, tmp_path):
    """One folder per subject, names without a prefix: SA_CINE (4D) with SA_ED / SA_ES and
    their labels; the phase files are found in the cine, so the labels land on its frames."""
    ref = studies[0].views("sax")[0]
    root = tmp_path / "src"
    for subject in ("a", "b"):
        d = root / subject
        d.mkdir(parents=True)
        cine = np.rint(ref.pixels).astype(np.int16)  # (S, T, H, W)
        img = nib.Nifti1Image(np.ascontiguousarray(cine.transpose(2, 3, 0, 1)),
                              affine_from_planes(ref.planes, ras=True))
        img.header.set_sform(img.affine, code=1)
        img.header.set_xyzt_units("mm", "sec")
        img.header.set_zooms(img.header.get_zooms()[:3] + (0.04,))
        nib.save(img, str(d / "SA_CINE.nii.gz"))
        for tag in ("ED", "ES"):
            f = _phase(ref, tag)
            _save(cine[:, f], ref.planes, d / f"SA_{tag}.nii.gz")
            _save(ref.labels[:, f], ref.planes, d / f"SA_{tag}_seg.nii.gz")
    assert detect_format(root) == "nifti"
    report = ingest([root], tmp_path / "cache", progress=False)
    assert len(report.cached) == 2 and not report.skipped
    cache = Cache(tmp_path / "cache")
    (s,) = cache.load(cache.ids[0]).series
    assert s.view == "sax" and s.pixels.shape == ref.pixels.shape
    assert (s.ed_frame, s.es_frame) == (ref.ed_frame, ref.es_frame)
    assert s.labelled_frames == sorted({ref.ed_frame, ref.es_frame})
    for f in s.labelled_frames:
        np.testing.assert_array_equal(s.labels[:, f], ref.labels[:, f])
    np.testing.assert_allclose(s.frame_times[1], 40.0)
