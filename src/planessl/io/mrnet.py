"""MRNet knee exams: ``{sagittal,coronal,axial}/NNNN.npy`` (uint8, slices x 256 x 256) and
``<split>-{abnormal,acl,meniscus}.csv`` (``exam,label``) beside the split folder.

The files carry no geometry: planes are nominal (1 mm, ``spacing_known=False``, normals
along the patient axes of each plane's name) and the three planes of an exam cannot be
related to each other, so they must not be intersected.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from planessl.errors import InputFileError
from planessl.geometry import Plane
from planessl.io.sources import Skipped, SourceStudy, describe_error
from planessl.study import KNEE_VIEWS, Series, Study

TARGETS = ("abnormal", "acl", "meniscus")
#: Nominal (row_dir, col_dir) per plane type, LPS.
_NOMINAL_AXES = {"sagittal": ([0, 1, 0], [0, 0, -1]), "coronal": ([1, 0, 0], [0, 0, -1]),
                 "axial": ([1, 0, 0], [0, 1, 0])}


def _split_dirs(paths: list[Path]) -> list[Path]:
    """Folders that hold sagittal/coronal/axial subfolders."""
    out = set()
    for p in paths:
        if p.name in KNEE_VIEWS and p.is_dir():
            out.add(p.parent)
        for q in ([p] if p.is_dir() else []) + ([d for d in p.rglob("*") if d.is_dir()]
                                                 if p.is_dir() else []):
            if q.name in KNEE_VIEWS:
                out.add(q.parent)
    return sorted(out)


def _read_targets(split_dir: Path, skipped: list[Skipped]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for t in TARGETS:
        path = split_dir.parent / f"{split_dir.name}-{t}.csv"
        if not path.is_file():
            continue
        try:
            with open(path, newline="") as fh:
                for row in csv.reader(fh):
                    if len(row) >= 2 and row[0].strip().isdigit():
                        out.setdefault(f"{int(row[0]):04d}", {})[t] = int(float(row[1]))
        except (OSError, ValueError) as exc:
            skipped.append(Skipped(str(path), f"unreadable label CSV ({describe_error(exc)})"))
    return out


def discover_mrnet(paths: list[Path], workers: int = 1, progress: bool | None = None
                   ) -> tuple[list[SourceStudy], list[Skipped]]:
    sources, skipped = [], []
    for split in _split_dirs(paths):
        targets = _read_targets(split, skipped)
        exams: dict[str, dict[str, Path]] = {}
        for view in KNEE_VIEWS:
            for f in sorted((split / view).glob("*.npy")) if (split / view).is_dir() else []:
                if not f.stem.isdigit():
                    skipped.append(Skipped(str(f), "not an MRNet exam file (NNNN.npy)"))
                    continue
                exams.setdefault(f"{int(f.stem):04d}", {})[view] = f
        for exam, files in sorted(exams.items()):
            sources.append(SourceStudy(
                key=f"mrnet:{split.name}:{exam}", format="mrnet", files=list(files.values()),
                payload={"files": {k: str(v) for k, v in files.items()},
                         "targets": targets.get(exam, {})}))
    return sources, skipped


def load_mrnet(source: SourceStudy, study_id: str,
               skipped: list[Skipped] | None = None) -> Study:
    skipped = [] if skipped is None else skipped
    series = []
    for view, path in source.payload["files"].items():
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # short, empty, pickled, not .npy
            skipped.append(Skipped(path, f"not a readable .npy file ({describe_error(exc)})"))
            continue
        if arr.dtype.kind not in "uifb" or arr.dtype.names is not None:
            skipped.append(Skipped(path, f"array type {arr.dtype} is not an intensity"))
            continue
        if arr.ndim != 3 or min(arr.shape) < 1:
            skipped.append(Skipped(path, f"expected slices x H x W, got shape {arr.shape}"))
            continue
        try:
            pixels = np.asarray(arr, dtype=np.float32)[:, None]
        except (OSError, ValueError) as exc:
            skipped.append(Skipped(path, f"cannot read the array ({describe_error(exc)})"))
            continue
        if not np.all(np.isfinite(pixels)):
            skipped.append(Skipped(path, "holds NaN or infinite values"))
            continue
        row, col = _NOMINAL_AXES[view]
        normal = np.cross(row, col)
        planes = [Plane(origin=k * normal, row_dir=row, col_dir=col, spacing=(1.0, 1.0),
                        shape=arr.shape[1:]) for k in range(arr.shape[0])]
        series.append(Series(
            name=view, view=view, planes=planes, pixels=pixels, spacing_known=False,
            view_reason=f"MRNet: folder name says '{view}'; no geometry in the source: nominal "
                        f"1 mm planes, not registered to the other planes (do not intersect)"))
    if not series:
        raise InputFileError(source.files[0], "no readable plane in the exam")
    return Study(id=study_id, series=series, targets=dict(source.payload["targets"]),
                 group="knee")
