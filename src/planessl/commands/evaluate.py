"""``planessl evaluate``: metrics of a prediction folder against a cache's labels."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score predictions against the truth",
                       description="Dice, 95%% Hausdorff distance and ASSD per structure and phase "
                                   "(mm when the spacing is known, pixels when not), or accuracy "
                                   "and ROC AUC for classification (per label for a "
                                   "multi-label model, e.g. abnormal / ACL / meniscus).")
    p.add_argument("--pred", required=True, metavar="DIR", help="output of `planessl predict`")
    p.add_argument("--truth", required=True, metavar="CACHE", help="the cache predicted from")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where evaluation.csv/json go (default: the prediction folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from planessl.evaluation.evaluate import (evaluate_classification, evaluate_segmentation,
                                              format_label_table, format_table, read_index,
                                              write_results)

    index = read_index(Path(args.pred))
    out = Path(args.out or args.pred)
    if index.get("task") == "classification":
        rows, summary = evaluate_classification(args.pred, args.truth)
        if summary.get("labels"):
            print(format_label_table(summary))
        print(f"accuracy {summary['accuracy']:.3f}  ROC AUC {summary['auc']:.3f}  "
              f"({summary['n_studies']} studies"
              + (", means over the labels" if summary.get("labels") else "") + ")")
    else:
        rows, summary = evaluate_segmentation(args.pred, args.truth)
        print(format_table(summary))
        print(f"{summary['n_volumes']} volumes; distances in {'/'.join(summary['units'])}")
    write_results(rows, summary, out)
    print(f"wrote {out / 'evaluation.csv'} and {out / 'evaluation.json'}")
    return 0
