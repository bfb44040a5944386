"""What every run saves beside its outputs: resolved configuration, seed, package versions."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

PACKAGES = ("planessl", "torch", "monai", "pytorch-lightning", "numpy", "scipy", "pydicom",
            "nibabel", "h5py", "matplotlib", "safetensors")


def package_versions() -> dict[str, str | None]:
    """Installed versions of planessl and the libraries its numbers depend on."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = sys.version.split()[0]
    out["platform"] = platform.platform()
    return out


def source_revision(where: str | Path | None = None) -> dict[str, Any] | None:
    """The git commit of the planessl source a run used, when it runs from a git checkout
    (an editable install or ``PYTHONPATH=src``): ``{"commit": SHA, "dirty": bool}``, dirty
    when tracked files differ from the commit. ``None`` for an installed package, or when
    git is missing. ``where`` is a folder inside the checkout (default: this package's)."""
    folder = Path(where) if where is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"commit": commit, "dirty": bool(status)}


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file under a temporary name, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_run_info(out_dir: str | Path, config: dict[str, Any], seed: int | None,
                  command: list[str] | None = None) -> None:
    """Write ``config.yaml`` (resolved), and ``run_info.json`` (seed, versions, command, and
    the source's git commit when it runs from a checkout, see :func:`source_revision`)."""
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    info = {"seed": seed, "versions": package_versions(),
            "command": command if command is not None else sys.argv,
            "source": source_revision()}
    write_text_atomic(out_dir / "run_info.json", json.dumps(info, indent=1))
