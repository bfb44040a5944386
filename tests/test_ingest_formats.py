"""UK Biobank, ACDC NIfTI and MRNet ingest; summary --json; check finds corruption."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from planessl.cache import Cache
from planessl.cli import main
from planessl.ingest import detect_format, ingest
from planessl.io.acdc import patient_id


@pytest.fixture(scope="module")
def phantom_study():
    from planessl.phantom import make_study

    return make_study(0, 1, frames=3)


def test_ukbb_phantom_labels_converted_to_acdc_convention(tmp_path, phantom_study):
    from planessl.phantom.writers import write_subject

    write_subject(phantom_study, tmp_path / "src", "ukbb")
    assert detect_format(tmp_path / "src") == "ukbb"
    out = tmp_path / "cache"
    report = ingest([tmp_path / "src"], out, progress=False)
    assert not report.skipped
    got = Cache(out).load(Cache(out).ids[0])
    for ref in phantom_study.series:
        (s,) = got.views(ref.view)
        assert s.pixels.shape == ref.pixels.shape
        np.testing.assert_allclose(s.pixels, np.rint(ref.pixels))
        keep = np.isin(ref.labels, (1, 2, 3)) if ref.view == "sax" else np.isin(ref.labels, (1, 2, 3, 4, 5, 6))
        np.testing.assert_array_equal(s.labels[keep], ref.labels[keep])  # 1 RV 2 myo 3 LV kept
        for a, b in zip(s.planes, ref.planes):
            np.testing.assert_allclose(a.origin, b.origin, atol=1e-3)


def test_ukbb_bad_seg_and_nan_named(tmp_path, phantom_study):
    from planessl.phantom.writers import write_subject

    write_subject(phantom_study, tmp_path / "src", "ukbb")
    folder = next((tmp_path / "src").iterdir())
    seg = nib.load(folder / "seg_sa.nii.gz")
    data = np.asarray(seg.dataobj).copy()
    data[0, 0, 0, 0] = 9
    nib.save(nib.Nifti1Image(data, seg.affine, seg.header), folder / "seg_sa.nii.gz")
    img = nib.load(folder / "la_2ch.nii.gz")
    bad = np.asarray(img.dataobj).astype(np.float32)
    bad[1, 1, 0, 0] = np.nan
    hdr = img.header.copy()
    hdr.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(bad, img.affine, hdr), folder / "la_2ch.nii.gz")
    report = ingest([tmp_path / "src"], tmp_path / "cache", progress=False)
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert "label values [9]" in reasons["seg_sa.nii.gz"]
    assert "NaN" in reasons["la_2ch.nii.gz"]
    assert "sax" in report.cached[0]["views"] and "2ch" not in report.cached[0]["views"]


def test_acdc_nifti_phantom(tmp_path, phantom_study):
    from planessl.phantom.writers import write_subject

    write_subject(phantom_study, tmp_path / "src", "acdc", index=6)
    assert detect_format(tmp_path / "src") == "acdc"
    out = tmp_path / "cache"
    ingest([tmp_path / "src"], out, progress=False)
    cache = Cache(out)
    assert cache.ids == [patient_id(7)]  # same id as the HDF5 layout would give
    s = cache.load(patient_id(7)).series[0]
    ref = phantom_study.views("sax")[0]
    assert s.pixels.shape == ref.pixels.shape  # the 4D cine
    assert (s.ed_frame, s.es_frame) == (ref.ed_frame, ref.es_frame)
    assert s.labelled_frames == sorted({ref.ed_frame, ref.es_frame})
    ed = ref.labels[:, ref.ed_frame]
    np.testing.assert_array_equal(s.labels[:, ref.ed_frame], np.where(ed <= 3, ed, 0))
    assert "class" in cache.entry(patient_id(7))["targets"]


def write_mrnet(root, exams=(3, 4)):
    rng = np.random.default_rng(0)
    for view in ("sagittal", "coronal", "axial"):
        (root / "train" / view).mkdir(parents=True)
        for e in exams:
            np.save(root / "train" / view / f"{e:04d}.npy",
                    rng.integers(0, 255, (5 + e, 32, 32), dtype=np.uint8))
    for t, vals in (("abnormal", (1, 0)), ("acl", (0, 0)), ("meniscus", (1, 1))):
        (root / f"train-{t}.csv").write_text("".join(f"{e},{v}\n" for e, v in zip(exams, vals)))


def test_mrnet_and_summary_json(tmp_path, capsys):
    write_mrnet(tmp_path / "src")
    out = tmp_path / "cache"
    assert main(["ingest", str(tmp_path / "src"), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["summary", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"studies", "skipped"}
    assert len(data["studies"]) == 2
    for s in data["studies"]:
        assert set(s) == {"id", "views", "labels"} and s["labels"] is False
        assert set(s["views"]) == {"sagittal", "coronal", "axial"}
        assert all(set(v) == {"slices", "frames"} and v["frames"] == 1 for v in s["views"].values())
    cache = Cache(out)
    targets = sorted(tuple(sorted(cache.entry(i)["targets"].items())) for i in cache.ids)
    assert targets == [(("abnormal", 0), ("acl", 0), ("meniscus", 1)),
                       (("abnormal", 1), ("acl", 0), ("meniscus", 1))]
    st = cache.load(cache.ids[0])
    assert st.group == "knee" and not st.series[0].spacing_known


def test_check_finds_corruption(tmp_path, capsys):
    write_mrnet(tmp_path / "src")
    out = tmp_path / "cache"
    ingest([tmp_path / "src"], out, progress=False)
    assert main(["check", str(out)]) == 0
    ids = Cache(out).ids
    (out / "studies" / ids[0] / "axial.pixels.npy").unlink()
    np.save(out / "studies" / ids[1] / "coronal.pixels.npy", np.zeros((2, 1, 4, 4), np.float32))
    meta_path = out / "studies" / ids[1] / "study.json"
    meta = json.loads(meta_path.read_text())
    meta["series"][0]["planes"][0]["row_dir"] = [1, 0.5, 0]
    meta_path.write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["check", str(out)]) == 1
    err = capsys.readouterr().err
    assert "axial.pixels.npy: missing" in err
    assert "coronal.pixels.npy: shape" in err
    assert "orthonormal" in err


@pytest.mark.realdata
def test_real_shared_data_ingest(shared_data, tmp_path):
    out = tmp_path / "cache"
    report = ingest([shared_data / "ukbb_demo", shared_data / "mrnet_sample"], out,
                    workers=2, progress=False)
    assert not report.skipped
    cache = Cache(out)
    views = [set(cache.entry(i)["views"]) for i in cache.ids]
    assert {"sax", "2ch", "4ch"} in views
    assert sum(v == {"sagittal", "coronal", "axial"} for v in views) == 5
    ukbb = next(cache.load(i) for i in cache.ids if "sax" in cache.entry(i)["views"])
    sax = ukbb.views("sax")[0]
    assert sax.pixels.shape[0] == 12 and set(np.unique(sax.labels)) <= {0, 1, 2, 3}
    # RV (1) lies on the patient's right (smaller L coordinate) of the LV (3) in LPS
    k = sax.n_slices // 2
    ii, jj = np.nonzero(sax.labels[k, sax.ed_frame] == 1)
    rv = sax.planes[k].pixel_to_world(ii.mean(), jj.mean())
    ii, jj = np.nonzero(sax.labels[k, sax.ed_frame] == 3)
    lv = sax.planes[k].pixel_to_world(ii.mean(), jj.mean())
    assert rv[0] < lv[0]
