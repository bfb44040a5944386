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

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The benchmark's constants, error computations and report live in sibling modules;
# every name is imported here, so ``plan_phantom.NAME`` keeps working (plan_seeds.py).
from plan_phantom_config import (  # noqa: E402, F401
    BASE, CANDIDATES, EXPORT, GOAL_ANGLE, GOAL_DIST, GOAL_VIEWS, LOC_ONLY, LONG, M_BEFORE,
    M_CALIBRATED, M_COMBINED, M_LOC, M_LONG, M_MORE, M_MORE2, METHODS, NET_VARIANTS, PLAIN,
    RESULTS, ROOT, TARGETS, WEIGHTINGS)
from plan_phantom_errors import (  # noqa: E402, F401
    baseline_errors, baseline_planes, calibrate_run, line_rows, line_summary,
    localizer_frame, median_ci, model_errors, oracle_errors, plan_errors, planning_floor,
    score, scored_entry, summarise, ukbb_rows)
from plan_phantom_report import fmt, write_report  # noqa: E402, F401


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
