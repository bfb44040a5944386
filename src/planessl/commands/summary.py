"""``planessl summary CACHE [--json]``: the studies, views and skipped files of a cache."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("summary", help="list the studies and views of a cache")
    p.add_argument("cache", metavar="CACHE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def summary(cache_path: str) -> dict:
    """``{"studies": [{"id", "views": {view: {"slices", "frames"}}, "labels"}],
    "skipped": [{"file", "source", "study", "position", "reason"}]}`` (only the views a study
    has; skipped files are named by opaque id, see :class:`planessl.io.sources.SkipRecorder`)."""
    from planessl.cache import Cache

    cache = Cache(cache_path)
    studies = [{"id": e["id"],
                "views": {v: {"slices": int(c["slices"]), "frames": int(c["frames"])}
                          for v, c in e["views"].items()},
                "labels": bool(e["labels"])} for e in cache.entries]
    skipped = [{k: s[k] for k in ("file", "source", "study", "position", "reason") if k in s}
               for s in cache.manifest.get("skipped", [])]
    return {"studies": studies, "skipped": skipped}


def describe_skipped(record: dict) -> str:
    """``file-ID (source 2, study ID, series 3, image 2 of 25)`` for a manifest record
    (paths are not in the cache: the ``--keys`` table of the ingest maps ids to paths)."""
    where = [f"source {record['source']}"] if "source" in record else []
    if "study" in record:
        where += [f"study {record['study']}", record.get("position", "")]
    name = record.get("file", record.get("path", "?"))  # "path": caches of older versions
    return name + (f" ({', '.join(w for w in where if w)})" if where else "")


def run(args: argparse.Namespace) -> int:
    data = summary(args.cache)
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    print(f"{'study':<18}{'labels':<8}views")
    for s in data["studies"]:
        views = ", ".join(f"{v} {c['slices']}x{c['frames']}" for v, c in s["views"].items())
        print(f"{s['id']:<18}{'yes' if s['labels'] else 'no':<8}{views}")
    print(f"{len(data['studies'])} studies; {len(data['skipped'])} files skipped")
    for s in data["skipped"]:
        print(f"  {describe_skipped(s)}: {s['reason']}")
    return 0
