"""View planning from localizers on held-out phantom exams: a small line model against the
mean-plane baseline; the UK Biobank demo subject's 2CH / 4CH planned from its SAX stack; the
shipped default planning model.

One command does everything; every step whose output exists is skipped (caches, training
runs, selection scores), so a rerun after an interruption resumes::

    PYTHONPATH=src python benchmarks/plan_phantom.py --work /tmp/planbench --export

Steps:

1. Caches of phantom exams with localizers (``make_study(seed, index, "small",
   localizers=True)``): ``--train`` exams of seed ``--train-seed`` (training + a validation
   split, ``data.val_fraction``), and ``--heldout`` exams of another seed, never seen in
   training or model selection.
2. Model selection: each ``--candidates`` configuration trained for ``--select-minutes``; scored
   on the *validation* split of the training cache (planning from localizers, see
   :func:`score`). The best is trained for ``--minutes`` (the final model, inputs localizers
   and SAX cine slices); unless ``--no-localizer-only``, the same configuration is also
   trained for ``--minutes`` on localizer inputs only (one model for both uses, or two?).
   Unless ``--long-minutes 0``, the localizer-only model is also trained longer
   (``--long-minutes``, at most ``--long-steps`` steps, warm-up + cosine learning rate:
   :data:`LONG`). Unless ``--more-minutes 0``, the same localizer-only recipe is also trained
   on more exams: the training cache plus ``--extra-train`` exams of ``--extra-seed`` (a third
   seed; its own 10 % validation split is held out of training).
   Each final model is then calibrated (:func:`calibrate_run`: its line errors per target
   and input view, the weights of ``plan``'s fit) on every validation exam (the training
   cache's split and the extra cache's split) and scored there with ``plan``'s defaults; the
   best is shipped. The shipped model's line weightings (:data:`WEIGHTINGS`) are scored on the
   same exams.
3. Held-out evaluation with :func:`planessl.planning.plan.plan`: from the localizers (targets
   2CH, 3CH, 4CH, SAX) and from the SAX cine stack (2CH, 3CH, 4CH); the oracle (true lines on
   the same localizers: the upper bound of the lift and fit) and the mean-plane baseline
   (:func:`baseline_planes`). Planning uses ``plan``'s defaults (outlier lines dropped,
   test-time augmentation); the rows ``before`` plan with the localizer-only model as before
   those were added (:data:`PLAIN`: plain least squares, one prediction per image), so the
   change shows. Model selection (step 2) scores with :data:`PLAIN` as it always did.
   Then, unless ``--confirm 0``, the shipped model is measured once on ``--confirm`` fresh
   exams of ``--confirm-seed`` (the confirmation: no choice has seen them).
4. The UK Biobank demo subject (``--ukbb``; default ``../shared/data/ukbb_demo/1`` when it
   exists, skipped otherwise): 2CH and 4CH from the SAX stack (``--inputs sax``).
5. ``--export``: the shipped final model's ``weights.safetensors``, ``line_calibration.json``
   and ``config.yaml`` (the run's, with the local cache paths removed) into ``src/planessl/planning/default_model/``, the
   model ``planessl plan`` uses without ``--model``.

Writes ``benchmarks/results/plan_phantom/{README.md,plan_phantom.csv,selection.csv}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "plan_phantom"
EXPORT = ROOT / "src" / "planessl" / "planning" / "default_model"
TARGETS = ("2ch", "3ch", "4ch", "sax")
GOAL_VIEWS = ("2ch", "4ch", "sax")
GOAL_ANGLE, GOAL_DIST = 5.0, 3.0

BASE = ["task.name=lines", "data.input_views=[loc_2ch,loc_4ch,loc_sax,sax]",
        "task.line_channels=[2ch,3ch,4ch,sax]", "task.stack_line=mid",
        "trainer.max_epochs=-1", "trainer.progress_bar=false", "trainer.threads=1",
        "trainer.log_every_n_steps=20"]
#: The second final model (``--localizer-only``): inputs the localizers only, no SAX cine.
LOC_ONLY = ["data.input_views=[loc_2ch,loc_4ch,loc_sax]"]
#: The longer-trained localizer-only model (``--long-minutes``): learning-rate schedule.
LONG = ["optim.schedule=cosine", "optim.warmup_steps=100"]
#: Planning as before outlier rejection, test-time augmentation and line weights (``plan``
#: keyword args).
PLAIN = {"outlier_rms_mm": None, "tta": False, "line_weights": "equal"}
#: Method names of the held-out table's model rows.
M_COMBINED, M_LOC, M_LONG = "model", "model, localizer inputs only", \
    "model, localizer inputs only, long"
M_MORE = "model, localizer inputs only, more exams"
M_MORE2 = "model, localizer inputs only, even more exams"
#: Other networks trained on the data and schedule of ``more exams``: final-model key ->
#: (configuration in :data:`CANDIDATES`, held-out method name, what differs). Weights <= 5 MB.
NET_VARIANTS = {
    "more-data-wide": ("f12-128px", "model, localizer inputs only, more exams, wider",
                       "the wider network"),
    "more-data-fine": ("f8-176px", "model, localizer inputs only, more exams, finer grid",
                       "a finer grid (1.5 mm pixels, 176 px)"),
}
M_BEFORE = "before: model, localizer inputs only, plain fit"
#: The shipped model planned with the other line weightings (``plan`` keyword args); the
#: default, lines weighted by the model's calibration, is the model's own row.
WEIGHTINGS = {"shipped model, lines weighted equally": {"line_weights": "equal"},
              "shipped model, equal weights, each series once":
                  {"line_weights": "equal", "balance_series": True},
              "shipped model, calibrated, each series once": {"balance_series": True}}
M_CALIBRATED = "shipped model, calibrated (plan's default)"
METHODS = [M_COMBINED, M_LOC, M_LONG, M_MORE, M_MORE2,
           *(m for _, m, _ in NET_VARIANTS.values()), M_BEFORE, *WEIGHTINGS, "baseline", "oracle"]
#: Candidate configurations (name -> overrides on top of BASE); all <= 5 MB of weights.
CANDIDATES = {
    "f8-128px": ["model.features=[8,16,32,64,128]", "data.image_size=128",
                 "data.spacing_mm=2.0", "data.batch_size=16"],
    "f8-96px": ["model.features=[8,16,32,64,128]", "data.image_size=96",
                "data.spacing_mm=2.67", "data.batch_size=16"],
    "f12-128px": ["model.features=[12,24,48,96,192]", "data.image_size=128",
                  "data.spacing_mm=2.0", "data.batch_size=16"],
    "f8-176px": ["model.features=[8,16,32,64,128]", "data.image_size=176",
                 "data.spacing_mm=1.5", "data.batch_size=16"],
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def max_time(minutes: float) -> str:
    s = int(round(minutes * 60))
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# ----------------------------------------------------------------------------- data
def make_cache(path: Path, seed: int, n: int):
    from planessl.cache import MANIFEST, Cache, rebuild_manifest, write_study
    from planessl.phantom import make_study

    if (path / MANIFEST).is_file() and len(Cache(path)) == n:
        return Cache(path)
    log(f"writing {n} phantom exams with localizers (seed {seed}) to {path}")
    for k in range(n):
        write_study(path, make_study(seed, k, "small", localizers=True))
    rebuild_manifest(path)
    return Cache(path)


# ----------------------------------------------------------------------------- training
def train(run: Path, cache, overrides: list[str], minutes: float) -> float:
    """Train (skipped when ``run`` holds weights); returns the training time (s). ``cache``:
    one cache or a list (mixed in proportion to their training studies)."""
    from planessl.config import PretrainConfig, load_config
    from planessl.engine import WEIGHTS_FILE
    from planessl.pretraining import run_pretraining

    done = run / "train_seconds.txt"
    if (run / WEIGHTS_FILE).is_file() and done.is_file():
        return float(done.read_text())
    if run.exists():
        shutil.rmtree(run)
    cfg = load_config(PretrainConfig, overrides=[*BASE, *overrides,
                                                 f"trainer.max_time={max_time(minutes)}"])
    log(f"training {run.name}: {' '.join(overrides)} for {minutes:g} min")
    t0 = time.time()
    run_pretraining(cfg, cache, run, quiet=True,
                    command=["benchmarks/plan_phantom.py", *overrides])
    seconds = time.time() - t0
    done.write_text(f"{seconds:.1f}\n")
    return seconds


def trained_steps(run: Path) -> int | None:
    """Optimiser steps of a finished run: the last step logged in ``metrics.csv`` (within a
    logging interval of the end; ``checkpoints/last.ckpt`` is only rewritten with the best
    checkpoint, so it can be far behind), else the checkpoint's ``global_step``."""
    path = run / "metrics.csv"
    if path.is_file():
        with open(path) as f:
            steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("step")]
        if steps:
            return max(steps)
    import torch

    ckpt = run / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        return None
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"])
    except Exception:
        return None


