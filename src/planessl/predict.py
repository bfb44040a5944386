"""Inference with a fine-tuned model: label maps in each input's own voxel grid.

Segmentation writes one ``.nii.gz`` per input volume:

- from a cache: one volume per study, SAX series and frame (ED/ES by default), named
  ``<study>_<series>_<phase>.nii.gz`` (phase ``ED``, ``ES`` or ``F<k>``);
- from NIfTI files: one file per input with the same base name (a 4D input gives a 4D map).

The array is ``(rows, cols, slices[, frames])`` — voxel ``(i, j, k)`` is pixel ``(i, j)`` of
slice ``k`` — with the affine of the input planes (RAS), or the identity when the source has
no geometry (``spacing_known`` false). ``predictions.json`` indexes what was written.
Classification writes ``predictions.csv``: per study the mean class probabilities of its images.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from planessl.errors import InputFileError, PlaneSSLError
from planessl.geometry import Plane, affine_from_planes
from planessl.runinfo import write_text_atomic

INDEX = "predictions.json"


def stack_affine(planes: Sequence[Plane], spacing_known: bool = True) -> np.ndarray:
    """4x4 RAS affine of voxel ``(i, j, k)`` of a stack (identity without geometry)."""
    if not spacing_known:
        return np.eye(4)
    return affine_from_planes(planes, ras=True)


def write_label_nifti(labels: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write ``(rows, cols, slices[, frames])`` uint8 labels atomically as NIfTI."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(labels, dtype=np.uint8), affine)
    img.set_sform(affine, code=1 if not np.allclose(affine, np.eye(4)) else 0)
    img.set_qform(affine, code=1 if not np.allclose(affine, np.eye(4)) else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.nii.gz")
    nib.save(img, str(tmp))
    tmp.replace(path)


class Predictor:
    """Runs a fine-tuned network on 2D images given with their planes."""

    def __init__(self, run: str | Path, task: str | None = None, batch_size: int = 16) -> None:
        from planessl.data.labelled import GridSpec
        from planessl.finetune import load_finetuned

        self.net, self.model = load_finetuned(run, task)
        g = self.model["grid"]
        self.spec = GridSpec(g["image_size"], g["spacing_mm"], tuple(g["clip_percentiles"]),
                             tuple(g["input_views"]))
        self.batch_size = batch_size

    def _probs(self, images: list[np.ndarray], planes: list[Plane]) -> tuple[np.ndarray, list[Plane]]:
        import torch

        from planessl.data.labelled import image_on_grid

        grid_images, grids = [], []
        for raw, plane in zip(images, planes):
            img, grid = image_on_grid(raw, plane, self.spec)
            grid_images.append(img)
            grids.append(grid)
        x = torch.from_numpy(np.stack(grid_images)[:, None])
        outs = []
        with torch.no_grad():
            for k in range(0, len(x), self.batch_size):
                outs.append(torch.softmax(self.net(x[k:k + self.batch_size]), dim=1).numpy())
        return np.concatenate(outs), grids

    def segment(self, images: np.ndarray, planes: Sequence[Plane], lcc: bool = False) -> np.ndarray:
        """``(S, H, W)`` images of a stack → ``(S, H, W)`` uint8 labels on the same grid."""
        from planessl.data.labelled import labels_to_source

        probs, grids = self._probs([images[k] for k in range(len(planes))], list(planes))
        labels = np.stack([labels_to_source(p, g, src) for p, g, src in zip(probs, grids, planes)])
        if lcc:
            labels = largest_components(labels, self.model["n_classes"])
        return labels

    def classify(self, images: list[np.ndarray], planes: list[Plane]) -> np.ndarray:
        """Mean class probabilities ``(C,)`` over the images of a study."""
        probs, _ = self._probs(images, planes)
        return probs.mean(0)


def largest_components(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Keep the largest 3D connected component of each foreground class (MONAI
    ``KeepLargestConnectedComponent``, classes independent)."""
    import torch
    from monai.transforms import KeepLargestConnectedComponent

    keep = KeepLargestConnectedComponent(applied_labels=list(range(1, n_classes)), is_onehot=False,
                                         independent=True)
    out = keep(torch.as_tensor(labels[None].astype(np.int64)))
    return np.asarray(out[0]).astype(np.uint8)


def _frames(series, which: str) -> list[int]:
    if which == "all":
        return list(range(series.n_frames))
    if which == "labelled" and series.labelled_frames:
        return sorted(series.labelled_frames)
    edes = [f for f in (series.ed_frame, series.es_frame) if f is not None]
    return sorted(set(edes)) if edes else list(range(series.n_frames))


