"""``planessl export-dataset CACHE --nnunet DIR --id N``: a labelled cache in nnU-Net's raw
dataset format."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-dataset", help="write a labelled cache as an nnU-Net raw dataset",
        description="Write the labelled studies of a cache as DIR/DatasetNNN_Name "
                    "(imagesTr, labelsTr, dataset.json; NIfTI with the cache's geometry), "
                    "one case per labelled frame (ED and ES where known) of each series of "
                    "the chosen views.")
    p.add_argument("cache", metavar="CACHE", help="a labelled planessl cache")
    p.add_argument("--nnunet", required=True, metavar="DIR",
                   help="nnU-Net raw folder (e.g. $nnUNet_raw) to write DatasetNNN_Name into")
    p.add_argument("--id", type=int, required=True, metavar="N", help="dataset id, 1-999")
    p.add_argument("--name", default="PlaneSSL", help="dataset name after the id (default: PlaneSSL)")
    p.add_argument("--views", default="sax",
                   help="comma-separated view types whose labelled series are exported (default: sax)")
    p.add_argument("--all-frames", action="store_true",
                   help="every labelled frame, not only ED and ES")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.nnunet.dataset import export_nnunet_dataset

    views = tuple(v.strip() for v in args.views.split(",") if v.strip())
    result = export_nnunet_dataset(args.cache, args.nnunet, args.id, name=args.name,
                                   views=views, all_frames=args.all_frames)
    labels = ", ".join(f"{v}={k}" for k, v in result.labels.items())
    print(f"planessl: wrote {result.folder} ({len(result.cases)} cases; labels {labels}"
          f"{f'; {len(result.skipped)} studies skipped' if result.skipped else ''})")
    return 0
