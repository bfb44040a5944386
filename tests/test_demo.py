"""`planessl demo` end to end at a toy size (the real defaults are timed in the report)."""

import shutil

from planessl.cli import main


def test_demo_tiny(tmp_path, capsys, phantom_cache):
    out = tmp_path / "demo"
    shutil.copytree(phantom_cache, out / "cache")  # the demo reuses a cache it finds
    rc = main(["demo", "--out", str(out), "--subjects", "10", "--labelled", "1", "2",
               "--pretrain-steps", "2", "--finetune-steps", "2", "--features", "[4,8,16]",
               "--image-size", "32", "--spacing-mm", "8"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| scratch |" in text and "| multitask |" in text
    rows = (out / "experiment" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 2
    assert (out / "experiment" / "dice_vs_n.png").is_file()
    assert (out / "cache" / "manifest.json").is_file()
    assert (out / "geometry" / "localizer_1.png").is_file()


def test_demo_refuses_too_few_subjects(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--subjects", "5", "--labelled", "3"]) == 2
    assert "too few" in capsys.readouterr().err