def predict_cache(run: str | Path, cache_path: str | Path, out: str | Path,
                  ids: Sequence[str] | None = None, frames: str = "edes", lcc: bool = False,
                  echo: Callable[[str], None] = print) -> list[dict]:
    """Predict every (selected) study of a cache; returns the index entries written."""
    from planessl.cache import Cache
    from planessl.data.labelled import phase_of

    pred = Predictor(run)
    cache = Cache(cache_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = list(cache.ids if ids is None else ids)
    unknown = [i for i in ids if i not in set(cache.ids)]
    if unknown:
        raise PlaneSSLError(f"{cache.path}: studies not in the cache: {', '.join(unknown[:5])}")
    views = pred.spec.input_views
    entries: list[dict] = []
    if pred.model["task"] == "classification":
        rows = []
        for sid in ids:
            study = cache.load(sid)
            images, planes = [], []
            for s in study.series:
                if s.view in views:
                    for k in range(s.n_slices):
                        for f in _frames(s, "edes"):
                            images.append(np.asarray(s.pixels[k, f]))
                            planes.append(s.planes[k])
            if not images:
                echo(f"{sid}: no {'/'.join(views)} images; skipped")
                continue
            probs = pred.classify(images, planes)
            rows.append([sid, int(probs.argmax())] + [f"{p:.6f}" for p in probs])
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["study", "predicted"] + [f"p{c}" for c in range(pred.model["n_classes"])])
        w.writerows(rows)
        write_text_atomic(out / "predictions.csv", buf.getvalue())
        entries = [{"study": r[0], "predicted": r[1]} for r in rows]
        write_text_atomic(out / INDEX, json.dumps({"task": "classification", "model": str(run),
                                                   "cache": str(cache.path), "entries": entries}, indent=1))
        echo(f"predicted {len(rows)} studies -> {out / 'predictions.csv'}")
        return entries
    for sid in ids:
        study = cache.load(sid)
        for s in study.series:
            if s.view not in views:
                continue
            for f in _frames(s, frames):
                labels = pred.segment(np.asarray(s.pixels[:, f]), s.planes, lcc)
                name = f"{sid}_{s.name}_{phase_of(s, f)}.nii.gz"
                write_label_nifti(labels.transpose(1, 2, 0), stack_affine(s.planes, s.spacing_known),
                                  out / name)
                entries.append({"file": name, "study": sid, "series": s.name, "frame": f,
                                "phase": phase_of(s, f), "shape": list(labels.shape)})
    write_text_atomic(out / INDEX, json.dumps({"task": "segmentation", "model": str(run),
                                               "cache": str(cache.path), "lcc": lcc,
                                               "entries": entries}, indent=1))
    echo(f"predicted {len(entries)} volumes -> {out}")
    return entries


def predict_files(run: str | Path, files: Sequence[str | Path], out: str | Path,
                  lcc: bool = False, echo: Callable[[str], None] = print) -> list[dict]:
    """Segment NIfTI volumes; one output per input with the same base name. A file that
    cannot be read is reported on one line and skipped."""
    from planessl.io.nifti import load_header, read_volume

    pred = Predictor(run, "segmentation")
    out = Path(out)
    entries = []
    for f in files:
        path = Path(f)
        try:
            data, planes = read_volume(path)  # (rows, cols, slices, frames)
            affine = np.asarray(load_header(path).affine)
        except (PlaneSSLError, OSError, ValueError) as exc:
            echo(f"planessl: skipped {exc if isinstance(exc, PlaneSSLError) else InputFileError(path, str(exc))}")
            continue
        maps = [pred.segment(data[:, :, :, t].transpose(2, 0, 1), planes, lcc).transpose(1, 2, 0)
                for t in range(data.shape[3])]
        labels = np.stack(maps, axis=-1)
        img_shape = load_header(path).shape
        labels = labels.reshape(img_shape)
        name = path.name if path.name.endswith((".nii.gz", ".nii")) else path.name + ".nii.gz"
        if name.endswith(".nii"):
            name += ".gz"
        write_label_nifti(labels, affine, out / name)
        entries.append({"file": name, "source": str(path), "shape": list(labels.shape)})
    write_text_atomic(out / INDEX, json.dumps({"task": "segmentation", "model": str(run),
                                               "files": True, "lcc": lcc, "entries": entries}, indent=1))
    echo(f"predicted {len(entries)} of {len(files)} files -> {out}")
    return entries
