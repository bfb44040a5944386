"""``planessl demo --out DIR``: the main job on data that ships with the install.

For now: the geometry check on pydicom's real tri-plane MR localizer
(:func:`planessl.geometry_check.run_geometry_check`).
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the main job on embedded data (geometry check on a real localizer)",
        description="Intersect the planes of the real tri-plane MR localizer that pydicom "
                    "ships, print the table of lines and draw them (PNG) into --out.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.geometry_check import run_geometry_check

    run_geometry_check(args.out)
    return 0
