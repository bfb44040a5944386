"""Inference with a fine-tuned model: label maps in each input's own voxel grid.

Segmentation writes one ``.nii.gz`` per input volume:

- from a cache: one volume per study, SAX series and frame (ED/ES by default), named
  ``<study>_<series>_<phase>.nii.gz`` (phase ``ED``, ``ES`` or ``F<k>``);
- from source images (:func:`predict_files`): ``<name>_pred.nii.gz`` per NIfTI file (same
  shape and affine; a 4D input gives a 4D map) or per DICOM series of the model's views
  (every frame), ``<name>`` derived from the input, optionally with DICOM SEG objects.

The array is ``(rows, cols, slices[, frames])`` — voxel ``(i, j, k)`` is pixel ``(i, j)`` of
slice ``k`` — with the affine of the input planes (RAS), or the identity when the source has
no geometry (``spacing_known`` false). ``predictions.json`` indexes what was written.
Classification writes ``predictions.csv``: per study the mean class probabilities of its images.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from planessl.atomic import atomic_path
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

    def classify_exam(self, study) -> np.ndarray | None:
        """Exam-level model: the label probabilities ``(K,)`` (multi-label: sigmoid) or class
        probabilities of a study, from the evenly spread slices of its input views
        (:func:`planessl.data.labelled.exam_images`); ``None`` when a view is missing."""
        import torch

        from planessl.data.labelled import exam_images

        images = exam_images(study, self.spec, int(self.model.get("slices_per_view", 8)))
        if images is None:
            return None
        with torch.no_grad():
            logits = self.net(torch.from_numpy(images)[None])[0]
        return (torch.sigmoid(logits) if self.model.get("multilabel")
                else torch.softmax(logits, 0)).numpy()

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
    if pred.model["task"] == "classification" and pred.model.get("pooling", "image") != "image":
        return _predict_exams(pred, run, cache, ids, out, echo)
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


def _predict_exams(pred: "Predictor", run, cache, ids: list[str], out: Path,
                   echo: Callable[[str], None]) -> list[dict]:
    """``predictions.csv`` of an exam-level model: ``study``, then per label ``<key>``
    (0/1 at 0.5) and ``p_<key>`` (multi-label), or ``predicted`` and ``p<c>``."""
    keys = list(pred.model.get("target_keys") or [pred.model.get("target_key", "class")])
    multilabel = bool(pred.model.get("multilabel"))
    rows = []
    for sid in ids:
        probs = pred.classify_exam(cache.load(sid))
        if probs is None:
            echo(f"{sid}: lacks a {'/'.join(pred.spec.input_views)} series; skipped")
            continue
        if multilabel:
            rows.append([sid] + [int(p >= 0.5) for p in probs] + [f"{p:.6f}" for p in probs])
        else:
            rows.append([sid, int(probs.argmax())] + [f"{p:.6f}" for p in probs])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["study"] + (keys + [f"p_{k}" for k in keys] if multilabel else
                            ["predicted"] + [f"p{c}" for c in range(pred.model["n_classes"])]))
    w.writerows(rows)
    write_text_atomic(out / "predictions.csv", buf.getvalue())
    entries = [{"study": r[0]} for r in rows]
    write_text_atomic(out / INDEX, json.dumps({"task": "classification", "model": str(run),
                                               "cache": str(cache.path), "multilabel": multilabel,
                                               "target_keys": keys, "entries": entries}, indent=1))
    echo(f"predicted {len(rows)} exams -> {out / 'predictions.csv'}")
    return entries


#: Suffix of every label map predicted from a source file or series.
PRED_SUFFIX = "_pred"
_NIFTI_ENDINGS = (".nii.gz", ".nii")
#: Names of NIfTI files that hold label maps (or earlier predictions), not images.
_LABEL_NAME = re.compile(r"(_(gt|seg|label|labels|mask|pred)$)|(^seg_)|(^seg$)", re.IGNORECASE)


def _nifti_stem(path: Path) -> str | None:
    """The name without ``.nii``/``.nii.gz``, or ``None`` for a file that is not NIfTI."""
    for end in _NIFTI_ENDINGS:
        if path.name.lower().endswith(end):
            return path.name[:-len(end)]
    return None


def safe_name(text: str, default: str = "series") -> str:
    """``text`` reduced to a portable file-name part (letters, digits, ``._-``)."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._")
    return out[:80] or default


