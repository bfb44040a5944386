"""Readers against real and synthetic headers: pydicom's MR localizer (checked by an
independent computation), enhanced multi-frame DICOM, NIfTI sform (RAS -> LPS), and the
UK Biobank subject in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import shared_data_dir
from planessl.errors import InputFileError
from planessl.geometry import intersection_line, line_endpoints
from planessl.geometry_check import (LOCALIZER_ORIGINAL_MATRIX, localizer_files,
                                     run_geometry_check, thumbnail_plane)
from planessl.io.dicom import planes_from_dataset
from planessl.io.imagespec import load_image_spec


# ------------------------------------------------------------ pydicom's real localizer
def _independent_line_in_pixels(ds_a: Dataset, ds_b: Dataset):
    """Intersect the two planes in world space from the raw tags (least squares on the
    two plane equations), then project two points of the 3D line to A's (i, j)."""
    iop_a = np.array(ds_a.ImageOrientationPatient, float)
    iop_b = np.array(ds_b.ImageOrientationPatient, float)
    ipp_a = np.array(ds_a.ImagePositionPatient, float)
    ipp_b = np.array(ds_b.ImagePositionPatient, float)
    n_a, n_b = np.cross(iop_a[:3], iop_a[3:]), np.cross(iop_b[:3], iop_b[3:])
    m = np.stack([n_a, n_b])
    point = np.linalg.lstsq(m, np.array([n_a @ ipp_a, n_b @ ipp_b]), rcond=None)[0]
    direction = np.linalg.svd(m)[2][-1]  # null space of the two normals
    di, dj = (float(x) for x in ds_a.PixelSpacing)
    pts = np.stack([point - 200 * direction, point + 200 * direction]) - ipp_a
    return pts @ iop_a[3:] / di, pts @ iop_a[:3] / dj  # i (rows), j (columns)


def _localizer_groups():
    groups: dict[str, list] = {}
    for f in localizer_files():
        ds = pydicom.dcmread(f)
        groups.setdefault(str(ds.FrameOfReferenceUID), []).append((f, ds))
    return [g for g in groups.values() if len(g) > 1]


def test_localizer_lines_match_an_independent_computation():
    groups = _localizer_groups()
    assert len(groups) == 2 and all(len(g) == 3 for g in groups)
    checked = 0
    for group in groups:
        for fa, ds_a in group:
            for fb, ds_b in group:
                if fa == fb:
                    continue
                img_a, img_b = load_image_spec(fa), load_image_spec(fb)
                assert img_a.frame_of_reference == str(ds_a.FrameOfReferenceUID)
                line = intersection_line(img_a.plane, img_b.plane)
                assert line is not None and line.angle_deg == pytest.approx(90.0, abs=1e-3)
                i, j = _independent_line_in_pixels(ds_a, ds_b)
                np.testing.assert_allclose(line.a * i + line.b * j + line.c, 0, atol=1e-6)
                # a tri-plane localizer crosses near the centre of the original 256 grid
                assert abs(line.c) == pytest.approx(128, abs=6)
                checked += 1
    assert checked == 12


def test_localizer_thumbnail_plane_covers_the_original_field_of_view():
    ds = pydicom.dcmread(localizer_files()[1])
    header = load_image_spec(localizer_files()[1]).plane
    thumb = thumbnail_plane(header)
    n = LOCALIZER_ORIGINAL_MATRIX
    assert thumb.shape == header.shape == (16, 16)
    assert thumb.spacing == pytest.approx((float(ds.PixelSpacing[0]) * n / 16,) * 2)
    iop = np.array(ds.ImageOrientationPatient, float)
    ps = float(ds.PixelSpacing[0])
    corner = np.array(ds.ImagePositionPatient, float) - 0.5 * ps * (iop[:3] + iop[3:])
    np.testing.assert_allclose(thumb.pixel_to_world(-0.5, -0.5), corner, atol=1e-9)
    np.testing.assert_allclose(thumb.pixel_to_world(15.5, 15.5),
                               corner + n * ps * (iop[:3] + iop[3:]), atol=1e-9)