def last_val_metrics(run: Path) -> dict:
    """The run's last validation metrics (``metrics.csv``): mean line angle / distance error
    over every line channel of the validation images, and the validation loss."""
    out = {"val_line_angle": float("nan"), "val_line_dist": float("nan"), "val_loss": float("nan")}
    path = run / "metrics.csv"
    if not path.is_file():
        return out
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/loss")]
    if rows:
        out = {"val_line_angle": float(rows[-1]["val/line_angle_deg"]),
               "val_line_dist": float(rows[-1]["val/line_dist_mm"]),
               "val_loss": float(rows[-1]["val/loss"])}
    return out


# ----------------------------------------------------------------------------- evaluation
def plan_errors(cache, ids, inputs=None, targets=TARGETS, lines: list | None = None,
                **how) -> list[dict]:
    """One row per (study, target): angle / distance (NaN when not planned) and why not;
    ``how``: ``model=...`` or ``oracle=True`` (passed to :func:`planessl.planning.plan.plan`).
    ``lines``: when given, receives :func:`line_rows` of every study."""
    from planessl.planning.plan import plan

    rows = []
    for sid in ids:
        res = plan(cache.load(sid), sid, inputs=inputs, targets=list(targets), **how)
        if lines is not None:
            lines.extend(line_rows(res))
        for t in res.targets:
            rows.append({"study": sid, "view": t.view, "ok": t.fit.ok,
                         "angle": t.angle_deg if t.fit.ok else np.nan,
                         "dist": t.distance_mm if t.fit.ok else np.nan,
                         "reason": None if t.fit.ok else t.fit.reason})
    return rows


def model_errors(cache, ids, model, inputs=None, targets=TARGETS, lines: list | None = None,
                 **how) -> list[dict]:
    """:func:`plan_errors` of a line model (``how``: planning options such as :data:`PLAIN`)."""
    return plan_errors(cache, ids, inputs, targets, lines=lines, model=model, **how)


def line_rows(result) -> list[dict]:
    """Each predicted line of a :class:`~planessl.planning.plan.PlanResult` against the true
    line of the acquired target plane on the same input image: angle (deg; ``signed_angle``
    from the true to the predicted line, in the image's row/column frame) and distance (mm,
    at the image centre), with the study, target view and input view."""
    from planessl.evaluation.lines import line_errors, line_in_mm
    from planessl.geometry import intersection_line

    images = {img.name: img for img in result.images}
    out = []
    for t in result.targets:
        if t.acquired_plane is None:
            continue
        for rec in t.lines:
            img = images[rec.image]
            true = intersection_line(img.plane, t.acquired_plane)
            if rec.abc is None or true is None:
                continue
            tabc = (true.a, true.b, true.c)
            angle, dist = line_errors(rec.abc, tabc, img.plane.shape, img.plane.spacing)
            pm, tm = line_in_mm(rec.abc, img.plane.spacing), line_in_mm(tabc, img.plane.spacing)
            if pm[:2] @ tm[:2] < 0:
                pm = -pm
            signed = float(np.degrees(np.arctan2(pm[0] * tm[1] - pm[1] * tm[0], pm[:2] @ tm[:2])))
            out.append({"study": result.study, "view": t.view, "input": img.view,
                        "angle": angle, "dist": dist, "signed_angle": signed})
    return out


def line_summary(lines: list[dict]) -> list[dict]:
    """Per (target view, input view): median / p90 line angle and distance errors; and, over
    the studies with >= 2 lines of that pair, the median within-study sd of the signed angle
    error and the sd of its study means (a systematic error shows as between > within)."""
    out = []
    keys = sorted({(r["view"], r["input"]) for r in lines}, key=lambda k: (TARGETS.index(k[0]), k[1]))
    for view, inp in keys:
        sel = [r for r in lines if r["view"] == view and r["input"] == inp]
        a = np.array([r["angle"] for r in sel])
        d = np.array([r["dist"] for r in sel])
        by: dict[str, list[float]] = {}
        for r in sel:
            by.setdefault(r["study"], []).append(r["signed_angle"])
        multi = [v for v in by.values() if len(v) >= 2]
        out.append({"view": view, "input": inp, "n": len(sel),
                    "angle_median": float(np.median(a)), "angle_p90": float(np.percentile(a, 90)),
                    "dist_median": float(np.median(d)), "dist_p90": float(np.percentile(d, 90)),
                    "within_sd": float(np.median([np.std(v, ddof=1) for v in multi]))
                    if multi else float("nan"),
                    "between_sd": float(np.std([np.mean(v) for v in multi]))
                    if len(multi) > 1 else float("nan")})
    return out


def planning_floor(seed: int, n: int, draws: int = 100) -> dict[str, dict]:
    """The phantom technologist's own planning noise: for each of ``n`` subjects of
    ``seed``, the target planes are re-planned ``draws`` times on the same anatomy
    (:func:`planessl.phantom.planning.plan_views` with fresh generators); each draw's error
    against the best single plane for that anatomy (normal: the mean of the draws' normals;
    position: the median of their centres along it; SAX: the middle slice). No prediction from
    the anatomy can beat it: the median over subjects and draws is a floor for the model's
    median angle (deg) and distance (mm)."""
    from planessl.phantom.planning import plan_views
    from planessl.phantom.subject import PRESETS, make_anatomy
    from planessl.study import mid_slice_index

    acc: dict[str, list] = {v: [[], []] for v in TARGETS}
    for k in range(n):
        anatomy = make_anatomy(seed, k, "small")[0]
        planes: dict[str, list] = {v: [] for v in TARGETS}
        for d in range(draws):
            views = plan_views(anatomy, np.random.default_rng([seed, k, d, 0xF1]),
                               PRESETS["small"].planning)
            for v in TARGETS:
                stack = views[v]
                planes[v].append(stack[mid_slice_index(stack)])
        for v in TARGETS:
            ns = np.array([np.asarray(p.normal, float) for p in planes[v]])
            ns *= np.sign(ns @ ns[0])[:, None]
            nbar = ns.mean(0) / np.linalg.norm(ns.mean(0))
            cs = np.array([np.asarray(p.centre_world(), float) for p in planes[v]])
            off = float(np.median(cs @ nbar))
            acc[v][0] += list(np.degrees(np.arccos(np.clip(np.abs(ns @ nbar), 0, 1))))
            acc[v][1] += list(np.abs(cs @ nbar - off))
    return {v: {"angle_median": float(np.median(a)), "dist_median": float(np.median(d))}
            for v, (a, d) in acc.items()}