class _Names:
    """Output names, unique within one run: a clash first gets the input's name as prefix,
    then a number."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def claim(self, base: str, prefix: str) -> str:
        for cand in [base, f"{prefix}_{base}"] + [f"{prefix}_{base}_{n}" for n in range(2, 10000)]:
            if cand.lower() not in self.used:
                self.used.add(cand.lower())
                return cand
        raise PlaneSSLError(f"too many outputs named {base}")  # pragma: no cover


def _split_inputs(inputs: Sequence[str | Path], echo: Callable[[str], None]
                  ) -> list[tuple[Path, list[Path], list[str]]]:
    """Per input argument: ``(input, NIfTI files, other files)``. Missing inputs and NIfTI
    files named like label maps are reported and left out."""
    from planessl.io.dicom_scan import walk_files

    out = []
    for arg in inputs:
        root = Path(arg)
        if not root.exists():
            echo(f"planessl: skipped {root}: no such file or folder")
            continue
        files, empty = walk_files([root])
        for e in empty:
            echo(f"planessl: skipped {e.path}: {e.reason}")
        nifti, other = [], []
        for f in files:
            stem = _nifti_stem(Path(f))
            if stem is None:
                other.append(f)
            elif _LABEL_NAME.search(stem) and root.is_dir():
                echo(f"planessl: skipped {f}: named like a label map, not an image")
            else:
                nifti.append(Path(f))
        out.append((root, nifti, other))
    return out


def _predict_nifti(pred: Predictor, path: Path, out: Path, names: _Names,
                   lcc: bool) -> dict:
    """Segment one NIfTI volume (every frame of a 4D one) on its own grid."""
    from planessl.io.nifti import load_header, read_volume

    data, planes = read_volume(path)  # (rows, cols, slices, frames)
    img = load_header(path)
    affine = np.asarray(img.affine)
    maps = [pred.segment(data[:, :, :, t].transpose(2, 0, 1), planes, lcc).transpose(1, 2, 0)
            for t in range(data.shape[3])]
    labels = np.stack(maps, axis=-1).reshape(img.shape)
    name = names.claim(safe_name(_nifti_stem(path) or path.name) + PRED_SUFFIX,
                       safe_name(path.parent.name, "input"))
    write_label_nifti(labels, affine, out / f"{name}.nii.gz")
    return {"file": f"{name}.nii.gz", "source": str(path), "format": "nifti",
            "shape": list(labels.shape)}


def _series_text(records: list) -> tuple[str, str]:
    """``(SeriesDescription, SeriesNumber)`` of the first source file of a stack."""
    import pydicom

    try:
        ds = pydicom.dcmread(records[0].path, stop_before_pixels=True, force=True,
                             specific_tags=["SeriesDescription", "SeriesNumber"])
        return str(ds.get("SeriesDescription", "") or ""), str(ds.get("SeriesNumber", "") or "")
    except Exception:  # noqa: BLE001 - the name is a convenience; the scan read the file
        return "", ""


def _dicom_base_name(stack: list, all_records: list, view: str) -> str:
    """The series' folder name when the stack alone fills one folder, else its
    SeriesDescription, else its view."""
    import os

    folders = {os.path.dirname(r.path) for sl in stack for r in sl}
    mine = {id(r) for sl in stack for r in sl}
    if len(folders) == 1:
        folder = next(iter(folders))
        others = any(os.path.dirname(r.path) == folder and id(r) not in mine for r in all_records)
        if not others and safe_name(os.path.basename(folder), ""):
            return safe_name(os.path.basename(folder))
    description, _ = _series_text([stack[0][0]])
    return safe_name(description, "") or safe_name(view)


def _predict_dicom(pred: Predictor, root: Path, files: list[str], out: Path, names: _Names,
                   lcc: bool, dicom_seg: bool, echo: Callable[[str], None]) -> list[dict]:
    """Segment every series of the model's input views found among ``files``."""
    from planessl.io.dicom_scan import discover_dicom, load_dicom

    sources, skipped = discover_dicom([Path(f) for f in files], progress=False)
    entries = []
    views = pred.spec.input_views
    prefix = safe_name((root if root.is_dir() else root.parent).name, "input")
    for k, source in enumerate(sources):
        records: list = []
        try:
            study = load_dicom(source, f"input{k}", skipped, series_records=records)
        except PlaneSSLError as exc:
            echo(f"planessl: skipped {source.files[0].parent}: {exc}")
            continue
        all_records = source.payload["records"]
        for series, stack in zip(study.series, records):
            if series.view not in views:
                echo(f"planessl: skipped {_folder_of(stack)}: a {series.view} series; the model "
                     f"segments {'/'.join(views)}")
                continue
            try:
                labels = np.stack([pred.segment(np.asarray(series.pixels[:, f]), series.planes,
                                                lcc) for f in range(series.n_frames)], axis=1)
            except (PlaneSSLError, ValueError) as exc:
                echo(f"planessl: skipped {_folder_of(stack)}: {exc}")
                continue
            arr = labels.transpose(2, 3, 0, 1)  # (S, F, H, W) -> (H, W, S, F)
            if arr.shape[3] == 1:
                arr = arr[..., 0]
            name = names.claim(_dicom_base_name(stack, all_records, series.view) + PRED_SUFFIX,
                               prefix)
            write_label_nifti(arr, stack_affine(series.planes, series.spacing_known),
                              out / f"{name}.nii.gz")
            description, number = _series_text(stack[0])
            entry = {"file": f"{name}.nii.gz", "source": _folder_of(stack), "format": "dicom",
                     "series_description": description, "series_number": number,
                     "view": series.view, "shape": list(arr.shape),
                     "n_files": len({r.path for sl in stack for r in sl})}
            if dicom_seg:
                try:
                    entry["dicom_seg"] = write_dicom_seg(
                        labels, stack, out, name[:-len(PRED_SUFFIX)], pred.model["n_classes"])
                except PlaneSSLError as exc:
                    echo(f"planessl: no DICOM SEG for {_folder_of(stack)}: {exc}")
            entries.append(entry)
    not_dicom = [sk.path for sk in skipped if sk.reason == "not a DICOM file"]
    for sk in skipped:
        if not sk.cached and sk.reason != "not a DICOM file":
            echo(f"planessl: skipped {sk.path}: {sk.reason}")
    if not_dicom:
        more = f" (and {len(not_dicom) - 1} more)" if len(not_dicom) > 1 else ""
        echo(f"planessl: skipped {not_dicom[0]}{more}: neither DICOM nor NIfTI")
    return entries


