"""Command output piped into a reader that stops early (``planessl summary CACHE | head``)
ends quietly: no BrokenPipeError traceback, status 141 (as if killed by SIGPIPE) or 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import planessl
from planessl.cache import rebuild_manifest
from planessl.ingest import ingest

from dicom_fixtures import write_cardiac_study


def _run_and_close_early(argv: list[str]) -> tuple[int, str, bytes]:
    """Run ``python -m planessl argv``, read one line of its output, close the pipe."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(planessl.__file__).parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "planessl", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()  # like head -n 1
    err = proc.stderr.read().decode()
    return proc.wait(timeout=120), err, first


def test_summary_into_a_closed_pipe_ends_quietly(tmp_path):
    write_cardiac_study(tmp_path / "src", "1.2.9.61", n_slices=3, n_frames=2)
    out = tmp_path / "cache"
    ingest([tmp_path / "src"], out, progress=False)
    # far more output than a pipe buffers (64 KiB), so writing must hit the closed pipe
    rebuild_manifest(out, skipped=[{"path": f"folder/file{k:05d}", "reason": "not a DICOM "
                                    "file"} for k in range(20000)])
    rc, err, first = _run_and_close_early(["summary", str(out)])
    assert first.startswith(b"study")
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert "Exception ignored" not in err, err
    assert rc in (0, 141)
