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
    "skipped": [{"path", "reason"}]}`` (only the views a study has)."""
    from planessl.cache import Cache

    cache = Cache(cache_path)
    studies = [{"id": e["id"],
                "views": {v: {"slices": int(c["slices"]), "frames": int(c["frames"])}
                          for v, c in e["views"].items()},
                "labels": bool(e["labels"])} for e in cache.entries]
    skipped = [{"path": s["path"], "reason": s["reason"]}
               for s in cache.manifest.get("skipped", [])]
    return {"studies": studies, "skipped": skipped}


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
        print(f"  {s['path']}: {s['reason']}")
    return 0