def _folder_of(stack: list) -> str:
    """The folder that holds a stack's files (their common folder when several)."""
    import os

    folders = sorted({os.path.dirname(r.path) for sl in stack for r in sl})
    return folders[0] if len(folders) == 1 else os.path.commonpath(folders)


#: SNOMED CT codes of the segmented structures (ACDC labels, then atria and aorta).
_SEGMENT_CODES = {1: ("RV", "RightVentricle"), 2: ("myocardium", "LeftVentricleMyocardium"),
                  3: ("LV", "LeftVentricle"), 4: ("LA", "LeftAtrium"),
                  5: ("RA", "RightAtrium"), 6: ("aorta", "Aorta")}


#: UIDs a SEG needs in its source images to reference them.
_REFERENCE_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                   "FrameOfReferenceUID")
#: Patient/study attributes (type 2) that highdicom copies from the sources into a SEG.
_TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                 "AccessionNumber", "ReferringPhysicianName", "StudyID", "StudyDate",
                 "StudyTime")


def write_dicom_seg(labels: np.ndarray, stack: list, out: Path, name: str,
                    n_classes: int) -> list[str]:
    """Write DICOM Segmentation objects (highdicom, BINARY, one segment per structure) of
    the ``(S, F, H, W)`` ``labels`` of a stack whose source records are ``stack[s][f]``.

    A SEG holds one image per position, so a cine gets one SEG per frame (time point),
    ``<name>_seg_tNN.dcm`` (``<name>_seg.dcm`` for a single frame), each referencing the
    source image of every slice at that time (across series when the stack was merged
    from one series per slice). Returns the names written.

    Raises:
        PlaneSSLError: highdicom is missing, the sources are multi-frame images, or
            highdicom refuses them.
    """
    try:
        import highdicom as hd
        from pydicom.sr.codedict import codes
    except ImportError:
        raise PlaneSSLError("--dicom-seg needs highdicom (pip install highdicom)") from None
    import pydicom

    from planessl import __version__

    if any(r.frame for sl in stack for r in sl):
        raise PlaneSSLError("the sources are multi-frame images (not supported for SEG)")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="planessl", family=codes.cid7162.ArtificialIntelligence, version=__version__)
    segments = []
    for value in range(1, n_classes):
        label, code = _SEGMENT_CODES.get(value, (f"class {value}", None))
        segments.append(hd.seg.SegmentDescription(
            segment_number=value, segment_label=label,
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=getattr(codes.SCT, code) if code else codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm))
    n_frames = len(stack[0])
    series_uid = hd.UID()
    written = []
    for f in range(n_frames):
        try:
            sources = [pydicom.dcmread(sl[f].path, stop_before_pixels=True) for sl in stack]
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types
            raise PlaneSSLError(f"{stack[0][f].path}: cannot re-read ({exc})") from None
        for ds in sources:
            blank = [k for k in _REFERENCE_UIDS if not str(ds.get(k, "") or "").strip()]
            if blank:
                raise PlaneSSLError(f"{stack[0][f].path}: no {', '.join(blank)} (blanked by an "
                                    f"anonymiser?); a SEG could not reference the images")
        for ds in sources:  # type 2 attributes the SEG copies; anonymisers often drop them
            for keyword in _TYPE2_COPIED:
                if keyword not in ds:
                    setattr(ds, keyword, "")
        first = sources[0].SeriesInstanceUID
        main = [ds for ds in sources if ds.SeriesInstanceUID == first]
        further = [ds for ds in sources if ds.SeriesInstanceUID != first]
        geometry = {}
        if further:  # slices from several series: place the frames by their positions
            ds = sources[0]
            geometry = dict(
                plane_positions=[hd.PlanePositionSequence(
                    hd.CoordinateSystemNames.PATIENT, [float(v) for v in x.ImagePositionPatient])
                    for x in sources],
                plane_orientation=hd.PlaneOrientationSequence(
                    hd.CoordinateSystemNames.PATIENT,
                    [float(v) for v in ds.ImageOrientationPatient]),
                pixel_measures=hd.PixelMeasuresSequence(
                    [float(v) for v in ds.PixelSpacing], float(ds.get("SliceThickness") or 1.0)))
        file = f"{name}_seg.dcm" if n_frames == 1 else f"{name}_seg_t{f:02d}.dcm"
        try:
            seg = hd.seg.Segmentation(
                source_images=main, further_source_images=further or None,
                pixel_array=np.ascontiguousarray(labels[:, f]).astype(np.uint8),
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=segments,
                series_instance_uid=series_uid, series_number=9000,
                sop_instance_uid=hd.UID(), instance_number=f + 1,
                manufacturer="planessl", manufacturer_model_name="planessl predict",
                software_versions=__version__, device_serial_number="0",
                series_description=f"planessl {name}"[:64], omit_empty_frames=False,
                **geometry)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise PlaneSSLError(f"{stack[0][f].path}: highdicom refused the images "
                                f"({exc})") from None
        if further:
            _add_frame_references(seg, sources)
        with atomic_path(out / file) as tmp:
            seg.save_as(tmp)
        written.append(file)
    return written


