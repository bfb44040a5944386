"""``planessl predict``: label maps (or class probabilities) from a fine-tuned model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict with a fine-tuned model",
                       description="Segment the SAX volumes of a cache, or source images "
                                   "(DICOM series, NIfTI volumes), into .nii.gz label maps in "
                                   "each input's voxel grid, or classify studies.")
    p.add_argument("--model", required=True, metavar="RUN2", help="fine-tuned run folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", nargs="+", metavar="CACHE|FILES",
                     help="a planessl cache folder, or NIfTI files")
    src.add_argument("--input", nargs="+", metavar="FILES|FOLDERS",
                     help="source images: DICOM series (files or folders, any layout) and "
                          "NIfTI volumes; each label map is named <input>_pred.nii.gz after "
                          "the NIfTI file, the series folder or its SeriesDescription")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--subset", choices=("all", "test", "val", "train"), default="all",
                   help="cache studies to predict: all, or a role of the model's split.json")
    p.add_argument("--frames", choices=("edes", "labelled", "all"), default="edes",
                   help="frames of each cache series (edes: ED and ES when known, else all); "
                        "source images are predicted on every frame")
    p.add_argument("--lcc", action="store_true",
                   help="keep the largest connected component of each structure")
    p.add_argument("--dicom-seg", action="store_true",
                   help="with --input: also write a DICOM Segmentation object per DICOM "
                        "series (needs highdicom), for viewers such as 3D Slicer and OHIF")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.errors import PlaneSSLError
    from planessl.predict import predict_cache, predict_files

    if args.input:
        entries = predict_files(args.model, args.input, args.out, args.lcc, args.dicom_seg)
        if not entries:
            raise PlaneSSLError(f"no input could be predicted (each was skipped above); "
                                f"{args.out} holds no label map")
        return 0
    if args.dicom_seg:
        raise PlaneSSLError("--dicom-seg needs --input (DICOM source images)")
    data = [Path(d) for d in args.data]
    if len(data) == 1 and data[0].is_dir():
        ids = None
        if args.subset != "all":
            split = Path(args.model) / "split.json"
            if not split.is_file():
                raise PlaneSSLError(f"{args.model}: no split.json for --subset {args.subset}")
            ids = json.loads(split.read_text())[args.subset]
        predict_cache(args.model, data[0], args.out, ids, args.frames, args.lcc)
        return 0
    dirs = [str(d) for d in data if d.is_dir()]
    if dirs:
        raise PlaneSSLError(f"--data takes one cache folder or NIfTI files, not both ({dirs[0]}); "
                            f"--input takes source folders")
    predict_files(args.model, data, args.out, args.lcc)
    return 0
