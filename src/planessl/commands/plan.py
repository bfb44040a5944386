"""``planessl plan``: propose the standard views' planes from lines on input images."""

from __future__ import annotations

import argparse
import json

from planessl.geometry import DEFAULT_PARALLEL_TOLERANCE_DEG


def _views(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def register(sub) -> None:
    p = sub.add_parser(
        "plan", help="propose the target views' planes (2CH, 3CH, 4CH, SAX) from localizers",
        description="View planning. On every input image (the study's localizer series, "
                    "views loc_*, or the views given by --inputs) get each target view's line "
                    "(predicted by a `planessl pretrain --task lines` model, or with --oracle "
                    "the true line of the acquired target plane), lift the lines into 3D and "
                    "fit each target plane to them by least squares. Prints the proposed "
                    "plane as DICOM ImagePositionPatient / ImageOrientationPatient and, when "
                    "the study holds that view, the angle (deg) and distance (mm, from the "
                    "acquired view's centre) to the acquired plane. A target whose lines do "
                    "not determine a plane is reported, not guessed.")
    p.add_argument("study", metavar="STUDY",
                   help="a planessl cache (with --study ID unless it holds one study), or a "
                        "DICOM / NIfTI folder of one study (any layout `planessl ingest` reads)")
    p.add_argument("--study", dest="study_id", metavar="ID", help="study id in the cache")
    p.add_argument("--model", metavar="RUN", help="a `planessl pretrain` run folder with line "
                                                   "heads (task lines or multitask); default: "
                                                   "the small planning model shipped with "
                                                   "planessl, trained on phantom exams")
    p.add_argument("--oracle", action="store_true",
                   help="use the true lines of the acquired target planes (checks lifting and "
                        "fitting on real headers; the upper bound of a model)")
    p.add_argument("--inputs", type=_views, metavar="VIEW[,VIEW...]",
                   help="input view types or series names (default: the localizer series, "
                        "views loc_*); e.g. --inputs sax plans the long-axis views from the "
                        "SAX stack")
    p.add_argument("--targets", type=_views, metavar="VIEW[,VIEW...]",
                   help="target views (default: the model's line channels; with --oracle the "
                        "views among 2ch,3ch,4ch,sax that the study holds beside the inputs)")
    p.add_argument("--png", metavar="OUT.png", help="draw the proposed lines on the input images")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--min-spread", type=float, default=None, metavar="MM",
                   help="refuse lines that lie within this rms distance (mm) of one line in "
                        "space (default 10)")
    p.add_argument("--max-residual", type=float, default=None, metavar="MM",
                   help="refuse lines farther than this rms distance (mm) from the best plane "
                        "(they do not lie in one plane; default 10; 0: no limit)")
    p.add_argument("--outlier-rms", type=float, default=None, metavar="MM",
                   help="while the lines lie farther than this rms distance (mm) from their "
                        "plane, drop the worst line if the rest still determine a plane "
                        "(reported; default 5; 0: keep every line)")
    p.add_argument("--min-support", type=float, default=None, metavar="SHARE",
                   help="refuse a plane unless this share of the input series it crosses back "
                        "it, a series backing it with lines on this share of the images the "
                        "plane crosses (default 0.5; 0: off)")
    p.add_argument("--no-tta", dest="tta", action="store_false",
                   help="model: predict each input image once (default: average the heatmaps "
                        "of the image turned by 0 and +-10 deg, each also mirrored)")
    p.add_argument("--line-weights", choices=("auto", "equal", "calibrated"), default="auto",
                   help="weights of the lines in the plane fit: 1/sigma^2 per (target, input "
                        "view) from the model's line calibration (`planessl plan-calibrate`; "
                        "the shipped model has one), `equal`, or `auto` (default: calibrated "
                        "where the model has a calibration for every input view, else equal)")
    p.add_argument("--balance-series", action="store_true",
                   help="each input series counts once in the fit (its lines share its weight)")
    p.add_argument("--min-peak", type=float, default=None, metavar="P",
                   help="model heatmap peak below which an image holds no line (default 0.5)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_PARALLEL_TOLERANCE_DEG,
                   metavar="DEG", help="--oracle: images closer than this angle to the target "
                                       "are parallel (default %(default)s degrees)")
    p.add_argument("--device", default="cpu", help="torch device of the model (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.errors import PlaneSSLError
    from planessl.planning.fit import (DEFAULT_MAX_RESIDUAL_RMS_MM, DEFAULT_MIN_SPREAD_MM,
                                       DEFAULT_OUTLIER_RMS_MM)
    from planessl.planning.plan import (DEFAULT_MIN_SUPPORT, format_result, open_study, plan,
                                        plot_plan)

    if args.oracle and args.model:
        raise PlaneSSLError("give either --model or --oracle, not both")
    if args.min_support is not None and not 0 <= args.min_support <= 1:
        raise PlaneSSLError(f"--min-support must be between 0 and 1, got {args.min_support}")
    model = None
    if not args.oracle:
        import sys

        from planessl.planning.model import DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAME, LineModel

        if args.model:
            model = LineModel(args.model, device=args.device)
            if model.calibration is None and args.line_weights == "auto":
                print(f"{args.model}: no line calibration, so the lines weigh equally; "
                      f"`planessl plan-calibrate --model {args.model} VALIDATION_STUDIES` "
                      f"measures one", file=sys.stderr)
        else:
            model = LineModel.default(device=args.device)
            print(f"no --model: using {DEFAULT_MODEL_NAME} ({DEFAULT_MODEL_DIR}); "
                  f"benchmarks/results/plan_phantom/README.md says how it was made and how "
                  f"well it plans", file=sys.stderr)
    import sys

    study, source = open_study(args.study, args.study_id,
                               echo=lambda line: print(line, file=sys.stderr))
    spread = DEFAULT_MIN_SPREAD_MM if args.min_spread is None else args.min_spread
    result = plan(study, source, inputs=args.inputs, model=model, oracle=args.oracle,
                  targets=args.targets, min_spread_mm=spread,
                  max_residual_rms_mm=(DEFAULT_MAX_RESIDUAL_RMS_MM if args.max_residual is None
                                   else args.max_residual or None),
                  min_peak=args.min_peak, tolerance_deg=args.tolerance,
                  tta=args.tta, line_weights=args.line_weights,
                  balance_series=args.balance_series,
                  min_support=DEFAULT_MIN_SUPPORT if args.min_support is None else args.min_support,
                  outlier_rms_mm=(DEFAULT_OUTLIER_RMS_MM if args.outlier_rms is None
                                  else args.outlier_rms or None))
    if args.png:
        plot_plan(result, args.png)
    if args.json:
        out = result.to_dict()
        if args.png:
            out["png"] = str(args.png)
        print(json.dumps(out, indent=2))
    else:
        print(format_result(result))
        if args.png:
            print(f"\nwrote {args.png}")
    return 0
