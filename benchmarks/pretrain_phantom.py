"""Accuracy of a short pretraining on phantom data: held-out line and slice-location errors
against chance.

Trains ``planessl pretrain`` (multitask, small preset unless overridden) on a phantom
cache for at most ``--minutes``, then evaluates on the held-out (validation) studies, every
SAX slice at two frames, without augmentation:

* line angle error (deg) and distance error (mm at the image centre) per channel (2CH, 4CH),
  against two chance baselines: a random line (uniform direction through a uniform point
  of the central half of the image) and the mean training line (the best constant line);
* slice-location MAE against predicting the training mean.

Usage::

    PYTHONPATH=src python benchmarks/pretrain_phantom.py --cache CACHE --out RUN --minutes 10 [key=value ...]

Writes ``benchmarks/results/pretrain_phantom.{csv,md}`` and ``docs/pretrain_phantom.png``.
"""

from __future__ import annotations

import argparse
import os
import csv
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from planessl.cache import Cache
from planessl.config import PretrainConfig, load_config
from planessl.data.module import split_ids
from planessl.data.pretrain import PretrainDataset, make_sample
from planessl.evaluation.lines import fit_line, line_errors, line_in_mm
from planessl.evaluation.plots import save_heatmap_preview
from planessl.pretraining import run_pretraining, sample_spec

ROOT = Path(__file__).resolve().parents[1]


