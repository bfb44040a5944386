"""The report of the ``plan_phantom.py`` benchmark: ``benchmarks/results/plan_phantom/
{README.md,plan_phantom.csv,selection.csv,ukbb_demo.csv}`` written from its results."""

from __future__ import annotations

import re

import numpy as np

from plan_phantom_config import (BASE, CANDIDATES, GOAL_ANGLE, GOAL_DIST, GOAL_VIEWS,
                                 LOC_ONLY, M_BEFORE, M_CALIBRATED, M_COMBINED, M_LOC,
                                 M_LONG, M_MORE, M_MORE2, NET_VARIANTS, RESULTS, TARGETS,
                                 WEIGHTINGS)


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
