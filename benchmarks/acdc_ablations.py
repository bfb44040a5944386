"""ACDC few-label ablations in one table: pretraining length, learning rate of the transferred
layers, decoder pretraining (slice location + restoration), and how far scratch goes with
every labelled patient of the pool.

Every ablation is one ``benchmarks/acdc_fewlabel.py`` run in its own work folder (the
commands are in :data:`ABLATIONS`), with the protocol, fine-tuning recipe, seeds and test
patients of the main benchmark; only the setting named changes. ``--collect`` copies a
finished run's cell rows (and its learning-curve figure) into
``benchmarks/results/acdc_ablations/runs/``, relabelled with the ablation's name; without
``--collect`` the script writes the report from the collected rows and the committed scratch
cells of the main benchmark (``benchmarks/results/acdc_fewlabel/earlier_protocol/results.csv``)::

    python benchmarks/acdc_ablations.py --collect genesis-4500 /tmp/acdc_bench/abl-genesis4500
    python benchmarks/acdc_ablations.py

Writes ``benchmarks/results/acdc_ablations/{README.md,results.csv,summary.md,dice_vs_n.png}``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/acdc_ablations"
MAIN = ROOT / "benchmarks/results/acdc_fewlabel/earlier_protocol/results.csv"
METHODS_TABLE = ROOT / "benchmarks/results/acdc_methods/results.csv"
sys.path.insert(0, str(ROOT / "src"))
from planessl.experiment import read_rows, write_rows  # noqa: E402
from planessl.runinfo import write_text_atomic  # noqa: E402

RUN = "python benchmarks/acdc_fewlabel.py --data ../shared/data/acdc_h5 --labelled 1 2"

#: label -> (method name inside the run, what changes, the command that made it)
ABLATIONS: dict[str, tuple[str, str, str]] = {
    "genesis-1500": (
        "genesis-acdc", "Models Genesis on the 39 ACDC pool patients, 1,500 pretraining "
        "steps (the main benchmark's cells, `acdc_methods`)", "(committed cells)"),
    "genesis-4500": (
        "genesis-acdc", "the same, 4,500 pretraining steps (3x)",
        f"{RUN} 5 --methods genesis-acdc --work /tmp/acdc_bench/abl-genesis4500 "
        "--pretrain-extra trainer.max_steps=4500"),
    "genesis-1500-lr0.3": (
        "genesis-acdc", "genesis-1500's pretraining run, transferred layers fine-tuned at "
        "0.3x the learning rate (`finetune.transferred_lr_scale=0.3`)",
        f"{RUN} --methods genesis-acdc --work /tmp/acdc_bench/abl-genesis-lr0.3 "
        "--finetune-extra finetune.transferred_lr_scale=0.3 --reuse-pretrain "
        "/tmp/acdc_bench/d/experiment"),
    "slices-genesis-4500": (
        "slices-genesis-acdc", "slice location + restoration (`task.name=slices "
        "task.restore_weight=1`, the decoder pretrained too) on the ACDC pool, 4,500 steps",
        f"{RUN} 5 --methods slices-genesis-acdc --work /tmp/acdc_bench/e4500 "
        "--pretrain-extra trainer.max_steps=4500"),
    "slices-1500": (
        "slices-acdc", "slice location alone on the ACDC pool, 1,500 steps (main benchmark)",
        "(committed cells)"),
}
#: scratch with more labelled patients than the main table (the ceiling of the recipe):
#: label -> (method name in the table, what it is, command)
CEILINGS: dict[str, tuple[str, str, str]] = {
    "ceiling": ("scratch", "scratch, N=10 and N=20 (every pool patient), seed 0",
                "python benchmarks/acdc_fewlabel.py --data ../shared/data/acdc_h5 --methods "
                "scratch --labelled 20 10 --seeds 0 --work /tmp/acdc_bench/ceiling"),
    "ceiling-128px": ("scratch-128px", "scratch, N=20, on a finer grid: 128 px at 1.8 mm "
                      "instead of 96 px at 2.4 mm, seed 0",
                      "python benchmarks/acdc_fewlabel.py --data ../shared/data/acdc_h5 "
                      "--methods scratch --labelled 20 --seeds 0 --work "
                      "/tmp/acdc_bench/ceiling128 --finetune-extra data.image_size=128 "
                      "data.spacing_mm=1.8"),
}


def collect(label: str, work: Path) -> int:
    """Copy the rows of a finished run (method renamed to ``label``) and its learning curves."""
    exp = work / "experiment"
    rows = read_rows(exp / "results.csv")
    if label in CEILINGS:
        keep = [{**r, "method": CEILINGS[label][0]} for r in rows if r["method"] == "scratch"]
    else:
        method = ABLATIONS[label][0]
        keep = [{**r, "method": label} for r in rows if r["method"] == method]
    if not keep:
        print(f"{exp / 'results.csv'}: no rows of the ablation {label!r}")
        return 1
    (RESULTS / "runs").mkdir(parents=True, exist_ok=True)
    write_rows(RESULTS / "runs" / f"{label}.csv", keep)
    if (exp / "learning_curves.png").is_file():
        shutil.copyfile(exp / "learning_curves.png", RESULTS / "runs" / f"{label}_curves.png")
    print(f"{label}: {len(keep)} cells collected")
    return 0


def committed(label: str) -> list[dict]:
    """The ablation rows that are cells of the committed main benchmarks."""
    method = ABLATIONS[label][0]
    source = METHODS_TABLE if label.startswith("genesis") else MAIN
    return [{**r, "method": label} for r in read_rows(source)
            if r["method"] == method]


def report() -> int:
    from planessl.experiment import plot_results, summarise_results

    scratch = [r for r in read_rows(MAIN) if r["method"] == "scratch"]
    rows = list(scratch)
    labels = []
    for label, (_, _, command) in ABLATIONS.items():
        path = RESULTS / "runs" / f"{label}.csv"
        got = committed(label) if command == "(committed cells)" else (
            read_rows(path) if path.is_file() else [])
        if got:
            rows += got
            labels.append(label)
    scratch_arms = ["scratch"]
    for label, (name, _, _) in CEILINGS.items():
        if (RESULTS / "runs" / f"{label}.csv").is_file():
            rows += read_rows(RESULTS / "runs" / f"{label}.csv")
            scratch_arms += [name] if name not in scratch_arms else []
    ns = sorted({int(r["n"]) for r in rows})
    methods = ["scratch", *labels]
    summary = summarise_results(rows, "mean_dice", methods, [1, 2, 5])
    full = summarise_results(rows, "mean_dice", scratch_arms, ns)
    write_rows(RESULTS / "results.csv", rows)
    write_text_atomic(RESULTS / "summary.md", summary)
    plot_results(rows, "mean_dice", methods, ns, RESULTS / "dice_vs_n.png")
    text = [
        "# ACDC few-label ablations", "",
        (__doc__ or "").split("Every ablation")[0].strip(), "",
        "Protocol: `benchmarks/results/acdc_fewlabel/earlier_protocol/README.md` (the earlier, ARV-only protocol: test patients 085-100, 5 "
        "validation patients, seeds 0-2, `configs/acdc_finetune.yaml`, "
        "`configs/acdc_pretrain.yaml` unless the row says otherwise). Scratch rows are the "
        "main benchmark's committed cells (the same recipe and seeds; fine-tuning is "
        "deterministic).", "",
        "This page: `python benchmarks/acdc_ablations.py`, after `python "
        "benchmarks/acdc_ablations.py --collect LABEL WORK` for each run below.", "",
        "| ablation | what changes | command |", "|---|---|---|",
        *[f"| {k} | {d} | `{c}` |" for k, (_, d, c) in ABLATIONS.items() if k in labels],
        *[f"| {k} | {d} | `{c}` |" for k, (_, d, c) in CEILINGS.items()
          if (RESULTS / "runs" / f"{k}.csv").is_file()], "",
        summary.replace("# Few-label results", "## Mean Dice, N=1, 2 and 5"), "",
        "## Scratch with more labels (the ceiling of the recipe on this test set)", "",
        full.replace("# Few-label results", "Scratch"), "",
        "Learning curves of each ablation run: `runs/<label>_curves.png`. Mean Dice per ACDC "
        "diagnostic group (the test patients are all abnormal-RV): `by_group.md` "
        "(`benchmarks/acdc_by_group.py`).", ""]
    write_text_atomic(RESULTS / "README.md", "\n".join(text))
    print(summary)
    print(full)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--collect", nargs=2, metavar=("LABEL", "WORK"), default=None,
                    help="copy a finished ablation run (LABEL: one of ABLATIONS or CEILINGS) "
                         "from its work folder")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.collect:
        label, work = args.collect
        if label not in CEILINGS and label not in ABLATIONS:
            print(f"unknown ablation {label!r}; known: {', '.join([*ABLATIONS, *CEILINGS])}")
            return 2
        return collect(label, Path(work))
    return report()


if __name__ == "__main__":
    sys.exit(main())
