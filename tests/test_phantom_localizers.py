"""Phantom localizers (loc_2ch, loc_4ch, loc_sax): properties, determinism, studies without
them unchanged, DICOM round trip and view identification, view-planning training data."""

from pathlib import Path

import numpy as np
import pydicom
import pytest

from planessl.cache import Cache, write_cache
from planessl.cli import main
from planessl.data.pretrain import SampleSpec, channel_planes, make_sample
from planessl.engine import load_weights
from planessl.geometry import intersection_line, plane_angle_deg
from planessl.io.localizers import SeriesFacts, localizer_evidence
from planessl.io.views import angle_deg
from planessl.phantom import make_anatomy, make_study
from planessl.phantom.planning import ideal_planes
from planessl.phantom.subject import PRESETS
from planessl.study import LOCALIZER_VIEWS, mid_slice_index

CINES = ("sax", "2ch", "3ch", "4ch")
ALL_VIEWS = {"loc_2ch", "loc_4ch", "loc_sax", "2ch", "3ch", "4ch", "sax"}


@pytest.fixture(scope="module")
def studies():
    return [make_study(0, k, frames=3, localizers=True) for k in range(3)]


# ----------------------------------------------------------------------------- phantom
def test_localizers_single_frame_thick_and_tilted_by_the_planning_error(studies):
    st = PRESETS["small"].localizer
    for k, study in enumerate(studies):
        assert [s.name for s in study.series] == list(CINES) + list(LOCALIZER_VIEWS)
        anatomy, _, _ = make_anatomy(0, k)
        ideal = ideal_planes(anatomy)
        targets = study.target_planes()
        assert set(targets) == set(CINES)
        cine_thick = max(p.thickness for s in study.series if s.view in CINES for p in s.planes)
        for loc, view in (("loc_2ch", "2ch"), ("loc_4ch", "4ch"), ("loc_sax", "sax")):
            (s,) = study.views(loc)
            assert s.n_frames == 1 and s.frame_times is None and s.labelled_frames == [0]
            assert s.labels is not None and s.labels.shape == s.pixels.shape
            assert (s.labels > 0).any()  # the heart is in the field of view
            assert s.pixels.shape[2:] == (128, 128)
            for p in s.planes:
                assert st.thickness[0] <= p.thickness <= st.thickness[1]
                assert p.thickness >= cine_thick
                assert st.spacing[0] <= p.spacing[0] <= st.spacing[1]
            # tilted from the ideal plane by the drawn error (8-15 deg), exactly ...
            tilt = angle_deg(s.planes[0].normal, ideal[view][1])
            assert st.angle_deg[0] - 1e-6 <= tilt <= st.angle_deg[1] + 1e-6
            assert f"tilted {tilt:.1f} deg" in s.view_reason
            # ... so about as far from the cine target (itself planned within a few deg)
            err = plane_angle_deg(s.planes[0], targets[view])
            assert 2.0 < err < 25.0, (loc, err)
            if loc != "loc_sax":  # shifted a few mm along the normal from the mid-ventricle
                dist = abs(float((ideal[view][0] - s.planes[0].origin) @ s.planes[0].normal))
                assert dist < 20.0
        sax = study.views("loc_sax")[0]
        assert 3 <= sax.n_slices <= 5
        pos = np.array([p.origin @ anatomy.heart.u for p in sax.planes])
        assert np.all(np.diff(pos) > 5.0)  # base -> apex, thick slices far apart
        mid = sax.planes[mid_slice_index(sax.planes)]
        assert abs(float((ideal["sax"][0] - mid.origin) @ mid.normal)) < 20.0


def test_localizers_deterministic_and_cines_unchanged(studies):
    again = make_study(0, 1, frames=3, localizers=True)
    for a, b in zip(studies[1].series, again.series):
        assert a.name == b.name
        np.testing.assert_array_equal(a.pixels, b.pixels)
        np.testing.assert_array_equal(a.labels, b.labels)
        for p, q in zip(a.planes, b.planes):
            np.testing.assert_array_equal(p.origin, q.origin)
    other_seed = make_study(1, 1, frames=3, localizers=True)
    assert not np.array_equal(other_seed.views("loc_2ch")[0].planes[0].origin,
                              studies[1].views("loc_2ch")[0].planes[0].origin)
    # Off (the default): no localizers, and the cines are those of the study with them.
    plain = make_study(0, 1, frames=3)
    assert [s.name for s in plain.series] == list(CINES)
    for a, b in zip(plain.series, studies[1].series):
        np.testing.assert_array_equal(a.pixels, b.pixels)
        np.testing.assert_array_equal(a.labels, b.labels)
        for p, q in zip(a.planes, b.planes):
            np.testing.assert_array_equal(p.origin, q.origin)
            np.testing.assert_array_equal(p.normal, q.normal)
            assert (p.spacing, p.shape, p.thickness) == (q.spacing, q.shape, q.thickness)


