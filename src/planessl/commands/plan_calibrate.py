"""``planessl plan-calibrate``: measure a line model's line errors per (target view, input view)
on studies that hold the acquired target views, the weights of ``planessl plan``'s fit."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "plan-calibrate",
        help="measure how far a planning model's lines lie from the truth (the fit's weights)",
        description="Run a line model on studies that hold the acquired target views (2CH, "
                    "3CH, 4CH, SAX) beside the input images, measure how far its lines of each "
                    "target on each input view lie from the acquired target plane (sigma, mm: "
                    "1.4826 x the median rms distance over the line's segment) and write them "
                    "to line_calibration.json in the run folder (or --out). `planessl plan` "
                    "then weighs each line by 1/sigma^2. Use studies the model was not trained "
                    "on (e.g. its validation split).")
    p.add_argument("studies", nargs="+", metavar="STUDY",
                   help="a planessl cache (all its studies, or --ids), or a DICOM / NIfTI folder "
                        "of one study")
    p.add_argument("--model", required=True, metavar="RUN",
                   help="a `planessl pretrain` run folder with line heads")
    p.add_argument("--ids", nargs="+", metavar="ID", help="study ids of the cache(s) to use")
    p.add_argument("--inputs", type=lambda t: [v for v in t.split(",") if v], metavar="VIEW[,...]",
                   help="input view types or series names (default: the localizer series)")
    p.add_argument("--out", metavar="FOLDER", help="write the calibration here instead of RUN")
    p.add_argument("--no-tta", dest="tta", action="store_false",
                   help="predict each image once (calibrate as you will plan)")
    p.add_argument("--json", action="store_true", help="print the calibration as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from planessl.cache import MANIFEST, Cache
    from planessl.errors import PlaneSSLError
    from planessl.planning.calibration import calibrate
    from planessl.planning.model import LineModel
    from planessl.planning.plan import open_study, plan

    model = LineModel(args.model)

    unseen = set(args.ids or ())

    def studies():
        for path in args.studies:
            p = Path(path)
            if p.is_dir() and (p / MANIFEST).is_file():
                cache = Cache(p)
                have = set(cache.ids)
                ids = cache.ids if args.ids is None else [i for i in args.ids if i in have]
                unseen.difference_update(ids)
                for sid in ids:
                    yield lambda c=cache, s=sid: (c.load(s), f"cache {p}, study {s}")
            else:
                yield lambda q=p: open_study(q)

    def results():
        for load in studies():
            try:
                study, source = load()
                yield plan(study, source, inputs=args.inputs, model=model, tta=args.tta,
                           line_weights="equal")
            except PlaneSSLError as exc:  # one bad study does not stop the rest
                print(f"planessl: skipped: {exc}", file=sys.stderr)

    cal = calibrate(results(), source=", ".join(args.studies))
    if unseen:
        print(f"planessl: --ids {', '.join(sorted(unseen))}: in none of the given caches",
              file=sys.stderr)
    path = cal.save(Path(args.out) if args.out else model.run)
    if args.json:
        print(json.dumps(cal.to_dict(), indent=2))
        return 0
    print(f"line calibration of {model.name} on {cal.studies} studies -> {path}")
    print(f"{'target':<8}{'input view':<14}{'lines':>7}{'sigma (mm)':>12}")
    for target, by in cal.sigma_mm.items():
        for view, s in by.items():
            print(f"{target:<8}{view:<14}{cal.n_lines[target][view]:>7}{s:>12.2f}")
    return 0
