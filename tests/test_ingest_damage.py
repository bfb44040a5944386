"""Damaged files never stop an ingest: a corpus of damaged DICOM, NIfTI, HDF5 and npy files,
made on the fly beside one good study per format, goes through ``planessl ingest`` (the CLI
entry point, in process). Exit status 0, the good studies cached, exactly one skipped line
per damaged file naming it, and no traceback."""

from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from dicom_fixtures import write_cardiac_study, write_image
from planessl.cache import Cache
from planessl.cli import main


# ----------------------------------------------------------------------------- NIfTI
def _nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None,
           code: int = 1) -> Path:
    affine = np.diag([1.5, 1.5, 6.0, 1.0]) if affine is None else affine
    img = nib.Nifti1Image(data, None)  # the header's forms are set below, as given
    img.header.set_sform(affine, code=code)
    try:
        img.header.set_qform(affine, code=code)
    except nib.spatialimages.HeaderDataError:  # a singular affine has no quaternion form
        img.header.set_qform(None, code=0)
    nib.save(img, str(path))
    return path


def _volume(dtype=np.int16, shape=(8, 8, 3)) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 97).reshape(shape).astype(dtype)


def _truncate(path: Path, keep: float = 0.5) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def nifti_corpus(root: Path) -> dict[str, Path]:
    """One good subject and one file of each kind of damage, each its own subject."""
    root.mkdir(parents=True)
    _nifti(root / "good_sa.nii.gz", _volume())
    bad: dict[str, Path] = {}
    bad["nii.gz truncated"] = _truncate(_nifti(root / "n01_sa.nii.gz", _volume(shape=(24, 24, 8))))
    bad["nii truncated"] = _truncate(_nifti(root / "n02_sa.nii", _volume()), 0.8)
    # a header whose dimensions exceed its data (the data block is the size of 8x8x3)
    p = _nifti(root / "n03_sa.nii", _volume())
    hdr = nib.load(str(p)).header.copy()
    hdr.set_data_shape((80, 80, 30))
    raw = p.read_bytes()
    p.write_bytes(hdr.binaryblock + raw[len(hdr.binaryblock):])
    bad["header larger than data"] = p
    nan = _volume(np.float32)
    nan[1, 2, 0] = np.nan
    bad["NaN voxels"] = _nifti(root / "n04_sa.nii.gz", nan)
    inf = _volume(np.float32)
    inf[0, 0, 1] = np.inf
    bad["inf voxels"] = _nifti(root / "n05_sa.nii.gz", inf)
    (root / "n06_sa.nii.gz").write_bytes(b"")
    bad["empty .nii.gz"] = root / "n06_sa.nii.gz"
    (root / "n07_sa.nii.gz").write_text("patient notes, not an image\n")
    bad["text under a .nii.gz name"] = root / "n07_sa.nii.gz"
    (root / "n08_sa.nii.gz").write_bytes(gzip.compress(b"\x00" * 600))
    bad["gzip of no NIfTI"] = root / "n08_sa.nii.gz"
    bad["zero-size dimension"] = _nifti(root / "n09_sa.nii.gz", np.zeros((8, 8, 0), np.int16))
    bad["no affine (codes 0)"] = _nifti(root / "n10_sa.nii.gz", _volume(), code=0)
    singular = np.diag([1.5, 0.0, 6.0, 1.0])
    bad["singular affine"] = _nifti(root / "n11_sa.nii.gz", _volume(), singular)
    bad["complex voxels"] = _nifti(root / "n12_sa.nii.gz", _volume(np.complex64))
    bad["5D volume"] = _nifti(root / "n13_sa.nii.gz", np.zeros((4, 4, 2, 2, 2), np.int16))
    nan_affine = np.diag([1.5, 1.5, 6.0, 1.0])
    nan_affine[0, 3] = np.nan
    bad["NaN in the affine"] = _nifti(root / "n14_sa.nii.gz", _volume(), nan_affine)
    return bad


# ----------------------------------------------------------------------------- DICOM
def dicom_corpus(root: Path) -> dict[str, Path]:
    files = write_cardiac_study(root / "good", "1.2.999.1", n_slices=3, n_frames=2, lax=False)
    bad: dict[str, Path] = {}
    # one frame of the good study's cine cut short: the study is cached without that slice
    # (its other frame is one more skipped line, checked in the test)
    bad["dcm of a good study truncated"] = _truncate(files[-1], 0.7)

    def one(name: str, study: str, **kw) -> Path:
        return write_image(root / "bad" / name, study=study, series=study + ".1", number=1,
                           desc="CINE_SAX", origin=[0.0, 0.0, 0.0], **kw)

    bad["dcm truncated in its pixels"] = _truncate(one("d01.dcm", "1.2.999.11"), 0.8)
    bad["dcm truncated in its preamble"] = _truncate(one("d02.dcm", "1.2.999.12"), 0.1)
    bad["dcm truncated in its data set"] = _truncate(one("d08.dcm", "1.2.999.18"), 0.6)
    p = one("d03.dcm", "1.2.999.13")  # Rows x Columns larger than the pixel data
    import pydicom

    ds = pydicom.dcmread(p)
    ds.Rows, ds.Columns = 64, 64
    ds.save_as(p)
    bad["dcm header larger than its pixels"] = p
    (root / "bad" / "d04.dcm").write_bytes(b"")
    bad["empty .dcm"] = root / "bad" / "d04.dcm"
    (root / "bad" / "d05.dcm").write_text("<html>a download error page</html>\n")
    bad["html under a .dcm name"] = root / "bad" / "d05.dcm"
    bad["dcm with zero-length orientation"] = one("d06.dcm", "1.2.999.16", row=[0, 0, 0])
    bad["dcm with zero rows"] = one("d07.dcm", "1.2.999.17", shape=(0, 16),
                                    pixels=np.zeros((0, 16)))
    return bad


