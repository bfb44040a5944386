"""ACDC HDF5 reader: one study per patient, ED/ES frames, no invented spacing."""

import h5py
import numpy as np
import pytest

from planessl.cache import Cache
from planessl.cli import main
from planessl.errors import InputFileError
from planessl.geometry import stack_geometry
from planessl.io.acdc import patient_id, read_acdc_h5


def write_h5(path, image, label=None):
    with h5py.File(path, "w") as h:
        h["image"] = image
        if label is not None:
            h["label"] = label
        h["scribble"] = np.zeros(image.shape, np.uint16)


def fake_patient(folder, number, frames=(1, 12), shape=(6, 32, 28), lv=(300, 100), seed=0):
    rng = np.random.default_rng(seed)
    for frame, lv_px in zip(frames, lv):
        image = rng.uniform(0, 1, shape).astype(np.float32)
        label = np.zeros(shape, np.uint8)
        label.reshape(shape[0], -1)[:, :lv_px // shape[0]] = 3
        label[:, 0, :3] = 1
        label[0, 1, :10] = 2  # more myocardium at slice 0 (base)
        write_h5(folder / f"patient{number:03d}_frame{frame:02d}.h5", image, label)


def test_one_study_per_patient_with_ed_then_es(tmp_path):
    fake_patient(tmp_path, 1)
    fake_patient(tmp_path, 90, frames=(4, 11), lv=(400, 200), seed=1)
    studies = read_acdc_h5(tmp_path)
    assert [s.id for s in studies] == [patient_id(1), patient_id(90)]
    s = studies[0].series[0]
    assert s.view == "sax" and s.pixels.shape == (6, 2, 32, 28)
    assert s.labels.shape == s.pixels.shape and s.labels.dtype == np.uint8
    assert (s.ed_frame, s.es_frame, s.labelled_frames) == (0, 1, [0, 1])
    assert not s.spacing_known
    assert "unknown" in s.view_reason and "base" in s.view_reason
    with h5py.File(tmp_path / "patient001_frame12.h5") as h:
        np.testing.assert_array_equal(s.pixels[:, 1], h["image"][()])
    # Slice order kept as acquired: the nominal stack reads slice 0 as the base.
    geo = stack_geometry(s.planes)
    np.testing.assert_array_equal(geo.order, np.arange(6))
    np.testing.assert_allclose(geo.relative, np.linspace(0, 1, 6))


def test_es_frame_with_larger_lv_is_swapped_and_said(tmp_path):
    fake_patient(tmp_path, 7, frames=(1, 9), lv=(100, 400))
    s = read_acdc_h5(tmp_path)[0].series[0]
    with h5py.File(tmp_path / "patient007_frame09.h5") as h:
        np.testing.assert_array_equal(s.pixels[:, 0], h["image"][()])
    assert "larger LV label volume" in s.view_reason


def test_bad_files_named_with_reason(tmp_path):
    fake_patient(tmp_path, 2)
    bad = np.zeros((6, 32, 28), np.uint8)
    bad[0, 0, 0] = 7
    write_h5(tmp_path / "patient003_frame01.h5", np.zeros((6, 32, 28), np.float32), bad)
    nan = np.zeros((6, 32, 28), np.float32)
    nan[1, 2, 3] = np.nan
    write_h5(tmp_path / "patient004_frame01.h5", nan)
    (tmp_path / "patient005_frame01.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(InputFileError, match="label values"):
        read_acdc_h5(tmp_path / "patient003_frame01.h5")
    skipped = []
    studies = read_acdc_h5(tmp_path, skipped=skipped)
    assert [s.id for s in studies] == [patient_id(2)]
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in skipped}
    assert "label values [7]" in reasons["patient003_frame01.h5"]
    assert "NaN" in reasons["patient004_frame01.h5"]
    assert "HDF5" in reasons["patient005_frame01.h5"]


def test_cli_ingest_acdc_h5_end_to_end(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    fake_patient(src, 1)
    fake_patient(src, 2, seed=3)
    out = tmp_path / "cache"
    assert main(["ingest", str(src), "--format", "acdc-h5", "--out", str(out),
                 "--workers", "2", "--no-progress"]) == 0
    assert "2 written" in capsys.readouterr().out
    cache = Cache(out)
    assert sorted(cache.ids) == sorted([patient_id(1), patient_id(2)])
    e = cache.entry(patient_id(2))
    assert e["views"]["sax"]["slices"] == 6 and e["views"]["sax"]["frames"] == 2 and e["labels"]
    study = cache.load(patient_id(2))
    assert isinstance(study.series[0].pixels, np.memmap)
    # Re-run (auto format): nothing rewritten.
    assert main(["ingest", str(src), "--out", str(out), "--no-progress"]) == 0
    assert "0 written, 2 unchanged" in capsys.readouterr().out
    # No patient names or source paths in the cache.
    text = " ".join(p.read_text() for p in out.rglob("*.json"))
    assert "patient" not in text and str(src) not in text


@pytest.mark.realdata
def test_real_acdc_h5(shared_data):
    studies = read_acdc_h5(shared_data / "acdc_h5" / "patient001_frame01.h5")
    assert len(studies) == 1
    s = studies[0].series[0]
    assert s.pixels.shape[1] == 1 and s.labels is not None and s.ed_frame == 0
    both = [f for f in (shared_data / "acdc_h5").glob("patient090_*.h5")]
    skipped = []
    (study,) = [st for st in read_acdc_h5(shared_data / "acdc_h5", skipped=skipped)
                if st.id == patient_id(90)]
    assert len(both) == 2 and study.series[0].n_frames == 2 and not skipped
    lv = (study.series[0].labels == 3).sum(axis=(0, 2, 3))
    assert lv[0] > lv[1]  # ED (frame 04 here) has the larger LV


def test_assumed_spacing_reaches_the_cache_but_stays_unknown(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    fake_patient(src, 3)
    from planessl.ingest import ingest

    ingest([src], tmp_path / "cache", fmt="acdc-h5", assume_spacing_mm=1.5, progress=False)
    series = Cache(tmp_path / "cache").load(patient_id(3)).series[0]
    assert series.planes[0].spacing == (1.5, 1.5) and not series.spacing_known
    assert "1.5 mm planes (assumed at ingest)" in series.view_reason
    ingest([src], tmp_path / "plain", fmt="acdc-h5", progress=False)
    assert Cache(tmp_path / "plain").load(patient_id(3)).series[0].planes[0].spacing == (1.0, 1.0)
