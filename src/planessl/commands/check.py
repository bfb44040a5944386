"""``planessl check CACHE``: verify a cache's integrity (exit 1 when a problem is found)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("check", help="verify a cache: files, shapes, geometry, labels",
                              description="Verify every study of a cache: files present, "
                                          "array shapes and dtypes, finite pixels, plane "
                                          "geometry, label values. Exit 1 on any problem.")
    p.add_argument("cache", metavar="CACHE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.check import check_cache

    problems, notes = check_cache(args.cache)
    for n in notes:
        print(f"note: {n}")
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    print(f"{args.cache}: {len(problems)} problem(s), {len(notes)} note(s)")
    return 1 if problems else 0