# ----------------------------------------------------------------------------- HDF5
def h5_corpus(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True)
    for frame in (1, 2):
        with h5py.File(root / f"patient001_frame{frame:02d}.h5", "w") as h:
            h["image"] = np.random.default_rng(frame).random((3, 8, 8)).astype(np.float32)
    bad: dict[str, Path] = {}

    def h5(n: int, **datasets) -> Path:
        path = root / f"patient1{n:02d}_frame01.h5"
        with h5py.File(path, "w") as h:
            for k, v in datasets.items():
                h[k] = v
        return path

    bad["h5 truncated"] = _truncate(h5(1, image=np.ones((6, 32, 32), np.float32)), 0.3)
    bad["h5 of strings"] = h5(2, image=np.array([b"abc", b"def"]))
    nan = np.ones((3, 8, 8), np.float32)
    nan[0, 0, 0] = np.nan
    bad["h5 NaN"] = h5(3, image=nan)
    (root / "patient104_frame01.h5").write_bytes(b"")
    bad["empty .h5"] = root / "patient104_frame01.h5"
    bad["h5 zero-size"] = h5(5, image=np.zeros((0, 8, 8), np.float32))
    (root / "patient106_frame01.h5").write_text("x,y\n1,2\n")
    bad["csv under a .h5 name"] = root / "patient106_frame01.h5"
    return bad


# ----------------------------------------------------------------------------- npy (MRNet)
def npy_corpus(root: Path) -> dict[str, Path]:
    split = root / "train"
    for view in ("sagittal", "coronal", "axial"):
        (split / view).mkdir(parents=True)
        np.save(split / view / "0000.npy", (np.arange(3 * 16 * 16) % 251).reshape(3, 16, 16)
                .astype(np.uint8))
    sag = split / "sagittal"
    bad: dict[str, Path] = {}
    np.save(sag / "0001.npy", np.ones((6, 32, 32), np.uint8))
    bad["npy truncated"] = _truncate(sag / "0001.npy", 0.5)
    np.save(sag / "0002.npy", np.array(["a", "b"] * 8).reshape(2, 2, 4))
    bad["npy of strings"] = sag / "0002.npy"
    np.save(sag / "0003.npy", np.zeros((0, 16, 16), np.uint8))
    bad["npy zero-size"] = sag / "0003.npy"
    nan = np.ones((2, 8, 8), np.float32)
    nan[1, 1, 1] = np.nan
    np.save(sag / "0004.npy", nan)
    bad["npy NaN"] = sag / "0004.npy"
    np.save(sag / "0005.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    bad["npy of pickled objects"] = sag / "0005.npy"
    (sag / "0006.npy").write_bytes(b"")
    bad["empty .npy"] = sag / "0006.npy"
    np.save(sag / "0007.npy", (np.ones((2, 8, 8)) * (1 + 1j)).astype(np.complex64))
    bad["npy complex"] = sag / "0007.npy"
    np.save(sag / "0008.npy", np.ones((8, 8), np.uint8))
    bad["npy 2D"] = sag / "0008.npy"
    return bad


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("damage")
    bad = {}
    bad.update(nifti_corpus(root / "nifti"))
    bad.update(dicom_corpus(root / "dicom"))
    bad.update(h5_corpus(root / "h5"))
    bad.update(npy_corpus(root / "mrnet"))
    return root, bad


def test_damage_corpus_never_stops_ingest(corpus, tmp_path, capsys):
    root, bad = corpus
    assert len(bad) >= 15
    rc = main(["ingest", str(root / "nifti"), str(root / "dicom"), str(root / "h5"),
               str(root / "mrnet"), "--out", str(tmp_path / "cache"), "--workers", "1",
               "--no-progress"])
    out, err = capsys.readouterr()
    text = out + err
    assert rc == 0, text
    assert "Traceback" not in text
    lines = text.splitlines()
    for kind, path in bad.items():
        naming = [ln for ln in lines if f"{path}:" in ln]
        assert len(naming) == 1, f"{kind}: {path.name} named on {len(naming)} lines\n{text}"
        reason = naming[0].split(f"{path}:", 1)[1].strip()
        assert reason and "unexpected" not in reason, f"{kind}: {naming[0]}"
    cache = Cache(tmp_path / "cache")
    assert len(cache) == 4, text  # one good study per format
    groups = sorted(e["group"] for e in cache.entries)
    assert groups == ["cardiac", "cardiac", "cardiac", "knee"]
    # the slice that lost a frame is not cached (one line), never a localizer
    lost = [ln for ln in lines if "a cine slice that lost frames" in ln]
    assert len(lost) == 1, text
    assert not any(v.startswith("loc_") for e in cache.entries for v in e["views"]), text
    n_skipped = int(next(ln for ln in lines if ln.startswith("skipped:")).split()[1])
    assert n_skipped == len(bad) + 1, text
