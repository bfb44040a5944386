"""Compare a prediction folder (``planessl predict`` output) with a cache's truth.

Segmentation: one row per volume (study, series, phase) with Dice / HD95 / ASSD per
structure (:mod:`planessl.evaluation.metrics`), the distance ``unit`` (mm or px), and a
summary per phase (mean ± std). Classification: accuracy and ROC AUC over the studies.
Writes ``evaluation.csv`` (rows) and ``evaluation.json`` (summary) into the output folder.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable

import numpy as np

from planessl.cache import Cache
from planessl.errors import InputFileError, PlaneSSLError
from planessl.evaluation.metrics import METRICS, STRUCTURES, flatten_metrics, segmentation_metrics, summarise
from planessl.predict import INDEX
from planessl.runinfo import write_text_atomic

METRIC_KEYS = [f"{s}_{m}" for s in STRUCTURES.values() for m in METRICS] + ["mean_dice"]


def series_spacing(series) -> tuple[float, float, float] | None:
    """``(slice_step, di, dj)`` mm of a stack, or ``None`` when its spacing is unknown."""
    if not series.spacing_known:
        return None
    p0 = series.planes[0]
    if series.n_slices > 1:
        step = float(np.linalg.norm(series.planes[-1].origin - p0.origin) / (series.n_slices - 1))
    else:
        step = float(p0.thickness or 1.0)
    return (step, float(p0.spacing[0]), float(p0.spacing[1]))


def read_index(pred_dir: Path) -> dict:
    path = pred_dir / INDEX
    if not path.is_file():
        raise PlaneSSLError(f"{pred_dir}: not a planessl prediction folder (no {INDEX}); "
                            f"create it with `planessl predict`")
    return json.loads(path.read_text())


def evaluate_segmentation(pred_dir: str | Path, cache_path: str | Path,
                          echo: Callable[[str], None] = print,
                          distances: bool = True) -> tuple[list[dict], dict]:
    """Rows (one per volume) and a summary per phase and overall (``distances=False``:
    Dice only, HD95/ASSD left NaN)."""
    import nibabel as nib

    pred_dir = Path(pred_dir)
    index = read_index(pred_dir)
    if index.get("task") != "segmentation":
        raise PlaneSSLError(f"{pred_dir}: holds {index.get('task')} predictions, not segmentation")
    if index.get("files"):
        raise PlaneSSLError(f"{pred_dir}: predictions of files, not of a cache; evaluate needs "
                            f"predictions made with --data CACHE")
    cache = Cache(cache_path)
    known = set(cache.ids)
    rows, problems = [], []
    for e in index["entries"]:
        path = pred_dir / e["file"]
        if e["study"] not in known:
            problems.append(f"{path}: study {e['study']} is not in {cache.path}")
            continue
        study = cache.load(e["study"])
        series = next((s for s in study.series if s.name == e["series"]), None)
        if series is None or series.labels is None or e["frame"] not in series.labelled_frames:
            problems.append(f"{path}: {cache.path} has no labels for series {e['series']} "
                            f"frame {e['frame']} of study {e['study']}")
            continue
        try:
            pred = np.asarray(nib.load(str(path)).dataobj).transpose(2, 0, 1)
        except (FileNotFoundError, OSError, ValueError) as exc:
            problems.append(str(InputFileError(path, f"cannot read prediction ({exc})")))
            continue
        truth = np.asarray(series.labels[:, e["frame"]])
        if pred.shape != truth.shape:
            problems.append(f"{path}: shape {pred.shape} (slices, rows, cols) does not match "
                            f"the truth {truth.shape}")
            continue
        spacing = series_spacing(series)
        result = segmentation_metrics(pred, truth, spacing, distances=distances)
        rows.append({"study": e["study"], "series": e["series"], "phase": e["phase"],
                     "unit": result["unit"], **flatten_metrics(result)})
    for p in problems:
        echo(f"planessl: skipped {p}")
    if not rows:
        raise PlaneSSLError(f"{pred_dir}: no prediction matches a labelled volume of {cache.path} "
                            f"({len(problems)} mismatched); predictions and truth must come from the same cache")
    summary: dict = {"n_volumes": len(rows), "n_skipped": len(problems),
                     "units": sorted({r["unit"] for r in rows}), "phases": {}}
    for phase in sorted({r["phase"] for r in rows}):
        summary["phases"][phase] = summarise([r for r in rows if r["phase"] == phase], METRIC_KEYS)
    summary["all"] = summarise(rows, METRIC_KEYS)
    return rows, summary


def evaluate_classification(pred_dir: str | Path, cache_path: str | Path,
                            echo: Callable[[str], None] = print) -> tuple[list[dict], dict]:
    """Rows (one per study) and accuracy / ROC AUC."""
    from planessl.evaluation.metrics import classification_metrics

    pred_dir = Path(pred_dir)
    index = read_index(pred_dir)
    cache = Cache(cache_path)
    if index.get("multilabel"):
        return _evaluate_multilabel(pred_dir, cache, list(index["target_keys"]), echo)
    key = "class"
    run = Path(index.get("model", ""))
    if (run / "model.json").is_file():
        key = json.loads((run / "model.json").read_text()).get("target_key", key)
    rows, probs, labels, problems = [], [], [], []
    with open(pred_dir / "predictions.csv") as fh:
        for r in csv.DictReader(fh):
            sid = r["study"]
            if sid not in set(cache.ids) or key not in cache.entry(sid).get("targets", {}):
                problems.append(f"{pred_dir / 'predictions.csv'}: study {sid} has no target {key!r} in {cache.path}")
                continue
            p = [float(v) for k, v in r.items() if k.startswith("p") and k[1:].isdigit()]
            t = int(cache.entry(sid)["targets"][key])
            rows.append({"study": sid, "target": t, "predicted": int(r["predicted"])})
            probs.append(p)
            labels.append(t)
    for p in problems:
        echo(f"planessl: skipped {p}")
    if not rows:
        raise PlaneSSLError(f"{pred_dir}: no prediction matches a study with target {key!r} in {cache.path}")
    summary = {"n_studies": len(rows), "n_skipped": len(problems), "target_key": key,
               **classification_metrics(np.array(probs), np.array(labels))}
    return rows, summary


def _evaluate_multilabel(pred_dir: Path, cache: Cache, keys: list[str],
                         echo: Callable[[str], None]) -> tuple[list[dict], dict]:
    """Rows and per-label accuracy / ROC AUC (and their means) of a multi-label model."""
    from planessl.evaluation.metrics import multilabel_metrics

    rows, probs, labels, problems = [], [], [], []
    known = set(cache.ids)
    with open(pred_dir / "predictions.csv") as fh:
        for r in csv.DictReader(fh):
            sid = r["study"]
            targets = cache.entry(sid).get("targets", {}) if sid in known else {}
            if not all(k in targets for k in keys):
                problems.append(f"study {sid} lacks a target of {', '.join(keys)} in {cache.path}")
                continue
            row = {"study": sid}
            for k in keys:
                row[f"{k}_target"], row[f"{k}_predicted"] = int(targets[k]), int(r[k])
            rows.append(row)
            probs.append([float(r[f"p_{k}"]) for k in keys])
            labels.append([int(targets[k]) for k in keys])
    for p in problems:
        echo(f"planessl: skipped {p}")
    if not rows:
        raise PlaneSSLError(f"{pred_dir}: no prediction matches a study with targets "
                            f"{', '.join(keys)} in {cache.path}")
    m = multilabel_metrics(np.array(probs), np.array(labels), keys)
    summary = {"n_studies": len(rows), "n_skipped": len(problems), "target_keys": keys, **m}
    return rows, summary


def format_label_table(summary: dict) -> str:
    """A Markdown table of a multi-label evaluation: per label, the exams, positives,
    accuracy (threshold 0.5) and ROC AUC (undefined when the exams hold one class only)."""
    lines = ["| label | exams | positive | accuracy | ROC AUC |", "|---|---|---|---|---|"]
    n = summary["n_studies"]
    for name, m in summary["labels"].items():
        auc = "undefined (one class)" if m["auc"] != m["auc"] else f"{m['auc']:.3f}"
        lines.append(f"| {name} | {n} | {m['n_positive']} | {m['accuracy']:.3f} | {auc} |")
    return "\n".join(lines)


def format_table(summary: dict) -> str:
    """A Markdown table: mean ± std of Dice, HD95, ASSD per structure and phase."""
    unit = "/".join(summary["units"])
    lines = [f"| phase | structure | Dice | HD95 ({unit}) | ASSD ({unit}) |", "|---|---|---|---|---|"]

    def cell(s: dict) -> str:
        txt = f"{s['mean']:.3f} ± {s['std']:.3f}"
        return txt + (f" ({s['n_undefined']} undef.)" if s["n_undefined"] else "")

    for phase, stats in list(summary["phases"].items()) + [("all", summary["all"])]:
        for name in STRUCTURES.values():
            lines.append(f"| {phase} | {name} | {cell(stats[name + '_dice'])} | "
                         f"{cell(stats[name + '_hd95'])} | {cell(stats[name + '_assd'])} |")
        lines.append(f"| {phase} | mean | {cell(stats['mean_dice'])} | | |")
    return "\n".join(lines)


def write_results(rows: list[dict], summary: dict, out_dir: str | Path) -> None:
    """``evaluation.csv`` and ``evaluation.json`` (atomic)."""
    out_dir = Path(out_dir)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(out_dir / "evaluation.csv", buf.getvalue())
    write_text_atomic(out_dir / "evaluation.json", json.dumps(summary, indent=1))