def test_geometry_check_writes_table_and_pngs(tmp_path):
    lines: list[str] = []
    result = run_geometry_check(tmp_path, echo=lines.append)
    assert len(result["groups"]) == 2 and len(result["rows"]) == 12
    for name in ("localizer_1.png", "localizer_2.png", "localizer_lines.csv", "run_info.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "localizer_1.png").read_bytes()[:4] == b"\x89PNG"
    # end points (original 256 grid) lie on the independently computed line
    by_name = {Path(f).name: ds for g in _localizer_groups() for f, ds in g}
    for row in result["rows"]:
        i, j = _independent_line_in_pixels(by_name[row["A"]], by_name[row["B"]])
        for ei, ej in ((row["i0"], row["j0"]), (row["i1"], row["j1"])):
            cross = (i[1] - i[0]) * (ej - j[0]) - (j[1] - j[0]) * (ei - i[0])
            assert abs(cross) / np.hypot(i[1] - i[0], j[1] - j[0]) < 1e-6
    assert any("alone in its frame of reference" in s for s in lines)


# ------------------------------------------------------------ enhanced multi-frame DICOM
def _enhanced_dataset(path: Path) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.FrameOfReferenceUID = generate_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames = 6, 5, 3
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    measures = Dataset()
    measures.PixelSpacing = [0.8, 1.2]
    measures.SliceThickness = 6.0
    orient = Dataset()
    orient.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal
    shared = Dataset()
    shared.PixelMeasuresSequence = [measures]
    shared.PlaneOrientationSequence = [orient]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in range(3):
        pos = Dataset()
        pos.ImagePositionPatient = [-10.0 + 7.0 * k, -50.0, 40.0]
        item = Dataset()
        item.PlanePositionSequence = [pos]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    pixels = np.arange(3 * 6 * 5, dtype=np.uint16).reshape(3, 6, 5)
    ds.PixelData = pixels.tobytes()
    out = path / "enhanced.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


def test_enhanced_multiframe_planes_per_frame(tmp_path):
    path = _enhanced_dataset(tmp_path)
    planes = planes_from_dataset(pydicom.dcmread(path))
    assert len(planes) == 3
    for k, p in enumerate(planes):
        np.testing.assert_allclose(p.origin, [-10.0 + 7.0 * k, -50.0, 40.0])
        np.testing.assert_allclose(p.row_dir, [0, 1, 0])
        np.testing.assert_allclose(p.col_dir, [0, 0, -1])
        assert p.spacing == (0.8, 1.2) and p.shape == (6, 5) and p.thickness == 6.0
        # pixel (i, j) = IPP + j*1.2*row + i*0.8*col, written out
        np.testing.assert_allclose(p.pixel_to_world(2, 3),
                                   [-10.0 + 7.0 * k, -50.0 + 3.6, 40.0 - 1.6])
    img = load_image_spec(f"{path}:2")
    np.testing.assert_array_equal(img.pixels, np.arange(60, 90).reshape(6, 5))
    assert img.plane.origin[0] == pytest.approx(4.0)
    with pytest.raises(InputFileError, match="has 3 frames"):
        load_image_spec(str(path))
    with pytest.raises(InputFileError, match="frame index 3 is out of range"):
        load_image_spec(f"{path}:3")


# ------------------------------------------------------------ NIfTI
def _nifti(path: Path, shape=(7, 6, 4), sform_code=2, qform_code=0) -> tuple[Path, np.ndarray,
                                                                             np.ndarray]:
    rot = np.array([[0.0, 0.0, 1.0], [0.8, -0.6, 0.0], [0.6, 0.8, 0.0]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([1.5, 2.5, 8.0])
    affine[:3, 3] = [12.0, -30.0, 55.0]
    data = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=sform_code)
    img.set_qform(affine, code=qform_code)
    nib.save(img, path)
    return path, data, affine


def test_nifti_sform_ras_to_lps_and_voxel_indexing(tmp_path):
    path, data, affine = _nifti(tmp_path / "vol.nii.gz")
    for k in (0, 3):
        img = load_image_spec(f"{path}:{k}")
        np.testing.assert_array_equal(img.pixels, data[:, :, k])
        assert img.plane.spacing == pytest.approx((1.5, 2.5)) and img.frame_of_reference is None
        for i, j in ((0, 0), (6, 0), (2, 5)):
            x, y, z = (affine @ [i, j, k, 1])[:3]
            np.testing.assert_allclose(img.plane.pixel_to_world(i, j), [-x, -y, z], atol=1e-9)


def test_nifti_4d_cine_uses_frame_zero(tmp_path):
    path, data, affine = _nifti(tmp_path / "cine.nii.gz", shape=(5, 4, 1, 3))
    img = load_image_spec(str(path))  # one slice: no :K needed
    np.testing.assert_array_equal(img.pixels, data[:, :, 0, 0])


def test_nifti_without_valid_affine_is_refused(tmp_path):
    path, _, _ = _nifti(tmp_path / "nocode.nii", sform_code=0, qform_code=0)
    with pytest.raises(InputFileError, match="sform_code and qform_code are both 0") as err:
        load_image_spec(f"{path}:0")
    assert str(path) in str(err.value)
    q_only, _, affine = _nifti(tmp_path / "qonly.nii", sform_code=0, qform_code=1)
    img = load_image_spec(f"{q_only}:1")
    x, y, z = (affine @ [0, 0, 1, 1])[:3]
    np.testing.assert_allclose(img.plane.origin, [-x, -y, z], atol=1e-4)


# ------------------------------------------------------------ UK Biobank subject
UKBB = shared_data_dir() / "ukbb_demo" / "1"


@pytest.mark.realdata
@pytest.mark.skipif(not (UKBB / "sa_ED.nii.gz").exists(), reason="../shared/data is absent")
def test_ukbb_sax_4ch_lines_cross_lv_and_rv_consistently():
    """Sample the 3D SAX∩4CH lines inside both fields of view, look up the label in both
    segmentations (nearest neighbour): they must agree on LV/RV for most samples."""
    sa_seg = np.asarray(nib.load(UKBB / "seg_sa_ED.nii.gz").dataobj)
    la_seg = np.asarray(nib.load(UKBB / "seg4_la_4ch_ED.nii.gz").dataobj)[:, :, 0]
    la = load_image_spec(str(UKBB / "la_4ch_ED.nii.gz")).plane
    agree = total = 0
    hit = set()
    for k in range(sa_seg.shape[2]):
        sa = load_image_spec(f"{UKBB / 'sa_ED.nii.gz'}:{k}").plane
        line = intersection_line(sa, la)
        ends = line_endpoints(line, sa.shape)
        if ends is None:
            continue
        (i0, j0), (i1, j1) = ends
        t = np.linspace(0, 1, 2000)
        world = sa.pixel_to_world(i0 + t * (i1 - i0), j0 + t * (j1 - j0))
        li, lj, off = la.world_to_pixel(world)
        assert np.abs(off).max() < 1e-4  # the samples lie on the 4CH plane too
        inside = (li > -0.5) & (li < la.shape[0] - 0.5) & (lj > -0.5) & (lj < la.shape[1] - 0.5)
        si, sj, _ = sa.world_to_pixel(world[inside])
        lab_sa = sa_seg[np.rint(si).astype(int).clip(0, sa.shape[0] - 1),
                        np.rint(sj).astype(int).clip(0, sa.shape[1] - 1), k]
        lab_la = la_seg[np.rint(li[inside]).astype(int), np.rint(lj[inside]).astype(int)]
        ventricle = np.isin(lab_sa, (1, 3)) | np.isin(lab_la, (1, 3))
        total += int(ventricle.sum())
        agree += int((lab_sa[ventricle] == lab_la[ventricle]).sum())
        hit |= set(lab_sa[ventricle & (lab_sa == lab_la)].tolist())
    assert total > 500
    assert agree / total >= 0.8, f"LV/RV agreement {agree / total:.3f} ({total} samples)"
    assert {1, 3} <= hit  # both the LV and the RV are crossed, in both views
