"""run_info.json records the source's git commit when planessl runs from a checkout."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from planessl.runinfo import save_run_info, source_revision


def test_source_revision_outside_a_checkout_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert source_revision(tmp_path) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_source_revision_names_the_commit_and_a_dirty_tree(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "module.py").write_text("x = 1\n")
    git("add", "module.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = git("rev-parse", "HEAD")
    assert source_revision(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "module.py").write_text("x = 2\n")
    assert source_revision(tmp_path) == {"commit": head, "dirty": True}
    (tmp_path / "untracked.txt").write_text("not part of the source\n")
    git("checkout", "-q", "--", "module.py")
    assert source_revision(tmp_path)["dirty"] is False


def test_run_info_has_a_source_entry(tmp_path):
    save_run_info(tmp_path, {"a": 1}, seed=3, command=["x"])
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["seed"] == 3 and "source" in info
    assert info["source"] is None or len(info["source"]["commit"]) == 40
