"""Knee phantom: anatomy, labels visible in the images, planned stacks, writers, CLI."""

import argparse
import time

import numpy as np
import pytest

from planessl.data import SampleSpec, make_sample
from planessl.phantom.knee import T, knee_tissue, make_knee_anatomy, make_knee_study
from planessl.study import KNEE_VIEWS


def test_knee_study_is_deterministic_fast_and_labelled():
    t0 = time.time()
    a = make_knee_study(0, 3)
    assert time.time() - t0 < 3.0
    b = make_knee_study(0, 3)
    assert a.group == "knee" and a.laterality in ("left", "right")
    assert [s.view for s in a.series] == list(KNEE_VIEWS)
    for s, t in zip(a.series, b.series):
        np.testing.assert_array_equal(s.pixels, t.pixels)
        assert s.n_frames == 1 and s.n_slices >= 10 and s.spacing_known
    assert set(a.targets) == {"abnormal", "acl", "meniscus", "effusion"}
    assert a.targets["abnormal"] == int(any(a.targets[k] for k in ("acl", "meniscus", "effusion")))


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_stacks_are_planned_on_the_knee_axes(index):
    study = make_knee_study(1, index)
    axis = {"sagittal": 0, "coronal": 1, "axial": 2}
    spacings = set()
    for s in study.series:
        n = np.asarray(s.planes[0].normal)
        angle = np.degrees(np.arccos(min(1.0, abs(n[axis[s.view]]))))
        assert angle < 20  # knee rotation (4 deg sd) + planning error (3 deg sd)
        assert all(abs(np.dot(p.normal, n)) > 0.9999 for p in s.planes)  # parallel slices
        spacings.add(s.planes[0].spacing[0])
        # every slice of the other stacks cuts this stack's middle slice inside its FOV
    assert len(spacings) == 3  # own field of view / spacing per stack


def _bright(study, view: str, threshold: float = 0.7) -> int:
    s = study.views(view)[0]
    px = np.asarray(s.pixels)
    return int((px > threshold * np.percentile(px, 99.9)).sum())


@pytest.mark.parametrize("label", ["effusion", "acl", "meniscus"])
def test_pathology_is_visible_in_the_images(label):
    """The same knee with and without the lesion: the lesion adds fluid-bright pixels."""
    found = 0
    for index in range(4):
        kw = dict(acl=False, meniscus=False, effusion=False)
        normal = make_knee_study(2, index, noise=False, **kw)
        kw[label] = True
        lesion = make_knee_study(2, index, noise=False, **kw)
        assert lesion.targets[label] == 1 and lesion.targets["abnormal"] == 1
        assert normal.targets["abnormal"] == 0
        view = "coronal" if label == "meniscus" else "sagittal"
        diff = sum(int((np.asarray(a.pixels) != np.asarray(b.pixels)).sum())
                   for a, b in zip(normal.series, lesion.series))
        assert diff > 0
        found += _bright(lesion, view) > _bright(normal, view)
    assert found >= 3


def test_anatomy_holds_every_structure():
    k, planes = make_knee_anatomy(0, 0, acl=True, meniscus=True, effusion=True)
    g = np.mgrid[-70:70:1.5, -60:60:1.5, -70:90:1.5].reshape(3, -1).T.astype(np.float32)
    tissue = knee_tissue(g, k)
    for name in ("fat", "muscle", "marrow", "cartilage", "fibro", "fluid"):
        assert (tissue == T[name]).sum() > 50, name


def test_knee_dicom_round_trip(tmp_path):
    from planessl.cache import Cache
    from planessl.ingest import ingest
    from planessl.phantom.writers import write_subject

    study = make_knee_study(3, 0, laterality="left")
    write_subject(study, tmp_path / "dcm", "dicom")
    ingest([tmp_path / "dcm"], tmp_path / "cache")
    cache = Cache(tmp_path / "cache")
    (sid,) = cache.ids
    back = cache.load(sid)
    assert back.group == "knee" and back.laterality == "left"
    assert sorted(s.view for s in back.series) == sorted(KNEE_VIEWS)
    spec = SampleSpec(input_views=KNEE_VIEWS, line_channels=KNEE_VIEWS, image_size=32,
                      spacing_mm=4.0, stack_line="mid")
    rng = np.random.default_rng(0)
    for view in KNEE_VIEWS:
        a_idx = [s.view for s in study.series].index(view)
        b_idx = [s.view for s in back.series].index(view)
        a_ser, b_ser = study.series[a_idx], back.series[b_idx]
        # same slices (perhaps in another order): match by position
        for k in (0, a_ser.n_slices - 1):
            pos = a_ser.planes[k].origin
            kb = int(np.argmin([np.linalg.norm(p.origin - pos) for p in b_ser.planes]))
            sa = make_sample(study, a_idx, k, 0, spec, None, rng)
            sb = make_sample(back, b_idx, kb, 0, spec, None, rng)
            assert float(sa["slice"][0]) == pytest.approx(float(sb["slice"][0]), abs=1e-4)
            np.testing.assert_allclose(sa["lines"].numpy(), sb["lines"].numpy(), atol=2e-3)


def test_knee_phantom_cli_formats(tmp_path):
    import nibabel as nib

    from planessl.commands import phantom as cmd
    from planessl.io.mrnet import discover_mrnet, load_mrnet

    def args(fmt, out):
        return argparse.Namespace(subjects=2, format=fmt, out=str(out), seed=0, workers=1,
                                  preset="small", frames=None, breath_hold_mm=0.0,
                                  localizers=False, anatomy="knee")

    assert cmd.run(args("nifti", tmp_path / "n")) == 0
    vol = nib.load(tmp_path / "n" / "knee-0-00000" / "sagittal.nii.gz")
    assert vol.shape[2] == make_knee_study(0, 0).views("sagittal")[0].n_slices
    assert cmd.run(args("mrnet", tmp_path / "m")) == 0
    sources, skipped = discover_mrnet([tmp_path / "m"])
    assert len(sources) == 2 and not skipped
    study = load_mrnet(sources[1], "x")
    assert study.targets == {k: v for k, v in make_knee_study(0, 1).targets.items()
                             if k != "effusion"}
    from planessl.errors import PlaneSSLError
    with pytest.raises(PlaneSSLError, match="knee phantoms are written"):
        cmd.run(args("ukbb", tmp_path / "u"))
