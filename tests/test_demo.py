"""`planessl demo` end to end at a toy size (the real defaults are timed in the report)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import planessl
from planessl.cli import build_parser, main

#: What a person must not see on the console of a demo or experiment: Lightning's
#: per-run chatter, model summaries, library warnings, progress bars.
NOISE = ("LOCAL_RANK", "Trainable params", "UserWarning", "Warning:", "seed set", "Seed set",
         "GPU available", "TPU available", "Tip:", "it/s", "Epoch ", "Traceback")


def test_demo_tiny(tmp_path, phantom_cache):
    """The real console (a separate process, stdout and stderr): one line per cell and
    per pretraining run, the table, no library noise; the noise is in each run's log.txt."""
    out = tmp_path / "demo"
    shutil.copytree(phantom_cache, out / "cache")  # the demo reuses a cache it finds
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(planessl.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "planessl", "demo", "--out", str(out), "--subjects", "10",
         "--labelled", "1", "2", "--pretrain-steps", "2", "--finetune-steps", "2",
         "--features", "[4,8,16]", "--image-size", "32", "--spacing-mm", "8"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = proc.stdout + proc.stderr
    assert proc.stderr.strip() == ""
    for word in NOISE:
        assert word.lower() not in console.lower(), f"{word!r} on the console:\n{console}"
    cells = [line for line in console.splitlines() if re.match(r"\[\d/4\] ", line)]
    assert cells == [
        line for line in cells if re.fullmatch(r"\[\d/4\] (scratch|multitask) N=[12] seed 0: "
                                               r"mean Dice \d\.\d{3} \(\d+ s\)", line)]
    assert [c.split(":")[0] for c in cells] == ["[1/4] scratch N=1 seed 0", "[2/4] scratch N=2 seed 0",
                                                "[3/4] multitask N=1 seed 0",
                                                "[4/4] multitask N=2 seed 0"]
    assert sum(line.startswith("pretraining multitask seed 0") for line in console.splitlines()) == 1
    assert "| scratch | 1 |" in console and "| multitask | 1 |" in console
    exp = out / "experiment"
    rows = (exp / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 2
    assert (exp / "dice_vs_n.png").is_file()
    assert (out / "cache" / "manifest.json").is_file()
    assert (out / "geometry" / "localizer_1.png").is_file()
    # what the console did not show went to the run folders' logs
    cell_log = (exp / "cells" / "multitask-n1-s0" / "log.txt").read_text()
    assert "Trainable params" in cell_log and "Seed set to 0" in cell_log
    assert "fine-tuned segmentation" in cell_log and "transfer (encoder+decoder)" in cell_log
    assert "Trainable params" in (exp / "pretrain" / "multitask-s0" / "log.txt").read_text()


def test_demo_out_defaults_to_planessl_demo():
    assert build_parser().parse_args(["demo"]).out == "planessl_demo"


def test_demo_refuses_too_few_subjects(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--subjects", "5", "--labelled", "3"]) == 2
    assert "too few" in capsys.readouterr().err
