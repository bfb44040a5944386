"""Integrity check of a planessl cache (``planessl check``), like nnU-Net's dataset check:
every file present, shapes consistent, geometry valid, label values in the known set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from planessl.cache import MANIFEST, SCHEMA_VERSION, STUDIES
from planessl.errors import PlaneSSLError
from planessl.geometry import Plane, stack_geometry
from planessl.study import EXTRA_LABEL_NAMES, LABEL_NAMES, VIEW_TYPES

KNOWN_LABELS = frozenset(LABEL_NAMES) | frozenset(EXTRA_LABEL_NAMES)


def _check_series(folder: Path, s: dict) -> list[str]:
    problems: list[str] = []
    where = f"{folder.name}/{s.get('name')}"
    if s.get("view") not in VIEW_TYPES:
        problems.append(f"{where}: unknown view type {s.get('view')!r}")
    shape = tuple(s.get("shape", ()))
    if len(shape) != 4 or min(shape) < 1:
        return problems + [f"{where}: invalid shape {shape}"]
    S, F, H, W = shape
    pix_path = folder / f"{s['name']}.pixels.npy"
    try:
        pixels = np.load(pix_path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        return problems + [f"{pix_path}: missing or unreadable ({exc})"]
    if pixels.shape != shape:
        problems.append(f"{pix_path}: shape {pixels.shape} != manifest {shape}")
    elif pixels.dtype != np.float32:
        problems.append(f"{pix_path}: dtype {pixels.dtype}, expected float32")
    else:
        for k in range(S):  # one slice at a time: bounded memory
            if not np.all(np.isfinite(pixels[k])):
                problems.append(f"{pix_path}: NaN or infinite values in slice {k}")
                break
    if s.get("has_labels"):
        lab_path = folder / f"{s['name']}.labels.npy"
        try:
            labels = np.load(lab_path, mmap_mode="r")
            if labels.shape != shape or labels.dtype != np.uint8:
                problems.append(f"{lab_path}: {labels.dtype} {labels.shape}, expected uint8 {shape}")
            else:
                values = set()
                for k in range(S):
                    values |= {int(v) for v in np.unique(labels[k])}
                bad = sorted(values - KNOWN_LABELS)
                if bad:
                    problems.append(f"{lab_path}: label values {bad} outside {sorted(KNOWN_LABELS)}")
        except (OSError, ValueError) as exc:
            problems.append(f"{lab_path}: missing or unreadable ({exc})")
        frames = s.get("labelled_frames", [])
        if any(not 0 <= f < F for f in frames):
            problems.append(f"{where}: labelled frames {frames} outside 0..{F - 1}")
    for key in ("ed_frame", "es_frame"):
        f = s.get(key)
        if f is not None and not 0 <= f < F:
            problems.append(f"{where}: {key} {f} outside 0..{F - 1}")
    if s.get("frame_times") is not None and len(s["frame_times"]) != F:
        problems.append(f"{where}: {len(s['frame_times'])} frame times for {F} frames")
    planes_raw = s.get("planes", [])
    if len(planes_raw) != S:
        return problems + [f"{where}: {len(planes_raw)} planes for {S} slices"]
    try:
        planes = [Plane.from_dict(p) for p in planes_raw]
    except (PlaneSSLError, KeyError, TypeError, ValueError) as exc:
        return problems + [f"{where}: invalid plane geometry ({exc})"]
    if any(p.shape != (H, W) for p in planes):
        problems.append(f"{where}: a plane's shape differs from the images' {(H, W)}")
    if S > 1:
        try:
            geo = stack_geometry(planes, toward=None)
            if "duplicate slice positions" in geo.problems or geo.relative is None:
                problems.append(f"{where}: slices share positions ({'; '.join(geo.problems)})")
        except PlaneSSLError as exc:
            problems.append(f"{where}: {exc}")
    return problems


def check_cache(path: str | Path) -> tuple[list[str], list[str]]:
    """``(problems, notes)``: problems make the cache unusable or wrong; notes do not."""
    path = Path(path)
    problems: list[str] = []
    notes: list[str] = []
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        return [f"{manifest_path}: missing (not a planessl cache)"], notes
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{manifest_path}: unreadable ({exc})"], notes
    if manifest.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"{manifest_path}: schema version {manifest.get('schema_version')}, "
                        f"expected {SCHEMA_VERSION}")
    listed = {e["id"] for e in manifest.get("studies", [])}
    root = path / STUDIES
    on_disk = set()
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith("."):
                notes.append(f"{d}: leftover temporary folder of an interrupted write "
                             f"(the next ingest removes it)")
            elif d.is_dir():
                on_disk.add(d.name)
    for sid in sorted(on_disk - listed):
        notes.append(f"{root / sid}: study not in the manifest (run ingest again to rebuild it)")
    for sid in sorted(listed):
        folder = root / sid
        try:
            meta = json.loads((folder / "study.json").read_text())
        except FileNotFoundError:
            problems.append(f"{folder / 'study.json'}: missing")
            continue
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(f"{folder / 'study.json'}: unreadable ({exc})")
            continue
        if meta.get("id") != sid:
            problems.append(f"{folder / 'study.json'}: id {meta.get('id')!r} != folder name")
        names = [s.get("name") for s in meta.get("series", [])]
        if len(set(names)) != len(names):
            problems.append(f"{folder}: duplicate series names {names}")
        if not names:
            problems.append(f"{folder}: study without series")
        for s in meta.get("series", []):
            problems.extend(_check_series(folder, s))
    return problems, notes