def _add_frame_references(seg, sources: list) -> None:
    """Reference each SEG frame's source image by position (highdicom matches positions
    only within one series; these frames come from several)."""
    from pydicom.dataset import Dataset

    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in sources])
    for item in seg.PerFrameFunctionalGroupsSequence:
        pos = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        k = int(np.argmin(np.linalg.norm(positions - pos, axis=1)))
        if np.linalg.norm(positions[k] - pos) > 1e-3 or item.get("DerivationImageSequence"):
            continue
        src, code, purpose, derivation = Dataset(), Dataset(), Dataset(), Dataset()
        src.ReferencedSOPClassUID = sources[k].SOPClassUID
        src.ReferencedSOPInstanceUID = sources[k].SOPInstanceUID
        purpose.CodeValue, purpose.CodingSchemeDesignator = "121322", "DCM"
        purpose.CodeMeaning = "Source image for image processing operation"
        src.PurposeOfReferenceCodeSequence = [purpose]
        src.SpatialLocationsPreserved = "YES"
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = \
            "113076", "DCM", "Segmentation"
        derivation.DerivationCodeSequence = [code]
        derivation.SourceImageSequence = [src]
        item.DerivationImageSequence = [derivation]


def predict_files(run: str | Path, inputs: Sequence[str | Path], out: str | Path,
                  lcc: bool = False, dicom_seg: bool = False,
                  echo: Callable[[str], None] = print) -> list[dict]:
    """Segment source images: NIfTI volumes and DICOM series, given as files or folders.

    Each label map is written as ``<name>_pred.nii.gz`` on its input's own grid: ``<name>``
    is the NIfTI file's name, or the DICOM series' folder (when it holds just that series)
    or its SeriesDescription; a clash gets the input's name as prefix. DICOM series are
    those of the model's input views, every frame; ``dicom_seg`` adds DICOM Segmentation
    objects referencing the source images. A file or series that cannot be used is reported
    on one line and the rest goes on.
    """
    pred = Predictor(run, "segmentation")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = _Names()
    entries: list[dict] = []
    for root, nifti, other in _split_inputs(inputs, echo):
        for path in nifti:
            try:
                entries.append(_predict_nifti(pred, path, out, names, lcc))
            except (PlaneSSLError, OSError, ValueError) as exc:
                why = exc if isinstance(exc, PlaneSSLError) else InputFileError(path, str(exc))
                echo(f"planessl: skipped {why}")
        if other:
            entries.extend(_predict_dicom(pred, root, other, out, names, lcc, dicom_seg, echo))
    write_text_atomic(out / INDEX, json.dumps({"task": "segmentation", "model": str(run),
                                               "files": True, "lcc": lcc, "entries": entries},
                                              indent=1))
    echo(f"predicted {len(entries)} volumes from {len(inputs)} input(s) -> {out}")
    return entries