def oracle_errors(cache, ids, inputs=None, targets=TARGETS) -> list[dict]:
    """:func:`plan_errors` of the true lines (the upper bound of lifting and fitting)."""
    return plan_errors(cache, ids, inputs, targets, oracle=True)


def calibrate_run(run: Path, model, studies: list[tuple]) -> None:
    """Measure ``model``'s line calibration on ``studies`` (``(cache, ids)`` pairs; skipped
    when ``run`` holds one) and give it to ``model``: the weights of ``plan``'s fit."""
    from planessl.planning.calibration import CALIBRATION_FILE, LineCalibration, calibrate
    from planessl.planning.plan import plan

    if not (run / CALIBRATION_FILE).is_file():
        results = (plan(cache.load(sid), sid, targets=list(TARGETS), model=model,
                        line_weights="equal") for cache, ids in studies for sid in ids)
        n = sum(len(ids) for _, ids in studies)
        calibrate(results, source=f"{n} validation exams of the benchmark").save(run)
    model.calibration = LineCalibration.load(run)


def scored_entry(path: Path, plan_rows, head) -> dict:
    """A validation entry, read from ``path`` when it exists, else computed and written:
    ``head(rows)`` plus the number of studies, :func:`score` and, per target, the median angle
    / distance and planned count of the rows ``plan_rows()`` returns."""
    if path.is_file():
        return json.loads(path.read_text())
    rows = plan_rows()
    entry = {**head(rows), "n": len({r["study"] for r in rows}), "score": score(rows)}
    for v in TARGETS:
        sm = summarise(rows, v)
        entry[f"{v}_angle"], entry[f"{v}_dist"] = sm["angle_median"], sm["dist_median"]
        entry[f"{v}_planned"] = f"{sm['planned']}/{sm['n']}"
    path.write_text(json.dumps(entry))
    return entry


def summarise(rows: list[dict], view: str) -> dict:
    sel = [r for r in rows if r["view"] == view]
    a = np.array([r["angle"] for r in sel if r["ok"]], dtype=float)
    d = np.array([r["dist"] for r in sel if r["ok"]], dtype=float)
    q = (lambda x, p: float(np.percentile(x, p)) if len(x) else float("nan"))
    out = {"n": len(sel), "planned": int(len(a)), "angle_median": q(a, 50),
           "angle_p90": q(a, 90), "dist_median": q(d, 50), "dist_p90": q(d, 90)}
    for key, x in (("angle", a), ("dist", d)):
        out[f"{key}_median_ci"] = median_ci(x)
    return out