def evaluate(module, cache: Cache, ids, spec, frames=(0, 3)) -> dict[str, np.ndarray]:
    module.eval()
    out = {"pred_abc": [], "true_abc": [], "mask": [], "spacing": [], "slice_pred": [],
           "slice_true": [], "preview": None}
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for sid in ids:
            study = cache.load(sid)
            for s_idx, series in enumerate(study.series):
                if series.view not in spec.input_views:
                    continue
                items = [make_sample(study, s_idx, k, f % series.n_frames, spec, None, rng)
                         for k in range(series.n_slices) for f in frames]
                batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
                pred = module(batch["image"])
                heat = pred["lines"].numpy()
                for b in range(len(items)):
                    sp = tuple(batch["spacing"][b].tolist())
                    for c in range(heat.shape[1]):
                        fit = fit_line(heat[b, c], sp)
                        out["pred_abc"].append(fit if fit is not None else (np.nan,) * 3)
                        out["true_abc"].append(tuple(batch["line_abc"][b, c].tolist()))
                        out["mask"].append(float(batch["line_mask"][b, c]))
                        out["spacing"].append(sp)
                keep = batch["slice_mask"][:, 0] > 0
                out["slice_pred"] += pred["slices"][keep, 0].tolist()
                out["slice_true"] += batch["slice"][keep, 0].tolist()
                if out["preview"] is None:
                    sel = list(range(0, len(items), max(1, len(items) // 4)))[:4]
                    out["preview"] = {"image": batch["image"][sel].numpy(),
                                      "lines": batch["lines"][sel].numpy(),
                                      "pred": heat[sel], "line_mask": batch["line_mask"][sel].numpy(),
                                      "spacing": batch["spacing"][sel].numpy()}
    return out


def line_table(res, n_channels, shape, rng, mean_lines) -> dict[str, dict[str, float]]:
    rows = {}
    pred = np.array(res["pred_abc"], dtype=float)
    true = np.array(res["true_abc"], dtype=float)
    mask = np.array(res["mask"]) > 0
    ch = np.arange(len(mask)) % n_channels
    for c in range(n_channels):
        sel = np.nonzero(mask & (ch == c) & np.all(np.isfinite(true), axis=1))[0]
        model, rand, mean = [], [], []
        failed = 0
        for k in sel:
            sp = res["spacing"][k]
            if np.all(np.isfinite(pred[k])):
                model.append(line_errors(tuple(pred[k]), tuple(true[k]), shape, sp))
            else:
                failed += 1
            # Random line: uniform direction through a point of the central half.
            t = rng.uniform(0, np.pi)
            pi, pj = rng.uniform(shape[0] / 4, 3 * shape[0] / 4), rng.uniform(shape[1] / 4, 3 * shape[1] / 4)
            a, b = np.cos(t), np.sin(t)
            rand.append(line_errors((a, b, -(a * pi + b * pj)), tuple(true[k]), shape, sp))
            mean.append(line_errors(tuple(mean_lines[c]), tuple(true[k]), shape, sp))
        m, r, mn = np.array(model), np.array(rand), np.array(mean)
        rows[c] = {"n": len(sel), "fit_failed": failed,
                   "angle_model": float(np.mean(m[:, 0])), "dist_model": float(np.mean(m[:, 1])),
                   "angle_median": float(np.median(m[:, 0])), "dist_median": float(np.median(m[:, 1])),
                   "angle_random": float(np.mean(r[:, 0])), "dist_random": float(np.mean(r[:, 1])),
                   "angle_meanline": float(np.mean(mn[:, 0])), "dist_meanline": float(np.mean(mn[:, 1]))}
    return rows


def mean_training_lines(cache, ids, spec, n=60) -> tuple[list[tuple], float]:
    """Average true line per channel over training images (normals aligned), and the mean
    slice location."""
    ds = PretrainDataset(cache, ids, spec, None, seed=123)
    sums = np.zeros((len(spec.line_channels), 3))
    slices = []
    for k in range(min(n, len(ds))):
        s = ds[(0, k)]
        for c in range(len(spec.line_channels)):
            abc = s["line_abc"][c].numpy().astype(float)
            if np.all(np.isfinite(abc)):
                l = line_in_mm(abc, tuple(s["spacing"].tolist()))
                if sums[c, :2] @ l[:2] < 0:
                    l = -l
                sums[c] += l
        if s["slice_mask"][0] > 0:
            slices.append(float(s["slice"][0]))
    sp = spec.spacing_mm
    lines = []
    for c in range(len(spec.line_channels)):
        n_i, n_j, cc = sums[c] / max(1e-9, np.linalg.norm(sums[c, :2]))
        lines.append((n_i * sp, n_j * sp, cc))  # back to pixel-index coefficients
    return lines, float(np.mean(slices))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    mins = args.minutes
    cfg = load_config(PretrainConfig, overrides=[
        "task.name=multitask", "trainer.max_epochs=-1", "trainer.progress_bar=false",
        f"trainer.max_time=00:00:{int(mins):02d}:{int(round((mins % 1) * 60)):02d}",
        *args.overrides])
    cache = Cache(args.cache)
    t0 = time.time()
    module = run_pretraining(cfg, cache, args.out)
    train_s = time.time() - t0
    spec = sample_spec(cfg)
    train_ids, val_ids = split_ids(cache.ids, cfg.data.val_fraction, cfg.seed)
    res = evaluate(module, cache, val_ids, spec)
    rng = np.random.default_rng(0)
    mean_lines, mean_slice = mean_training_lines(cache, train_ids, spec)
    shape = (spec.image_size, spec.image_size)
    rows = line_table(res, len(spec.line_channels), shape, rng, mean_lines)
    sp, st = np.array(res["slice_pred"]), np.array(res["slice_true"])
    slice_mae, slice_chance = float(np.mean(np.abs(sp - st))), float(np.mean(np.abs(mean_slice - st)))
    steps = int(module.trainer.global_step)

    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    with open(results / "pretrain_phantom.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "channel", "model", "model_median", "chance_random_line", "chance_mean_line", "n"])
        for c, r in rows.items():
            name = spec.line_channels[c]
            w.writerow(["line_angle_deg", name, r["angle_model"], r["angle_median"], r["angle_random"], r["angle_meanline"], r["n"]])
            w.writerow(["line_dist_mm", name, r["dist_model"], r["dist_median"], r["dist_random"], r["dist_meanline"], r["n"]])
        w.writerow(["slice_location_mae", "", slice_mae, "", "", slice_chance, len(st)])
    md = ["# Pretraining on phantom data (held-out studies)", "",
          f"Command: `PYTHONPATH=src python benchmarks/pretrain_phantom.py --cache {args.cache} "
          f"--out {args.out} --minutes {mins:g} {' '.join(args.overrides)}`", "",
          f"Multitask (lines 2CH/4CH + slice location), preset `{cfg.model.preset}`, "
          f"{spec.image_size} x {spec.image_size} at {spec.spacing_mm} mm, batch "
          f"{cfg.data.batch_size}; {len(train_ids)} training / {len(val_ids)} held-out "
          f"phantom studies; {steps} steps in {train_s / 60:.1f} min on {os.cpu_count()} CPU cores "
          f"(load average {os.getloadavg()[0]:.1f} at the end). Evaluation: every SAX slice of each held-out study at "
          "two frames, no augmentation.", "",
          "| metric | channel | model (mean) | model (median) | chance: random line | chance: mean training line | n |",
          "|---|---|---|---|---|---|---|"]
    for c, r in rows.items():
        name = spec.line_channels[c]
        md.append(f"| line angle error (deg) | {name} | {r['angle_model']:.1f} | {r['angle_median']:.1f} | "
                  f"{r['angle_random']:.1f} | {r['angle_meanline']:.1f} | {r['n']} |")
        md.append(f"| line distance error (mm) | {name} | {r['dist_model']:.1f} | {r['dist_median']:.1f} | "
                  f"{r['dist_random']:.1f} | {r['dist_meanline']:.1f} | {r['n']} |")
        if r["fit_failed"]:
            md.append(f"| line fit failed | {name} | {r['fit_failed']} | | | | |")
    md.append(f"| slice-location MAE | | {slice_mae:.3f} | | | {slice_chance:.3f} (training mean) | {len(st)} |")
    md += ["", "![held-out heatmaps](../../docs/pretrain_phantom.png)", "",
           "Figure: input, then per channel the target and the predicted heatmap (cyan dashed: "
           "line fitted to the target; red: line fitted to the prediction)."]
    (results / "pretrain_phantom.md").write_text("\n".join(md) + "\n")
    (ROOT / "docs").mkdir(exist_ok=True)
    save_heatmap_preview(ROOT / "docs" / "pretrain_phantom.png", res["preview"],
                         list(spec.line_channels), dpi=70)
    print("\n".join(md))


if __name__ == "__main__":
    main()