#: Study (seed 0, index 0, 3 frames) as made before localizers existed: pixel sum, label sum,
#: first slice's origin, last slice's normal per series.
BEFORE = {
    "sax": ((14, 3, 128, 128), 81554218.4, 125579, [-5.2487, 92.6542, -58.0938],
            [0.528134, -0.588755, -0.611917]),
    "2ch": ((1, 3, 128, 128), 6327655.6, 24084, [84.1037, -19.3273, -123.9824],
            [-0.855292, -0.377535, -0.354885]),
    "3ch": ((1, 3, 128, 128), 7940725.2, 27057, [26.8624, -222.6172, -11.4973],
            [0.672796, -0.190235, 0.714952]),
    "4ch": ((1, 3, 128, 128), 7581710.4, 33974, [-13.1651, -164.1665, -88.3768],
            [0.052098, -0.707731, 0.704559]),
}


def test_study_without_localizers_is_as_before():
    study = make_study(0, 0, frames=3)
    assert [s.name for s in study.series] == list(BEFORE)
    for s in study.series:
        shape, pix, lab, origin, normal = BEFORE[s.name]
        assert s.pixels.shape == shape
        assert float(s.pixels.astype(np.float64).sum()) == pytest.approx(pix, rel=1e-5)
        assert int(s.labels.astype(np.int64).sum()) == lab
        np.testing.assert_allclose(s.planes[0].origin, origin, atol=1e-3)
        np.testing.assert_allclose(s.planes[-1].normal, normal, atol=1e-5)


