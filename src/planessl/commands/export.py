"""``planessl export RUN --nnunet OUT.pth``: a pretraining run's weights for another tool."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="write a pretraining run's weights for nnU-Net (-pretrained_weights)",
        description="Write the weights of a pretraining run in another tool's form. The run's "
                    "own RUN/weights.safetensors stays what planessl's fine-tuning loads.")
    p.add_argument("run", metavar="RUN", help="pretraining run folder (planessl pretrain --out)")
    p.add_argument("--nnunet", required=True, metavar="OUT.pth",
                   help="nnU-Net checkpoint {'network_weights': state_dict} for nnUNetv2_train "
                        "... -pretrained_weights OUT.pth: every encoder and decoder weight of a "
                        "run pretrained with --network nnunet:PLANS.json (segmentation layers "
                        "left to nnU-Net); needs pip install 'planessl[nnunet]'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.nnunet.checkpoint import export_nnunet_checkpoint

    path, n = export_nnunet_checkpoint(args.run, args.nnunet)
    print(f"planessl: wrote {path}: {n} encoder/decoder tensors for nnUNetv2_train ... "
          f"-pretrained_weights {path}")
    return 0
