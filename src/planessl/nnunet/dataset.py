"""A labelled planessl cache written as an nnU-Net (v2) raw dataset.

Layout (nnU-Net's ``dataset_format.md``)::

    DIR/DatasetNNN_Name/
      dataset.json                      channel_names, labels, numTraining, file_ending
      imagesTr/<case>_0000.nii.gz       one 3D image per case (a stack at one frame)
      labelsTr/<case>.nii.gz            its label map (uint8)

A case is one labelled frame of one series (by default the ED and ES frames where the
series names them, else every labelled frame), written as an (H, W, S) volume whose affine
places every voxel where the cache's planes say (:func:`planessl.geometry.affine_from_planes`),
so the NIfTI spacing is the pixel spacing and the slice step in mm. The dataset folder is
written under a temporary name and renamed when complete; an existing one is never touched.
Needs only nibabel (not nnU-Net itself).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np

from planessl.cache import Cache
from planessl.errors import PlaneSSLError
from planessl.geometry import affine_from_planes
from planessl.study import EXTRA_LABEL_NAMES, LABEL_NAMES, Series

#: nnU-Net normalises a channel by its name: "CT" gets CT normalisation, anything else
#: (this one) per-case z-scoring, which is what MR needs.
CHANNEL_NAME = "MRI"
FILE_ENDING = ".nii.gz"


@dataclass
class DatasetExport:
    """What :func:`export_nnunet_dataset` wrote."""

    folder: Path
    cases: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``DatasetNNN_Name`` (nnU-Net's naming: a three-digit id, then the name)."""
    if not 1 <= int(dataset_id) <= 999:
        raise PlaneSSLError(f"--id {dataset_id}: nnU-Net dataset ids are 1 to 999")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", name):
        raise PlaneSSLError(f"--name {name!r}: use letters, digits and '-' only (nnU-Net "
                            f"splits dataset folder names at '_')")
    return f"Dataset{int(dataset_id):03d}_{name}"


def case_frames(series: Series, all_frames: bool) -> list[int]:
    """The labelled frames of ``series`` to export: ED and ES where the series names them
    and they are labelled (``all_frames``: every labelled frame)."""
    labelled = sorted(int(f) for f in series.labelled_frames)
    if all_frames:
        return labelled
    phases = sorted({f for f in (series.ed_frame, series.es_frame) if f is not None and f in labelled})
    return phases or labelled


def _case_id(study_id: str, series_name: str, frame: int) -> str:
    raw = f"{study_id}_{series_name}_f{frame:02d}"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", raw)


def _write_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """An (H, W, S) volume with its RAS affine as sform, gzip with a fixed mtime so the same
    cache gives the same bytes."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_sform(affine, code=1)
    img.header.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm")
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0,
                                                compresslevel=1, filename="") as gz:
        gz.write(img.to_bytes())


def _label_names(values: Sequence[int]) -> dict[str, int]:
    """dataset.json ``labels``: name -> consecutive value (nnU-Net requires 0..K-1)."""
    names = {**LABEL_NAMES, **EXTRA_LABEL_NAMES}
    return {names.get(int(v), f"label{int(v)}"): k for k, v in enumerate(sorted(values))}


def export_nnunet_dataset(cache: str | Path | Cache, out_dir: str | Path, dataset_id: int,
                          name: str = "PlaneSSL", views: Sequence[str] = ("sax",),
                          all_frames: bool = False, ids: Sequence[str] | None = None,
                          log=None) -> DatasetExport:
    """Write the labelled studies of ``cache`` as ``out_dir/DatasetNNN_Name``.

    Args:
        cache: a planessl cache (or its folder).
        out_dir: nnU-Net's raw folder (``$nnUNet_raw``) or any folder.
        dataset_id: the dataset number (1-999).
        name: the dataset name after the id.
        views: the view types whose labelled series become cases.
        all_frames: every labelled frame instead of ED/ES.
        ids: only these studies (default: all).
        log: where one-line notes go (default: stderr).

    A study that cannot be read is named in one line and skipped; the rest is written.
    Raises :class:`PlaneSSLError` when nothing is labelled or the dataset folder exists.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    final = Path(out_dir) / dataset_folder_name(dataset_id, name)
    if final.exists():
        raise PlaneSSLError(f"{final}: already exists; remove it or choose another --id/--name")
    wanted = list(cache.ids) if ids is None else list(ids)
    unknown = sorted(set(wanted) - set(cache.ids))
    if unknown:
        raise PlaneSSLError(f"{cache.path}: no studies named {', '.join(unknown[:5])}")

    # Pass 1: which cases, and which label values occur (nnU-Net wants them consecutive).
    jobs: list[tuple[str, str, int]] = []
    values: set[int] = {0}
    skipped: list[str] = []
    for sid in wanted:
        try:
            study = cache.load(sid)
        except PlaneSSLError as exc:
            log(f"planessl: skipped {exc}")
            skipped.append(sid)
            continue
        for s in study.series:
            if s.view not in views or s.labels is None:
                continue
            for f in case_frames(s, all_frames):
                values.update(int(v) for v in np.unique(s.labels[:, f]))
                jobs.append((sid, s.name, f))
    if not jobs:
        raise PlaneSSLError(f"{cache.path}: no labelled {'/'.join(views)} series to export "
                            f"(a labelled cache is needed: phantom, ACDC or your own labels)")
    labels = _label_names(sorted(values))
    lut = np.zeros(256, np.uint8)
    for k, v in enumerate(sorted(values)):
        lut[v] = k

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
    (tmp / "imagesTr").mkdir(parents=True)
    (tmp / "labelsTr").mkdir()
    result = DatasetExport(final, labels=labels, skipped=skipped)
    try:
        unknown_spacing = set()
        for sid, series_name, f in jobs:
            study = cache.load(sid)
            s = next(x for x in study.series if x.name == series_name)
            if not s.spacing_known:
                unknown_spacing.add(sid)
            affine = affine_from_planes(s.planes, ras=True)
            case = _case_id(sid, series_name, f)
            image = np.ascontiguousarray(np.asarray(s.pixels[:, f], np.float32).transpose(1, 2, 0))
            label = np.ascontiguousarray(lut[np.asarray(s.labels[:, f])].transpose(1, 2, 0))
            _write_nifti(image, affine, tmp / "imagesTr" / f"{case}_0000{FILE_ENDING}")
            _write_nifti(label, affine, tmp / "labelsTr" / f"{case}{FILE_ENDING}")
            result.cases.append(case)
        if unknown_spacing:
            log(f"planessl: {len(unknown_spacing)} stud(ies) carry no pixel spacing (e.g. ACDC "
                f"HDF5): written with the cache's nominal 1 mm grid")
        meta = {"channel_names": {"0": CHANNEL_NAME}, "labels": labels,
                "numTraining": len(result.cases), "file_ending": FILE_ENDING,
                "name": final.name, "description": f"written by planessl export-dataset from "
                                                   f"{cache.path.resolve()}"}
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2))
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return result