# ----------------------------------------------------------------------------- DICOM
def test_dicom_round_trip_tells_localizers_from_cines(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "cache"
    assert main(["phantom", "--subjects", "1", "--out", str(src), "--frames", "3",
                 "--localizers"]) == 0
    folder = src / "phantom-0-00000" / "study"
    descriptions = {d.name: pydicom.dcmread(next(d.glob("IM-*.dcm"))).SeriesDescription
                    for d in folder.iterdir() if d.name.startswith("loc")}
    assert descriptions == {"loc_2ch_5": "LOC 2CH", "loc_4ch_6": "localizer_4ch",
                            "loc_sax_7": "SAX LOC"}
    assert len(list((folder / "loc_sax_7").glob("IM-*.dcm"))) == \
        make_study(0, 0, frames=3, localizers=True).views("loc_sax")[0].n_slices
    assert main(["phantom", "--subjects", "1", "--out", str(tmp_path / "u"), "--format",
                 "ukbb", "--localizers"]) == 2
    assert "DICOM only" in capsys.readouterr().err
    assert main(["ingest", str(src), "--out", str(out), "--workers", "1",
                 "--no-progress"]) == 0
    assert "loc_sax" in capsys.readouterr().out
    cache = Cache(out)
    got = cache.load(cache.ids[0])
    assert {s.view for s in got.series} == ALL_VIEWS
    ref = make_study(0, 0, frames=3, localizers=True)
    for r in ref.series:
        (s,) = got.views(r.view)
        np.testing.assert_array_equal(s.pixels, np.clip(np.rint(r.pixels), 0, 65535))
        np.testing.assert_array_equal(s.labels, r.labels)
        assert s.labelled_frames == r.labelled_frames
        for a, b in zip(s.planes, r.planes):
            np.testing.assert_allclose(a.origin, b.origin, atol=1e-3)
            np.testing.assert_allclose(a.normal, b.normal, atol=1e-5)
            assert a.thickness == pytest.approx(b.thickness)
        if r.view in LOCALIZER_VIEWS:
            assert s.view_reason.startswith("localizer:")
            assert "series name says" in s.view_reason
            assert "single frame" in s.view_reason
        else:
            assert "localizer" not in s.view_reason


def test_localizers_without_telling_names_by_frames_and_thickness(tmp_path):
    """Renamed to neutral descriptions and folders, the localizers are still told from the
    cines: single frame, thicker slices, a cine of the same view beside them."""
    from planessl.phantom.writers import write_subject

    study = make_study(0, 2, frames=3, localizers=True)
    root = write_subject(study, tmp_path / "src", "dicom") / "study"
    neutral = {"loc_2ch_5": "bSSFP 2CH", "loc_4ch_6": "bSSFP 4CH", "loc_sax_7": "bSSFP SAX"}
    for name, text in neutral.items():
        for f in (root / name).glob("IM-*.dcm"):
            ds = pydicom.dcmread(f)
            ds.SeriesDescription = text
            ds.save_as(f)
        (root / name).rename(root / f"series{name[-1]}")
    from planessl.io.dicom_scan import discover_dicom, load_dicom

    sources, skipped = discover_dicom([tmp_path / "src"])
    (got,) = [load_dicom(s, "x", skipped) for s in sources]
    assert {s.view for s in got.series} == ALL_VIEWS
    for view in LOCALIZER_VIEWS:
        (s,) = got.views(view)
        assert "series name says" not in s.view_reason
        assert s.view_reason.startswith("localizer: single frame")
        assert f"a {view[4:]} cine is in the exam" in s.view_reason


def _cine(text, number, thickness=7.0, time=None, frames=25):
    return SeriesFacts(text, "ORIGINAL\\PRIMARY\\M\\ND\\RETRO", "tfi2d1_14", frames,
                       thickness, number, time)


def test_localizer_evidence_rules():
    F = SeriesFacts
    cines = [_cine("TF Cine Retro_iPAT 4C", 6), _cine("TF Cine Retro_iPAT 2C", 7),
             _cine("TF Cine Retro_iPAT LVOT", 8), _cine("TF Cine Retro_iPAT SAO", 10)]
    # Names and ImageType decide, whatever the frames or order.
    yes, why = localizer_evidence(F("SAX LOC", n_frames=1, series_number=20), cines)
    assert yes and "'loc'" in why
    assert localizer_evidence(F("tri pilot", n_frames=5), cines)[0]
    assert localizer_evidence(F("x", "ORIGINAL\\PRIMARY\\LOCALIZER"), [])[0]
    for name in ("localizer", "3-Plane Loc", "Survey_SA", "SCOUT 4ch"):
        assert localizer_evidence(F(name, series_number=30), cines)[0], name
    # The Siemens exam of issue 20: trufi localizers thinner than the cines, acquired first.
    yes, why = localizer_evidence(F("trufi_2-chamber", "ORIGINAL\\PRIMARY\\M\\ND",
                                    "*tfiseg2d1", 1, 6.0, 3), cines)
    assert yes and "acquired before the cines (series 3; first cine series 6)" in why
    assert "a 2ch cine is in the exam" in why and "6.0 mm slices (cines 7.0 mm)" in why
    # A late single-frame SAX stack (LGE, T1 map) is not one, beside a SAX cine or not.
    for name, kind in (("PSIR SAX", "psir"), ("T1 map SAX", "t1 map"), ("sa stack", None)):
        no, why = localizer_evidence(F(name, n_frames=1, thickness=8.0, series_number=30),
                                     cines)
        assert not no and why.startswith("not a localizer")
        assert (f"'{kind}'" if kind else "acquired after the cines") in why, why
    # Order by AcquisitionTime first, SeriesNumber where the times are missing.
    timed = [_cine("cine 4ch", 6, time=36000.0), _cine("cine sax", 10, time=36600.0)]
    assert localizer_evidence(F("bssfp", n_frames=1, series_number=40, acquisition_time=35000.0),
                              timed)[0]
    no, why = localizer_evidence(F("bssfp", n_frames=1, series_number=2,
                                   acquisition_time=40000.0), timed)
    assert not no and "acquired after the cines (series 2, 11:06:40" in why
    # Siemens HASTE, GE SSFSE: single-shot scouts, even between the cines.
    yes, why = localizer_evidence(F("haste_tra", sequence_name="*h2d1_320", n_frames=1,
                                    series_number=9), cines)
    assert yes and "single-shot sequence 'haste'" in why
    assert localizer_evidence(F("tra", sequence_name="*h2d1_320", n_frames=1,
                                series_number=9), cines)[0]
    # Between the cines with nothing else: not a localizer; a cine of its view decides.
    no, why = localizer_evidence(F("bssfp", n_frames=1, series_number=9), cines)
    assert not no and "acquired between the cines (series 9)" in why
    assert localizer_evidence(F("bssfp 2c", n_frames=1, series_number=9), cines)[0]
    # Thickness is weak: it decides only when the order is unknown.
    thick = F("bssfp", n_frames=1, thickness=10.0)
    assert localizer_evidence(thick, [_cine("cine", 0, thickness=8.0)])[0]
    assert not localizer_evidence(F("bssfp", n_frames=1, thickness=10.0, series_number=9),
                                  cines)[0]
    # Derived images and TI scouts are not localizers.
    assert not localizer_evidence(F("SAX", "DERIVED\\PRIMARY\\MAP", n_frames=1,
                                    series_number=2), cines)[0]
    assert not localizer_evidence(F("TI scout", n_frames=1, series_number=2), cines)[0]
    # A cine, or a single-frame series in an exam without cines: nothing to say.
    assert localizer_evidence(_cine("2ch", 1), cines) == (False, "")
    assert localizer_evidence(F("sax", n_frames=1, thickness=12.0), []) == (False, "")


# ----------------------------------------------------------------------------- training
def test_sample_sax_line_is_the_mid_ventricular_slice(studies):
    study = studies[0]
    (sax,) = study.views("sax")
    mid = sax.planes[mid_slice_index(sax.planes)]
    assert mid_slice_index(sax.planes) == (sax.n_slices - 1) // 2
    assert channel_planes(study, "sax", stack_line="mid") == [mid]
    assert len(channel_planes(study, "sax")) == sax.n_slices
    channels = ("2ch", "3ch", "4ch", "sax")
    spec = SampleSpec(input_views=LOCALIZER_VIEWS, line_channels=channels, slice_location=False,
                      image_size=64, spacing_mm=4.0, stack_line="mid")
    spec_all = SampleSpec(input_views=LOCALIZER_VIEWS, line_channels=channels,
                          slice_location=False, image_size=64, spacing_mm=4.0)
    rng = np.random.default_rng(0)
    from planessl.data.transforms import input_plane

    for s_idx, s in enumerate(study.series):
        if s.view not in LOCALIZER_VIEWS:
            continue
        for k in range(s.n_slices):
            sample = make_sample(study, s_idx, k, 0, spec, None, rng)
            assert sample["image"].shape == (1, 64, 64)
            grid = input_plane(s.planes[k], 4.0, 64)
            abc = sample["line_abc"].numpy()
            assert np.isfinite(abc[3]).all()  # one SAX plane: one line
            line = intersection_line(grid, mid)
            np.testing.assert_allclose(abc[3], (line.a, line.b, line.c), rtol=1e-4, atol=1e-3)
            if s.view in ("loc_2ch", "loc_4ch"):
                # the LAX localizers cut the mid SAX plane and the other long-axis views
                assert sample["line_mask"][3] == 1
                assert sample["line_mask"][[1, 2, 3]].sum() == 3
            every = make_sample(study, s_idx, k, 0, spec_all, None, np.random.default_rng(0))
            assert not np.isfinite(every["line_abc"][3].numpy()).any()  # a stack: many lines
            if s.view != "loc_sax":
                assert float(every["lines"][3].sum()) > float(sample["lines"][3].sum())


def test_pretrain_lines_from_localizers_end_to_end(studies, tmp_path, capsys):
    cache = write_cache(tmp_path / "cache", studies)
    out = tmp_path / "run"
    args = ["pretrain", "--data", str(cache.path), "--task", "lines", "--out", str(out),
            "--max-steps", "3", "model.preset=tiny", "data.batch_size=2",
            "trainer.progress_bar=false", "trainer.log_every_n_steps=1", "trainer.threads=1",
            "data.input_views=[loc_2ch,loc_4ch,loc_sax]", "task.line_channels=[2ch,3ch,4ch,sax]",
            "task.stack_line=mid"]
    assert main(args) == 0
    w = load_weights(out / "weights.safetensors")
    assert w["heads.lines.conv.weight"].shape[0] == 4
    text = (out / "config.yaml").read_text()
    assert "stack_line: mid" in text and "loc_sax" in text
    capsys.readouterr()
    bad = args[:-1] + ["task.stack_line=middle"]
    bad[bad.index("--out") + 1] = str(tmp_path / "run2")
    assert main(bad) == 2
    assert "task.stack_line" in capsys.readouterr().err
