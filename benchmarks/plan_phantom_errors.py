"""Planning errors of the ``plan_phantom.py`` benchmark: a model's, the oracle's and the
mean-plane baseline's errors on phantom exams, their summaries, the model-selection score,
the line calibration of a model, the phantom's own planning noise and the UK Biobank demo
subject's rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from plan_phantom_config import GOAL_ANGLE, GOAL_DIST, GOAL_VIEWS, TARGETS


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
