"""``planessl finetune``: fine-tune a pretrained (or fresh) backbone with N labelled studies."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune on a target task with N labelled studies",
                       description="Fine-tune for segmentation or classification with N labelled "
                                   "studies chosen reproducibly from the labelled pool of CACHE.")
    p.add_argument("--task", choices=("segmentation", "classification"), default="segmentation")
    p.add_argument("--data", required=True, metavar="CACHE", help="planessl cache with labels")
    p.add_argument("--labelled", required=True, type=int, metavar="N",
                   help="number of labelled training studies")
    p.add_argument("--init", required=True, metavar="RUN|scratch",
                   help="pretraining run folder (weights.safetensors) or 'scratch'")
    p.add_argument("--out", required=True, metavar="RUN2", help="output run folder")
    p.add_argument("--seed", type=int, default=None, help="seed (choice of the N studies, init)")
    p.add_argument("--config", default=None, metavar="YAML", help="configuration file")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN2 from its last checkpoint (same arguments required; "
                        "exact for finetune.semi=fixmatch|bcp)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="configuration overrides, e.g. finetune.steps=300 finetune.transfer=encoder "
                        "finetune.semi=fixmatch finetune.unlabelled=pool")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.finetune import finetune

    overrides = [f"finetune.task={args.task}"] + list(args.overrides)
    finetune(args.data, args.labelled, args.init, args.out, overrides, seed=args.seed,
             config_file=args.config, resume=args.resume)
    return 0
