"""The on-disk cache that training reads: PHI-free, atomic per study, random access per image.

Layout (schema version :data:`SCHEMA_VERSION`)::

    CACHE/
      manifest.json                     index of all studies (rebuilt from study.json files)
      studies/<id>/study.json           geometry, views, frames, labels of one study
      studies/<id>/<series>.pixels.npy  (S, F, H, W) float32
      studies/<id>/<series>.labels.npy  (S, F, H, W) uint8, when the series has labels

``.npy`` files are opened memory-mapped, so reading one 2D image reads only that image.
A study is written into a temporary folder and renamed into place, so an interrupted
write never leaves a half-written study behind.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from planessl.errors import PlaneSSLError
from planessl.geometry import Plane
from planessl.study import Series, Study

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
STUDIES = "studies"


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _series_meta(s: Series) -> dict:
    return {
        "name": s.name, "view": s.view, "shape": list(s.pixels.shape),
        "planes": [p.to_dict() for p in s.planes],
        "has_labels": s.labels is not None,
        "labelled_frames": [int(f) for f in s.labelled_frames],
        "frame_times": None if s.frame_times is None else [float(t) for t in s.frame_times],
        "ed_frame": s.ed_frame, "es_frame": s.es_frame,
        "spacing_known": bool(s.spacing_known), "view_reason": s.view_reason,
    }


def study_summary(meta: dict) -> dict:
    """The manifest entry of a study: views with slice/frame counts, labels present."""
    views: dict[str, dict] = {}
    for s in meta["series"]:
        v = views.setdefault(s["view"], {"slices": 0, "frames": 0, "series": 0})
        v["slices"] += s["shape"][0]
        v["frames"] = max(v["frames"], s["shape"][1])
        v["series"] += 1
    return {"id": meta["id"], "source_hash": meta.get("source_hash"), "views": views,
            "labels": any(s["has_labels"] and s["labelled_frames"] for s in meta["series"]),
            "targets": meta.get("targets", {}), "group": meta.get("group", "cardiac")}


def write_study(cache_dir: str | Path, study: Study, source_hash: str | None = None) -> Path:
    """Write one study atomically (replacing an older version of it).

    Args:
        cache_dir: the cache folder (created when missing).
        study: the study; its ``id`` must be opaque (no PHI) and a valid folder name.
        source_hash: opaque hash of the source files, used to skip unchanged studies.
    """
    root = Path(cache_dir) / STUDIES
    root.mkdir(parents=True, exist_ok=True)
    if not study.id or "/" in study.id or study.id.startswith("."):
        raise PlaneSSLError(f"invalid study id {study.id!r}")
    tmp = root / f".tmp-{study.id}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for s in study.series:
            np.save(tmp / f"{s.name}.pixels.npy", np.ascontiguousarray(s.pixels, dtype=np.float32))
            if s.labels is not None:
                np.save(tmp / f"{s.name}.labels.npy", np.ascontiguousarray(s.labels, dtype=np.uint8))
        meta = {"schema_version": SCHEMA_VERSION, "id": study.id, "group": study.group,
                "targets": dict(study.targets), "source_hash": source_hash,
                **({"laterality": study.laterality} if study.laterality else {}),
                "series": [_series_meta(s) for s in study.series]}
        (tmp / "study.json").write_text(json.dumps(meta, indent=1))
        final = root / study.id
        if final.exists():
            old = root / f".old-{study.id}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def rebuild_manifest(cache_dir: str | Path, skipped: list[dict] | None = None,
                     warnings: list[dict] | None = None) -> dict:
    """Scan ``studies/*/study.json`` and write ``manifest.json`` atomically.

    ``skipped`` (files not cached and why) and ``warnings`` (files cached with a caveat)
    replace the stored lists when given.
    """
    cache_dir = Path(cache_dir)
    root = cache_dir / STUDIES
    entries = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.name.startswith(".") or not (d / "study.json").is_file():
                continue
            entries.append(study_summary(json.loads((d / "study.json").read_text())))
    old = {}
    if (cache_dir / MANIFEST).is_file():
        try:
            old = json.loads((cache_dir / MANIFEST).read_text())
        except json.JSONDecodeError:
            old = {}
    manifest = {"schema_version": SCHEMA_VERSION, "studies": entries,
                "skipped": skipped if skipped is not None else old.get("skipped", []),
                "warnings": warnings if warnings is not None else old.get("warnings", [])}
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(cache_dir / MANIFEST, manifest)
    return manifest


class Cache:
    """Read access to a planessl cache.

    Example:
        >>> cache = Cache("cache/")            # doctest: +SKIP
        >>> study = cache.load(cache.ids[0])   # arrays memory-mapped
        >>> study.series[0].pixels[3, 0]       # reads one 2D image
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            raise PlaneSSLError(f"{self.path}: not a planessl cache (no {MANIFEST}); "
                                f"create one with `planessl ingest` or `planessl phantom`")
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise PlaneSSLError(f"{manifest_path}: corrupt manifest ({exc})") from None
        version = self.manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise PlaneSSLError(f"{manifest_path}: cache schema version {version}, "
                                f"this planessl reads {SCHEMA_VERSION}; re-run ingest")
        self.entries: list[dict] = list(self.manifest.get("studies", []))
        self._by_id = {e["id"]: e for e in self.entries}

    @property
    def ids(self) -> list[str]:
        return [e["id"] for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def entry(self, study_id: str) -> dict:
        """The manifest entry (views, labels, targets) of a study."""
        return self._by_id[study_id]

    def meta(self, study_id: str) -> dict:
        """The full ``study.json`` of a study (geometry of every slice)."""
        path = self.path / STUDIES / study_id / "study.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise PlaneSSLError(f"{path}: missing (cache is incomplete; run `planessl check`)") from None

    def load(self, study_id: str, mmap: bool = True) -> Study:
        """The study with its arrays memory-mapped read-only (``mmap=False``: in memory)."""
        meta = self.meta(study_id)
        folder = self.path / STUDIES / study_id
        mode = "r" if mmap else None
        series = []
        for s in meta["series"]:
            try:
                pixels = np.load(folder / f"{s['name']}.pixels.npy", mmap_mode=mode)
                labels = (np.load(folder / f"{s['name']}.labels.npy", mmap_mode=mode)
                          if s["has_labels"] else None)
            except (OSError, ValueError) as exc:
                raise PlaneSSLError(f"{folder}: cannot read series {s['name']} ({exc})") from None
            series.append(Series(
                name=s["name"], view=s["view"],
                planes=[Plane.from_dict(p) for p in s["planes"]],
                pixels=pixels, labels=labels, labelled_frames=list(s["labelled_frames"]),
                frame_times=s["frame_times"], ed_frame=s["ed_frame"], es_frame=s["es_frame"],
                spacing_known=s["spacing_known"], view_reason=s.get("view_reason", "")))
        return Study(id=meta["id"], series=series, targets=dict(meta.get("targets", {})),
                     group=meta.get("group", "cardiac"), laterality=meta.get("laterality"))


def write_cache(cache_dir: str | Path, studies: list[Study]) -> "Cache":
    """Write several in-memory studies (e.g. phantoms) and the manifest; returns the cache."""
    for study in studies:
        write_study(cache_dir, study)
    rebuild_manifest(cache_dir)
    return Cache(cache_dir)
