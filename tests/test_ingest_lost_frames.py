"""A cine slice that lost frames (a damaged file) stays out of the cache with one line, never a
localizer nor a stack of its own.

The rule (``planessl.io.dicom_series``): every slice of a cached cine has the frame count of
most of its slices (the cache holds one ``(slices, frames, H, W)`` array per series). A slice
with fewer frames, in the same series or in a one-slice series of the same acquisition (one
series per slice, as the Kaggle DSB layout and many scanner exports store a SAX cine), is not
cached: one line names its first remaining file and says how many frames it has.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dicom_fixtures import write_cardiac_study
from planessl.cache import Cache
from planessl.cli import main


def _truncate(path: Path, keep: float = 0.7) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


def _ingest(src: Path, out: Path, capsys) -> tuple[int, str, Cache]:
    rc = main(["ingest", str(src), "--out", str(out), "--workers", "1", "--no-progress"])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err, Cache(out)


@pytest.mark.parametrize("n_frames,lax", [(2, False), (3, True)])
def test_slice_that_lost_a_frame_is_dropped_not_a_localizer(tmp_path, capsys, n_frames, lax):
    # one series per slice (sax_5, sax_6, sax_7); the first file of sax_5 (base slice
    # with n_frames=2 -> left single-frame, acquired first: it passed for a SAX localizer)
    files = write_cardiac_study(tmp_path / "src", "1.2.999.7", n_slices=3,
                                n_frames=n_frames, lax=lax)
    sax5 = sorted(f for f in files if f.parent.name == "sax_5")
    _truncate(sax5[0])
    rc, text, cache = _ingest(tmp_path / "src", tmp_path / "cache", capsys)
    assert rc == 0, text
    assert "Traceback" not in text
    meta = cache.meta(cache.ids[0])
    views = {s["name"]: (s["view"], s["shape"][:2]) for s in meta["series"]}
    assert not any(v.startswith("loc_") for v, _ in views.values()), views
    sax = [name for name, (v, _) in views.items() if v == "sax"]
    assert sax == ["sax"], views  # one SAX stack, no one-slice 'sax_2' beside it
    assert views["sax"][1] == [2, n_frames]
    lines = text.splitlines()
    assert sum(f"{sax5[0]}:" in ln for ln in lines) == 1  # the damaged file, once
    kept = [ln for ln in lines if f"{sax5[1]}:" in ln]
    assert len(kept) == 1, text
    assert f"{n_frames - 1} frame(s)" in kept[0] and "lost frames" in kept[0]
    assert "slice not cached" in kept[0]


def test_intact_one_slice_series_still_merge(tmp_path, capsys):
    write_cardiac_study(tmp_path / "src", "1.2.999.8", n_slices=3, n_frames=2, lax=False)
    rc, text, cache = _ingest(tmp_path / "src", tmp_path / "cache", capsys)
    assert rc == 0, text
    meta = cache.meta(cache.ids[0])
    assert [(s["view"], s["shape"][:2]) for s in meta["series"]] == [("sax", [3, 2])]
    assert "lost frames" not in text


def test_slice_of_one_series_that_lost_a_frame_is_dropped(tmp_path, capsys):
    """All slices in one series (3 slices x 2 frames); one slice loses a frame."""
    from dicom_fixtures import AXIS, COL, ROW, write_image
    import numpy as np

    files = []
    for k in range(3):
        origin = np.array([10.0, 20.0, 30.0]) + k * 8.0 * AXIS - 8 * ROW - 8 * COL
        for f in range(2):
            files.append(write_image(tmp_path / "src" / "cine" / f"IM-{k}-{f}",
                                     study="1.2.999.9", series="1.2.999.9.1", number=7,
                                     desc="CINE SAX", origin=origin, trigger=f * 40.0,
                                     instance=2 * k + f + 1))
    _truncate(files[1])  # slice 0, frame 1
    rc, text, cache = _ingest(tmp_path / "src", tmp_path / "cache", capsys)
    assert rc == 0, text
    meta = cache.meta(cache.ids[0])
    assert [(s["view"], s["shape"][:2]) for s in meta["series"]] == [("sax", [2, 2])]
    lines = text.splitlines()
    assert sum(f"{files[1]}:" in ln for ln in lines) == 1
    kept = [ln for ln in lines if f"{files[0]}:" in ln]
    assert len(kept) == 1 and "slice not cached" in kept[0], text