def median_ci(x: np.ndarray, level: float = 0.95, draws: int = 2000) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (exams resampled; fixed seed)."""
    if len(x) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(0)
    med = np.median(rng.choice(x, size=(draws, len(x)), replace=True), axis=1)
    lo = (1 - level) / 2
    return (float(np.quantile(med, lo)), float(np.quantile(med, 1 - lo)))


def score(rows: list[dict]) -> float:
    """Model-selection score (lower is better): over 2CH, 4CH and SAX, median angle / 5 deg
    + median distance / 3 mm, with every target that was not planned counted at 30 deg and
    30 mm (so a model does not win by refusing)."""
    total = 0.0
    for view in GOAL_VIEWS:
        sel = [r for r in rows if r["view"] == view]
        a = np.array([r["angle"] if r["ok"] else 30.0 for r in sel])
        d = np.array([r["dist"] if r["ok"] else 30.0 for r in sel])
        total += float(np.median(a)) / GOAL_ANGLE + float(np.median(d)) / GOAL_DIST
    return total / len(GOAL_VIEWS)


# ----------------------------------------------------------------------------- baseline
def localizer_frame(study) -> tuple[np.ndarray, np.ndarray]:
    """``(origin, R)``: the exam's frame defined by its localizers (columns of ``R`` are the
    axes in patient coordinates LPS).

    * z: the normal of the SAX localizer's middle slice, signed from its first to its last
      slice (the stack's direction, base to apex as the phantom acquires it);
    * x: the 4CH localizer's normal (DICOM row x column) made orthogonal to z;
    * y = z x x;
    * origin: the point where the 2CH localizer, the 4CH localizer and the SAX localizer's
      middle slice meet (on the localizers' long axis at mid-ventricle); where those planes
      are nearly dependent, the centre of the SAX localizer's middle slice.
    """
    from planessl.study import mid_slice_index

    loc = {s.view: s for s in study.series if s.view.startswith("loc_")}
    sax = loc["loc_sax"]
    mid = sax.planes[mid_slice_index(sax.planes)]
    z = np.asarray(mid.normal, dtype=float)
    if sax.n_slices > 1:
        step = np.asarray(sax.planes[-1].origin, float) - np.asarray(sax.planes[0].origin, float)
        if step @ z < 0:
            z = -z
    n4 = np.asarray(loc["loc_4ch"].planes[0].normal, dtype=float)
    x = n4 - (n4 @ z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    p2, p4 = loc["loc_2ch"].planes[0], loc["loc_4ch"].planes[0]
    A = np.stack([np.asarray(p.normal, float) for p in (p2, p4, mid)])
    b = np.array([float(np.asarray(p.normal, float) @ np.asarray(p.centre_world(), float))
                  for p in (p2, p4, mid)])
    if abs(np.linalg.det(A)) > 0.05:
        origin = np.linalg.solve(A, b)
    else:
        origin = np.asarray(mid.centre_world(), dtype=float)
    return origin, R


def baseline_planes(cache, train_ids) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean target plane of the training exams in the localizer frame: per view, the mean
    of the (sign-aligned) normals and of the plane centres (field-of-view centre; for SAX the
    middle slice), each expressed in `localizer_frame` of its own exam."""
    acc: dict[str, list] = {v: [[], []] for v in TARGETS}
    for sid in train_ids:
        study = cache.load(sid)
        o, R = localizer_frame(study)
        for view, plane in study.target_planes(TARGETS).items():
            n = R.T @ np.asarray(plane.normal, float)
            c = R.T @ (np.asarray(plane.centre_world(), float) - o)
            acc[view][0].append(n)
            acc[view][1].append(c)
    out = {}
    for view, (ns, cs) in acc.items():
        ns = np.array(ns)
        ref = ns[0]
        ns = ns * np.sign(ns @ ref)[:, None]
        n = ns.mean(0)
        out[view] = (n / np.linalg.norm(n), np.mean(cs, axis=0))
    return out


def baseline_errors(cache, ids, mean_planes) -> list[dict]:
    rows = []
    for sid in ids:
        study = cache.load(sid)
        o, R = localizer_frame(study)
        acquired = study.target_planes(TARGETS)
        for view in TARGETS:
            n = R @ mean_planes[view][0]
            c = o + R @ mean_planes[view][1]
            acq = acquired[view]
            m = np.asarray(acq.normal, float)
            angle = float(np.degrees(np.arctan2(np.linalg.norm(np.cross(n, m)), abs(n @ m))))
            dist = abs(float(n @ (np.asarray(acq.centre_world(), float) - c)))
            rows.append({"study": sid, "view": view, "ok": True, "angle": angle, "dist": dist,
                         "reason": None})
    return rows


# ----------------------------------------------------------------------------- UK Biobank
def ukbb_rows(folder: Path, model) -> list[dict]:
    from planessl.planning.plan import open_study, plan

    study, source = open_study(folder)
    rows = []
    for how, kw in (("model", {"model": model}), ("oracle", {"oracle": True})):
        res = plan(study, source, inputs=["sax"], targets=["2ch", "4ch"], **kw)
        for t in res.targets:
            rows.append({"lines": how, "view": t.view, "ok": t.fit.ok,
                         "angle": t.angle_deg, "dist": t.distance_mm,
                         "n_lines": t.fit.n_lines, "images": len(t.lines),
                         "residual": t.fit.residual_rms_mm if t.fit.ok else None,
                         "reason": t.fit.reason if not t.fit.ok else None})
    return rows


# ----------------------------------------------------------------------------- export
def export(run: Path) -> Path:
    import yaml

    EXPORT.mkdir(parents=True, exist_ok=True)
    from planessl.planning.calibration import CALIBRATION_FILE

    shutil.copyfile(run / "weights.safetensors", EXPORT / "weights.safetensors")
    shutil.copyfile(run / CALIBRATION_FILE, EXPORT / CALIBRATION_FILE)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"]["caches"] = []  # local paths of the benchmark's phantom caches
    cfg["data"]["cache_weights"] = []
    head = ("# The default planning model of `planessl plan` (no --model): a `lines` model\n"
            "# trained on phantom exams by benchmarks/plan_phantom.py --export\n"
            "# (results: benchmarks/results/plan_phantom/README.md).\n")
    (EXPORT / "config.yaml").write_text(head + yaml.safe_dump(cfg, sort_keys=False))
    return EXPORT


# ----------------------------------------------------------------------------- report
def fmt(x, nd=1) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def write_report(info: dict, table: list[dict], selection: list[dict], ukbb: list[dict] | None,
                 failures: dict[str, list[str]]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    from planessl.experiment import write_rows

    write_rows(RESULTS / "plan_phantom.csv", table)
    write_rows(RESULTS / "selection.csv", selection)
    if ukbb:
        write_rows(RESULTS / "ukbb_demo.csv", ukbb)

    def rows_of(method: str, inputs: str) -> list[dict]:
        return [r for r in table if r["method"] == method and r["inputs"] == inputs]

    def ci(pair) -> str:
        return f"{fmt(pair[0])}–{fmt(pair[1])}"

    goal = []
    for method in (M_COMBINED, M_LOC, M_LONG, M_MORE, M_MORE2,
                   *(m for _, m, _ in NET_VARIANTS.values()), M_BEFORE, *WEIGHTINGS):
        rows = {r["view"]: r for r in rows_of(method, "localizers")}
        if not rows:
            continue
        met = {v: bool(rows[v]["angle_median"] <= GOAL_ANGLE
                       and rows[v]["dist_median"] <= GOAL_DIST) for v in GOAL_VIEWS}
        goal.append(f"{method}: " + ", ".join(
            f"{v.upper()} {'met' if met[v] else 'not met'} ({fmt(rows[v]['angle_median'], 2)} "
            f"deg [{ci(rows[v]['angle_median_ci'])}], {fmt(rows[v]['dist_median'], 2)} mm "
            f"[{ci(rows[v]['dist_median_ci'])}])" for v in GOAL_VIEWS)
            + f" — {'met' if all(met.values()) else 'NOT met'} overall")
    L = ["# View planning from localizers on phantom exams",
         "",
         "Command (from the repository root; every finished step is reused on a rerun):",
         "",
         f"    {info['command']}",
         "",
         f"- Data: phantom exams (`make_study(seed, index, \"small\", localizers=True)`): "
         f"{info['n_train']} exams of seed {info['train_seed']} for training (of which "
         f"{info['n_val']} are the validation split that chose the configuration; with the "
         f"extra exams' split, {info['n_cal']} validation exams choose the shipped model and "
         f"its line weights), and "
         f"{info['n_heldout']} held-out exams of seed {info['heldout_seed']}, never used in "
         f"training or selection.",
         f"- Model: `planessl pretrain` task `lines`, `{' '.join(BASE[:4])}`: one model with "
         f"inputs localizers *and* SAX cine slices, line channels 2CH, 3CH, 4CH and the "
         f"mid-ventricular SAX slice (rows `model`; rows `model, localizer inputs only`: the "
         f"same configuration and training time with `{' '.join(LOC_ONLY)}`, see \"One model "
         f"or two\" below). Selected configuration **{info['chosen']}** "
         f"(`{' '.join(CANDIDATES[info['chosen']])}`), trained {info['final_minutes']:g} min "
         f"({info['final_steps']} steps) on one CPU thread (`trainer.threads=1`, precision "
         f"{info['precision']}) while two other benchmark processes shared the machine's "
         f"2 cores. Weights: {info['weight_bytes'] / 1e6:.2f} MB (safetensors, "
         f"{info['n_params']:,} parameters)."]
    def training(run: dict) -> str:
        """How a trained variant ran: its overrides, time and steps against their limits."""
        return (f"`{' '.join(run['overrides'])}`, for {run['minutes']:.1f} min "
                f"({run['steps']} steps; limits {run['max_minutes']:g} min / "
                f"{run['max_steps']} steps)")

    if info.get("long"):
        L.append(f"- Rows `{M_LONG}`: the localizer-only configuration trained longer, "
                 f"{training(info['long'])} on one CPU thread beside another benchmark "
                 f"(training `nice -n 5`).")
    if info.get("more"):
        mo = info["more"]
        L.append(f"- Rows `{M_MORE}`: the localizer-only recipe of `long` trained on the "
                 f"{info['n_train'] - info['n_val']} training exams plus {mo['n_extra']} more "
                 f"exams of seed {mo['seed']} (caches mixed in proportion to their training "
                 f"studies), {training(mo)}.")
        if mo.get("even_more"):
            em = mo["even_more"]
            L.append(f"- Rows `{M_MORE2}`: the same recipe and limits with another "
                     f"{em['n_extra2']} exams of seed {em['seed']} (their own 10 % held out "
                     f"of training like every cache's): {em['minutes']:.1f} min, "
                     f"{em['steps']} steps.")
        for key, vd in mo.get("variants", {}).items():
            config, method, what = NET_VARIANTS[key]
            L.append(f"- Rows `{method}`: the data and schedule of `more exams` with {what} "
                     f"({config}), {training(vd)}; weights {vd['weights_mb']:.2f} MB.")
    L += ["- Planning: `planessl.planning.plan.plan` with its defaults (heatmaps averaged "
         "over the image turned by 0 and +-10 deg and mirrored; lines from heatmap "
         "ridges with peak >= 0.5; least-squares plane over the lines' FOV segments, outlier "
         "lines dropped while the residual exceeds 5 mm rms, the rest still determine a "
         "plane and at most half the lines have gone; targets refused when the lines lie within 10 mm rms of one line in space "
         "or farther than 10 mm rms from one plane; each line weighted by 1/sigma^2 of its "
         "(target, input view) from the model's line calibration, see \"Line weights\" "
         "below). "
         f"Rows `{M_BEFORE}`: the same localizer-only model planned as before outlier "
         "rejection and test-time augmentation existed (one prediction per image, plain "
         "least squares over all lines, equal weights). Rows `shipped model, ...`: the "
         "shipped model planned with the other line weightings (`shipped model, lines "
         "weighted equally` is how the previous version of this page planned). Errors: angle "
         "between the normals (deg) and distance "
         "from the acquired view's centre (SAX: its mid-ventricular slice) to the proposed "
         "plane (mm). Medians and 90th percentiles over the targets that were planned; "
         "`planned` counts them.",
         f"- Baseline: {info['baseline_doc']}",
         "- Oracle: the true lines of the target planes on the same input images (the upper "
         "bound of lifting and fitting; 0 up to float precision).",
         "",
         "## Held-out phantom exams",
         "",
         "| inputs | target | method | planned | angle median (deg) | angle p90 (deg) | "
         "distance median (mm) | distance p90 (mm) |",
         "|---|---|---|---|---|---|---|---|"]
    for r in table:
        L.append(f"| {r['inputs']} | {r['view']} | {r['method']} | {r['planned']}/{r['n']} | "
                 f"{fmt(r['angle_median'])} | {fmt(r['angle_p90'])} | {fmt(r['dist_median'])} "
                 f"| {fmt(r['dist_p90'])} |")
    L += ["",
          "Goal (median <= 5 deg and <= 3 mm for 2CH, 4CH and SAX, from localizers); in "
          "brackets the 95 % bootstrap interval of the median over the held-out exams, how "
          "far 30 exams pin it down:", ""]
    L += [f"- {g}." for g in goal] + [""]
    if info.get("confirm"):
        c = info["confirm"]
        L += [f"## Confirmation on {c['n']} fresh exams", "",
              f"After every choice above was made (model, training, planning defaults), the "
              f"shipped model (`{c['shipped']}`, `plan`'s defaults) and the baseline "
              f"were measured once on {c['n']} new exams (seed {c['seed']}), none of them used "
              f"for training, selection or the held-out table; a model shipped by an earlier "
              f"run of this command was measured once too and stays listed. Median [95 % "
              f"bootstrap interval], p90 and planned count:", "",
              "| target | method | planned | angle median (deg) | angle p90 | distance median "
              "(mm) | distance p90 | goal |", "|---|---|---|---|---|---|---|---|"]
        for r in sorted(c["rows"], key=lambda r: TARGETS.index(r["view"])):
            met = r["angle_median"] <= GOAL_ANGLE and r["dist_median"] <= GOAL_DIST
            L.append(f"| {r['view']} | {r['method']} | {r['planned']}/{r['n']} | "
                     f"{fmt(r['angle_median'], 2)} [{ci(r['angle_median_ci'])}] | "
                     f"{fmt(r['angle_p90'])} | {fmt(r['dist_median'], 2)} "
                     f"[{ci(r['dist_median_ci'])}] | {fmt(r['dist_p90'])} | "
                     + ("—" if r["view"] not in GOAL_VIEWS or r["method"] == "baseline" else
                        "met" if met else "not met") + " |")
        L.append("")
    if any(failures.values()):
        L += ["Targets not planned (model), with the reason reported by `plan`:", ""]
        for key, reasons in failures.items():
            if reasons:
                counts: dict[str, int] = {}
                for why in reasons:
                    short = re.sub(r"\b\d+(\.\d+)?\b", "N", why.split(" (")[0])[:110]
                    counts[short] = counts.get(short, 0) + 1
                for why, k in sorted(counts.items(), key=lambda kv: -kv[1]):
                    L.append(f"- {key}: {k} x {why}")
        L.append("")
    if info.get("before_after"):
        L += ["## Before / after (held-out, from localizers)", "",
              "Median angle / distance and planned count per target; `before` is the shipped "
              "model of the previous version of this page with the previous planning.", "",
              "| target | " + " | ".join(m for m, _ in info["before_after"]) + " |",
              "|---|" + "---|" * len(info["before_after"])]
        for v in TARGETS:
            cells = []
            for m, _ in info["before_after"]:
                r = next((r for r in rows_of(m, "localizers") if r["view"] == v), None)
                cells.append("—" if r is None else
                             f"{fmt(r['angle_median'])} deg / {fmt(r['dist_median'])} mm "
                             f"({r['planned']}/{r['n']})")
            L.append(f"| {v} | " + " | ".join(cells) + " |")
        L.append("")
    if info.get("line_summary"):
        L += ["## Where the error comes from (held-out, shipped model)", "",
              f"Each line that `{info['shipped_method']}` predicted on a localizer, against "
              "the true line of the acquired target plane on that image (`plan`'s defaults; "
              "distance at the image centre). `within` / `between`: the median sd of the "
              "signed angle error over the slices of one exam, and the sd of the exams' mean "
              "errors: between >> within means the error is the model's misjudgement of the "
              "exam, shared by its slices, which no fitting or averaging removes.", "",
              "| target | on | lines | angle median / p90 (deg) | distance median / p90 (mm) "
              "| within / between sd (deg) |", "|---|---|---|---|---|---|"]
        for r in info["line_summary"]:
            L.append(f"| {r['view']} | {r['input']} | {r['n']} | {fmt(r['angle_median'])} / "
                     f"{fmt(r['angle_p90'])} | {fmt(r['dist_median'])} / {fmt(r['dist_p90'])} "
                     f"| {fmt(r['within_sd'])} / {fmt(r['between_sd'])} |")
        fl = info["floor"]
        L += ["", "Floor: the phantom's technologist plans the targets with random errors of "
              "their own (`PlanningSettings`: tilts, offsets, the SAX stack's start and "
              "slice gap, which place its middle slice). Re-planning each held-out anatomy "
              "100 times, the median error of a draw against the best single plane for that "
              "anatomy (`planning_floor`) is: "
              + ", ".join(f"{v.upper()} {fmt(fl[v]['angle_median'])} deg / "
                          f"{fmt(fl[v]['dist_median'])} mm" for v in TARGETS)
              + ". No model can beat these medians on average.", ""]
    if info.get("weighting_val"):
        cal = info["calibration"]
        L += ["## Line weights", "",
              "A least-squares fit that weighs every line the same lets the SAX localizer's "
              "slices (several lines that err together, see above) outvote the one line on a "
              "long-axis localizer. Each final model's **line calibration** "
              "(`planessl plan-calibrate`, `line_calibration.json` beside its weights) is "
              "the typical distance sigma of its lines from the true target plane per (target, "
              "input view): 1.4826 x the median rms distance over the line's segment, "
              f"measured on the {info['n_cal']} validation exams (the validation splits of "
              "the training exams and of the extra exams; none held out). `plan` weighs each "
              "line by 1/sigma^2 (the inverse-variance fit). The shipped model's calibration "
              "(sigma, mm; lines measured):", "",
              "| target | " + " | ".join(sorted({v for by in cal["sigma_mm"].values()
                                                  for v in by})) + " |"]
        views = sorted({v for by in cal["sigma_mm"].values() for v in by})
        L.append("|---|" + "---|" * len(views))
        for t, by in cal["sigma_mm"].items():
            L.append(f"| {t} | " + " | ".join(
                f"{by[v]:.1f} ({cal['n_lines'][t][v]})" if v in by else "—" for v in views)
                + " |")
        L += ["", "Every weighting tried, on the validation exams (where the default was "
              "chosen: lowest score, as in model selection) and on the held-out exams "
              "(looked at once per weighting): median angle (deg) / distance (mm) and planned "
              "count.", "",
              "| weighting | validation score | " + " | ".join(
                  f"{v.upper()} validation" for v in TARGETS) + " | " + " | ".join(
                  f"{v.upper()} held-out" for v in TARGETS) + " |",
              "|---|---|" + "---|" * (2 * len(TARGETS))]
        best = min(info["weighting_val"], key=lambda e: e["score"])["name"]
        for e in info["weighting_val"]:
            method = info["shipped_method"] if e["name"] == M_CALIBRATED else e["name"]
            held = {r["view"]: r for r in rows_of(method, "localizers")}
            L.append(f"| {e['name']}{' **(best)**' if e['name'] == best else ''} | "
                     f"{e['score']:.3f} | " + " | ".join(
                         f"{fmt(e[v + '_angle'])} / {fmt(e[v + '_dist'])} ({e[v + '_planned']})"
                         for v in TARGETS) + " | " + " | ".join(
                         "—" if v not in held else
                         f"{fmt(held[v]['angle_median'])} / {fmt(held[v]['dist_median'])} "
                         f"({held[v]['planned']}/{held[v]['n']})" for v in TARGETS) + " |")
        L.append("")
    L += ["## UK Biobank demo subject (2CH and 4CH from the SAX stack)", ""]
    if ukbb:
        L += [f"`planessl plan {info['ukbb']} --inputs sax --targets 2ch,4ch` with the final "
              f"model (trained on phantoms only) and, for reference, `--oracle`:",
              "",
              "| target | lines | planned | lines used | angle (deg) | distance (mm) | "
              "residual (mm rms) |",
              "|---|---|---|---|---|---|---|"]
        for r in ukbb:
            L.append(f"| {r['view']} | {r['lines']} | {'yes' if r['ok'] else 'no: ' + str(r['reason'])} "
                     f"| {r['n_lines']}/{r['images']} | {fmt(r['angle'])} | {fmt(r['dist'])} | "
                     f"{fmt(r['residual'], 2)} |")
        L.append("")
    else:
        L += [f"Skipped: {info['ukbb_skipped']}", ""]
    L += ["## Model selection (validation split of the training exams)", "",
          f"Each candidate trained {info['select_minutes']:g} min, then planned from the "
          f"localizers of the {info['n_val']} validation exams (plain fit and one prediction "
          f"per image, as when the selection was made). Score = mean over 2CH, 4CH, "
          f"SAX of (median angle / 5 deg + median distance / 3 mm), a target not planned "
          f"counting 30 deg / 30 mm; lower is better.",
          "",
          "The last columns are the training run's own last validation metrics (mean line "
          "angle / distance error over all line channels of the validation images, and the "
          "heatmap loss), for information; they do not enter the score.",
          "",
          "| configuration | overrides | steps | weights (MB) | score | 2CH angle / dist | "
          "4CH angle / dist | SAX angle / dist | val line angle / dist | val loss |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for s in selection:
        L.append(f"| {s['name']} | `{s['overrides']}` | {s['steps']} | {s['weights_mb']:.2f} | "
                 f"{s['score']:.3f} | {fmt(s['2ch_angle'])} / {fmt(s['2ch_dist'])} | "
                 f"{fmt(s['4ch_angle'])} / {fmt(s['4ch_dist'])} | {fmt(s['sax_angle'])} / "
                 f"{fmt(s['sax_dist'])} | {fmt(s['val_line_angle'])} / "
                 f"{fmt(s['val_line_dist'])} | {fmt(s['val_loss'], 4)} |")
    scores = [s["score"] for s in selection]
    tie = len(scores) > 1 and max(scores) - min(scores) < 1e-9
    L += ["", f"Chosen: **{info['chosen']}**, then trained {info['final_minutes']:g} min "
              f"from scratch as the final model."
          + (" All candidates scored the same (the selection could not tell them apart at "
             "this budget), so the first listed was kept." if tie else ""), ""]
    if len(info["final_val"]) > 1:
        L += ["## One model or two (validation split, planning from localizers)", "",
              "The same configuration trained for the same time with inputs the localizers "
              "only (`" + " ".join(LOC_ONLY) + "`), against the combined model (localizers "
              "and SAX cine slices), the localizer-only one trained longer (`long`), "
              "on more exams (`more-data`), on more exams still (`more-data-2`) and the "
              "other networks on the exams and schedule of `more-data` (`more-data-wide`: "
              "wider, `more-data-fine`: a finer grid). "
              "Scored like the selection, but planned with `plan`'s defaults (outlier "
              "rejection, test-time augmentation, each model's calibrated line weights) on "
              f"all {info['n_cal']} validation exams (the training exams' split and the "
              "extra exams' split; the best is shipped); the score on the training exams' "
              f"{info['n_val']} alone, which chose the shipped model before, is shown beside "
              "it. Medians over the planned targets of all validation exams.", "",
              "| final model | steps | score, all validation exams | score, training split "
              "only | 2CH planned, angle / dist | 4CH planned, angle / "
              "dist | SAX planned, angle / dist |", "|---|---|---|---|---|---|---|"]
        for e in info["final_val"]:
            L.append(f"| {e['name']} | {e['steps']} | {e['score']:.3f} | "
                     f"{e['score_split']:.3f} | "
                     + " | ".join(f"{e[v + '_planned']}, {fmt(e[v + '_angle'])} / "
                                  f"{fmt(e[v + '_dist'])}" for v in GOAL_VIEWS) + " |")
        L.append("")
    if info.get("exported"):
        L += ["## Shipped model", "",
              f"`--export` copied the **{info['shipped']}** final model (the best on the "
              f"validation exams above; ties keep the first listed) to `{info['exported']}` "
              f"(weights {info['shipped_weight_bytes'] / 1e6:.2f} MB, `line_calibration.json` and "
              f"`config.yaml`): "
              f"`planessl plan STUDY` without `--model` uses it.", ""]
    L += [f"Training time (wall; one thread unless stated above): {info['train_seconds'] / 60:.1f} min in all "
          f"(selection and final models). Wall time of the invocation that wrote this page: "
          f"{info['wall_minutes']:.1f} min (finished steps are reused).", ""]
    (RESULTS / "README.md").write_text("\n".join(L))


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, help="folder for caches and runs (resumable)")
    ap.add_argument("--train", type=int, default=160, help="training exams (incl. validation)")
    ap.add_argument("--heldout", type=int, default=30, help="held-out exams")
    ap.add_argument("--train-seed", type=int, default=1200)
    ap.add_argument("--heldout-seed", type=int, default=9100)
    ap.add_argument("--candidates", nargs="+", default=["f8-128px", "f8-96px", "f12-128px"],
                    choices=sorted(CANDIDATES))
    ap.add_argument("--select-minutes", type=float, default=3.0)
    ap.add_argument("--minutes", type=float, default=17.0, help="training time of the final model")
    ap.add_argument("--ukbb", default=None, help="UK Biobank demo subject folder (default: "
                    "$PLANESSL_SHARED_DATA or ../shared/data, + ukbb_demo/1, when present)")
    ap.add_argument("--no-localizer-only", dest="localizer_only", action="store_false",
                    help="skip the second final model trained on localizer inputs only")
    ap.add_argument("--long-minutes", type=float, default=60.0,
                    help="training time of the longer-trained localizer-only model (0: skip)")
    ap.add_argument("--long-steps", type=int, default=5000,
                    help="its step limit (the cosine learning rate reaches 0 there)")
    ap.add_argument("--extra-train", type=int, default=800,
                    help="more training exams (another seed) for the `more exams` model")
    ap.add_argument("--extra-seed", type=int, default=1300)
    ap.add_argument("--more-minutes", type=float, default=33.0,
                    help="training time of the `more exams` model (0: skip)")
    ap.add_argument("--more-steps", type=int, default=2200,
                    help="its step limit (the cosine learning rate reaches 0 there; another "
                         "value trains another run, named after it)")
    ap.add_argument("--more-threads", type=int, default=1,
                    help="CPU threads of the `more exams` models' training")
    ap.add_argument("--extra2-train", type=int, default=800,
                    help="exams of a fourth seed for the `even more exams` model, trained like "
                         "the `more exams` one on all three caches (0: skip)")
    ap.add_argument("--extra2-seed", type=int, default=1400)
    ap.add_argument("--variants", nargs="*", default=list(NET_VARIANTS),
                    choices=list(NET_VARIANTS),
                    help="other networks trained on the `more exams` data and schedule")
    ap.add_argument("--variant-minutes", type=float, default=40.0,
                    help="training time limit of each of them")
    ap.add_argument("--variant-threads", type=int, default=2,
                    help="CPU threads of their training")
    ap.add_argument("--confirm", type=int, default=100,
                    help="fresh exams (seed --confirm-seed) on which the shipped model, planned "
                         "with plan's defaults, is measured once after every choice is made "
                         "(0: skip)")
    ap.add_argument("--confirm-seed", type=int, default=9200)
    ap.add_argument("--export", action="store_true",
                    help="copy the final model into src/planessl/planning/default_model")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t_start = time.time()
    import torch

    torch.set_num_threads(1)
    from planessl.data.module import split_ids
    from planessl.engine import resolve_precision
    from planessl.planning.model import LineModel

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train_cache = make_cache(work / "train_cache", args.train_seed, args.train)
    held_cache = make_cache(work / "heldout_cache", args.heldout_seed, args.heldout)
    train_ids, val_ids = split_ids(train_cache.ids, 0.1, 0)  # data.val_fraction, seed defaults

    # Model selection on the validation split.
    selection = []
    for name in args.candidates:
        run = work / f"select_{name}"
        train(run, train_cache, CANDIDATES[name], args.select_minutes)
        scored = run / "val_score.json"
        if scored.is_file():
            entry = json.loads(scored.read_text())
        else:
            rows = model_errors(train_cache, val_ids, LineModel(run), **PLAIN)
            entry = {"name": name, "overrides": " ".join(CANDIDATES[name]),
                     "steps": trained_steps(run),
                     "weights_mb": (run / "weights.safetensors").stat().st_size / 1e6,
                     "score": score(rows)}
            for v in GOAL_VIEWS:
                s = summarise(rows, v)
                entry[f"{v}_angle"], entry[f"{v}_dist"] = s["angle_median"], s["dist_median"]
            scored.write_text(json.dumps(entry))
        entry.update(last_val_metrics(run))
        log(f"selection {name}: score {entry['score']:.3f}")
        selection.append(entry)
    # Ties (e.g. no candidate plans anything after a short run) keep the first listed.
    chosen = min(selection, key=lambda e: e["score"])["name"]
    final = work / f"final_{chosen}"
    train(final, train_cache, CANDIDATES[chosen], args.minutes)
    model = LineModel(final)
    # One model for localizer and SAX inputs, against one for localizers only: compared on
    # the validation split (planning from localizers); the better one is shipped.
    finals = {"combined": (final, model)}
    if args.localizer_only:
        run = work / f"final_{chosen}_loconly"
        train(run, train_cache, CANDIDATES[chosen] + LOC_ONLY, args.minutes)
        finals["localizer-only"] = (run, LineModel(run))
    long_info = None
    if args.long_minutes > 0:
        run = work / f"final_{chosen}_loconly_long"
        over = CANDIDATES[chosen] + LOC_ONLY + LONG + [f"trainer.max_steps={args.long_steps}"]
        seconds = train(run, train_cache, over, args.long_minutes)
        finals["long"] = (run, LineModel(run))
        long_info = {"overrides": over[len(CANDIDATES[chosen]):], "minutes": seconds / 60,
                     "steps": trained_steps(run), "max_minutes": args.long_minutes,
                     "max_steps": args.long_steps}
    more_info = None
    if args.more_minutes > 0 and args.extra_train > 0:
        extra_cache = make_cache(work / "extra_cache", args.extra_seed, args.extra_train)
        run = work / (f"final_{chosen}_loconly_more{args.extra_train}"
                      + ("" if args.more_steps == 2200 else f"_steps{args.more_steps}"))
        over = CANDIDATES[chosen] + LOC_ONLY + LONG + [f"trainer.max_steps={args.more_steps}"]
        if args.more_threads != 1:
            over.append(f"trainer.threads={args.more_threads}")
        seconds = train(run, [train_cache, extra_cache], over, args.more_minutes)
        finals["more-data"] = (run, LineModel(run))
        more_info = {"overrides": over[len(CANDIDATES[chosen]):], "minutes": seconds / 60,
                     "steps": trained_steps(run), "max_minutes": args.more_minutes,
                     "max_steps": args.more_steps, "n_extra": args.extra_train,
                     "seed": args.extra_seed}
        if args.extra2_train > 0:
            # The validation exams stay those of the two other caches (each cache's own
            # split is held out of training), so every final model is scored on the same.
            extra2 = make_cache(work / "extra2_cache", args.extra2_seed, args.extra2_train)
            run2 = run.with_name(run.name + f"+{args.extra2_train}")
            seconds = train(run2, [train_cache, extra_cache, extra2], over, args.more_minutes)
            finals["more-data-2"] = (run2, LineModel(run2))
            more_info["even_more"] = {"n_extra2": args.extra2_train, "seed": args.extra2_seed,
                                      "minutes": seconds / 60, "steps": trained_steps(run2)}
        more_info["variants"] = {}
        for key in args.variants:
            config = NET_VARIANTS[key][0]
            run_v = work / f"final_{config}_loconly_more{args.extra_train}"
            over_v = (CANDIDATES[config] + LOC_ONLY + LONG
                      + [f"trainer.max_steps={args.more_steps}",
                         f"trainer.threads={args.variant_threads}"])
            seconds = train(run_v, [train_cache, extra_cache], over_v, args.variant_minutes)
            finals[key] = (run_v, LineModel(run_v))
            more_info["variants"][key] = {
                "overrides": over_v, "minutes": seconds / 60, "steps": trained_steps(run_v),
                "max_minutes": args.variant_minutes, "max_steps": args.more_steps,
                "weights_mb": (run_v / "weights.safetensors").stat().st_size / 1e6}
    # Line calibration (the fit's weights) of every final model, measured on the validation
    # splits of the training cache and (when it exists) of the extra cache.
    cal_sets = [(train_cache, val_ids)]
    if (work / "extra_cache").is_dir() and args.extra_train > 0:
        extra_cache = make_cache(work / "extra_cache", args.extra_seed, args.extra_train)
        cal_sets.append((extra_cache, split_ids(extra_cache.ids, 0.1, 0)[1]))
    for key, (run, m) in finals.items():
        calibrate_run(run, m, cal_sets)
    final_val = []
    for key, (run, m) in finals.items():
        # Planned with plan's defaults on every validation exam (the training cache's split
        # alone, 16 exams, is too few to choose between close models); its score on that
        # split alone is kept for comparison with the earlier pages.
        scored = run / "val_score_all_calibrated.json"
        entry = scored_entry(
            scored, lambda m=m: [r for c, ids in cal_sets for r in model_errors(c, ids, m)],
            lambda rows: {"name": key, "steps": trained_steps(run),
                          "score_split": score([r for r in rows if r["study"] in set(val_ids)])})
        final_val.append(entry)
        log(f"final {key}: validation score {entry['score']:.3f}")
    shipped = min(final_val, key=lambda e: e["score"])["name"]
    shipped_model = finals[shipped][1]

    # The line weightings of the shipped model, scored on the calibration exams (both
    # validation splits): the choice of plan's default is made here, not on held-out exams.
    weighting_val = []
    for name, how in [(M_CALIBRATED, {}), *WEIGHTINGS.items()]:
        key = re.sub(r"[^a-z]+", "_", name.split(",", 1)[1].strip().lower()).strip("_")
        scored = finals[shipped][0] / f"val_weighting_{key}.json"
        entry = scored_entry(
            scored, lambda how=how: [r for c, ids in cal_sets
                                     for r in model_errors(c, ids, shipped_model, **how)],
            lambda rows, name=name: {"name": name})
        weighting_val.append(entry)
        log(f"weighting {name}: validation score {entry['score']:.3f}")

    # Held-out evaluation.
    log("evaluating on the held-out exams")
    held = held_cache.ids
    table, failures = [], {}
    mean_planes = baseline_planes(train_cache, train_ids)
    method_of = {"combined": M_COMBINED, "localizer-only": M_LOC, "long": M_LONG,
                 "more-data": M_MORE, "more-data-2": M_MORE2,
                 **{k: m for k, (_, m, _) in NET_VARIANTS.items()}}
    diag_lines: list[dict] = []  # the shipped model's lines against the true ones
    collect = {m: (diag_lines if m == method_of[shipped] else None) for m in method_of.values()}
    results = {
        ("localizers", M_COMBINED): model_errors(held_cache, held, model,
                                                 lines=collect[M_COMBINED]),
        **({("localizers", M_LOC): model_errors(held_cache, held, finals["localizer-only"][1],
                                                lines=collect[M_LOC]),
            ("localizers", M_BEFORE): model_errors(held_cache, held,
                                                   finals["localizer-only"][1], **PLAIN)}
           if "localizer-only" in finals else {}),
        **({("localizers", M_LONG): model_errors(held_cache, held, finals["long"][1],
                                                 lines=collect[M_LONG])}
           if "long" in finals else {}),
        **({("localizers", M_MORE): model_errors(held_cache, held, finals["more-data"][1],
                                                 lines=collect[M_MORE])}
           if "more-data" in finals else {}),
        **({("localizers", M_MORE2): model_errors(held_cache, held, finals["more-data-2"][1],
                                                  lines=collect[M_MORE2])}
           if "more-data-2" in finals else {}),
        **{("localizers", method_of[k]): model_errors(held_cache, held, finals[k][1],
                                                      lines=collect[method_of[k]])
           for k in NET_VARIANTS if k in finals},
        **{("localizers", name): model_errors(held_cache, held, shipped_model, **how)
           for name, how in WEIGHTINGS.items()},
        ("localizers", "baseline"): baseline_errors(held_cache, held, mean_planes),
        ("localizers", "oracle"): oracle_errors(held_cache, held),
        ("sax", "model"): model_errors(held_cache, held, model, ["sax"], ("2ch", "3ch", "4ch")),
    }
    for (inputs, method), rows in results.items():
        views = sorted({r["view"] for r in rows}, key=TARGETS.index)
        for v in views:
            table.append({"inputs": inputs, "view": v, "method": method, **summarise(rows, v)})
        if method not in ("baseline", "oracle"):
            failures[f"{method} from {inputs}"] = [f"{r['view']}: {r['reason']}" for r in rows
                                          if not r["ok"]]
    table.sort(key=lambda r: (r["inputs"] != "localizers", TARGETS.index(r["view"]),
                              METHODS.index(r["method"])))
    log("the phantom's own planning noise on the held-out anatomies")
    floor = planning_floor(args.heldout_seed, args.heldout)
    with open(work / "heldout_rows.json", "w") as f:
        json.dump({f"{k[0]}/{k[1]}": v for k, v in results.items()}, f, default=float)

    # UK Biobank demo.
    ukbb, skipped = None, None
    shared = Path(os.environ.get("PLANESSL_SHARED_DATA", ROOT.parent / "shared" / "data"))
    folder = Path(args.ukbb) if args.ukbb else shared / "ukbb_demo" / "1"
    if folder.is_dir():
        log(f"UK Biobank demo: {folder}")
        ukbb = ukbb_rows(folder, model)
    else:
        skipped = f"no UK Biobank demo folder ({folder})"
        log(skipped)

    # Confirmation: the shipped model with plan's defaults, and the baseline, on fresh exams
    # that no choice above has seen (the 30 held-out exams were looked at once per row).
    confirm = None
    if args.confirm > 0:
        conf_cache = make_cache(work / f"confirm_cache_{args.confirm_seed}", args.confirm_seed,
                                args.confirm)
        path = work / f"confirm_rows_{finals[shipped][0].name}.json"
        if path.is_file():
            rows = json.loads(path.read_text())
        else:
            log(f"confirmation on {args.confirm} fresh exams (seed {args.confirm_seed})")
            rows = {"model": model_errors(conf_cache, conf_cache.ids, shipped_model),
                    "baseline": baseline_errors(conf_cache, conf_cache.ids, mean_planes)}
            path.write_text(json.dumps(rows, default=float))
        # Every model confirmed so far (one look each), the shipped one first.
        runs = {finals[shipped][0].name: rows}
        for other in sorted(work.glob("confirm_rows_*.json")):
            name = other.stem[len("confirm_rows_"):]
            runs.setdefault(name, json.loads(other.read_text()))
        confirm = {"n": args.confirm, "seed": args.confirm_seed, "shipped": method_of[shipped],
                   "rows": [{"method": "baseline" if m == "baseline" else
                             next((method_of[k] for k, (r, _) in finals.items()
                                   if r.name == name), name)
                             + (" (shipped)" if name == finals[shipped][0].name else ""),
                             "view": v, **summarise(r, v)}
                            for i, (name, by) in enumerate(runs.items())
                            for m, r in by.items() if m == "model" or i == 0
                            for v in TARGETS]}

    exported = None
    if args.export:
        exported = export(finals[shipped][0]).relative_to(ROOT)
        log(f"exported the final model to {exported}")
    w = (final / "weights.safetensors")
    n_params = sum(p.numel() for p in model.module.parameters())
    cmd = ["PYTHONPATH=src python benchmarks/plan_phantom.py", *sys.argv[1:]]
    info = {
        "command": " ".join(cmd), "n_train": args.train, "train_seed": args.train_seed,
        "n_val": len(val_ids), "n_heldout": args.heldout, "heldout_seed": args.heldout_seed,
        "chosen": chosen, "final_minutes": args.minutes,
        "final_steps": trained_steps(final), "select_minutes": args.select_minutes,
        "precision": resolve_precision("auto", "cpu"), "weight_bytes": w.stat().st_size,
        "shipped_weight_bytes": (finals[shipped][0] / "weights.safetensors").stat().st_size,
        "n_params": n_params, "ukbb": os.path.relpath(folder, ROOT), "ukbb_skipped": skipped,
        "exported": exported, "wall_minutes": (time.time() - t_start) / 60,
        "train_seconds": sum(float((work / f"select_{n}" / "train_seconds.txt").read_text())
                             for n in args.candidates)
        + sum(float((run / "train_seconds.txt").read_text()) for run, _ in finals.values()),
        "final_val": final_val, "shipped": shipped, "weighting_val": weighting_val,
        "confirm": confirm,
        "calibration": finals[shipped][1].calibration.to_dict(),
        "n_cal": sum(len(ids) for _, ids in cal_sets), "long": long_info, "more": more_info,
        "shipped_method": method_of[shipped], "line_summary": line_summary(diag_lines),
        "floor": floor,
        "before_after": [(m, m) for m in (M_BEFORE, *WEIGHTINGS, M_LOC, M_LONG, M_MORE, M_MORE2,
                                          *(m for _, m, _ in NET_VARIANTS.values()))
                         if ("localizers", m) in results],
        "baseline_doc": " ".join(baseline_planes.__doc__.split())
        + " The frame (`localizer_frame`): z = the normal of the SAX localizer's middle slice "
          "(signed first -> last slice); x = the 4CH localizer's normal made orthogonal to z; "
          "y = z x x; origin = the point common to the 2CH localizer, the 4CH localizer and "
          "the SAX localizer's middle slice. A test exam's proposal is the mean plane mapped "
          "back through that exam's own frame.",
    }
    write_report(info, table, selection, ukbb, failures)
    log(f"wrote {RESULTS / 'README.md'}")
    print((RESULTS / "README.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
