"""Transfer of pretrained backbone weights into a fine-tuning model, reported key by key.

A pretrained run exports ``weights.safetensors`` whose backbone parameters are named
``<prefix>encoder.*`` / ``<prefix>decoder.*`` (the prefix, e.g. ``backbone.`` or
``model.backbone.``, is found and stripped). What is transferred:

- ``encoder``: the encoder only (the decoder starts from scratch);
- ``encoder+decoder``: encoder and decoder — with the one-1x1-conv heads of planessl this is
  the reference's "everything but the last 1x1 conv", so ``all-but-last`` is the same scope.

Every key is accounted for in the report: ``transferred``, ``missing`` (model keys in the
scope that the source lacks) and ``unexpected`` (source keys not used, e.g. pretext heads).
A key present on both sides with different shapes means another architecture: that is
refused with a :class:`PlaneSSLError`, never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from planessl.errors import PlaneSSLError
from planessl.runinfo import write_text_atomic

SCOPES = {"encoder": ("encoder.",), "encoder+decoder": ("encoder.", "decoder."),
          "all-but-last": ("encoder.", "decoder.")}
WEIGHTS = "weights.safetensors"


def backbone_key(key: str) -> str | None:
    """``encoder.x`` / ``decoder.x`` part of a parameter name, or ``None`` (not backbone)."""
    parts = key.split(".")
    for k, part in enumerate(parts):
        if part in ("encoder", "decoder"):
            return ".".join(parts[k:])
    return None


def load_weights(run_or_file: str | Path) -> tuple[dict[str, torch.Tensor], Path]:
    """The tensors of a run's ``weights.safetensors`` (or of that file itself)."""
    from safetensors.torch import load_file

    path = Path(run_or_file)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise PlaneSSLError(f"{path}: no exported weights (is {path.parent} a finished planessl run?)")
    try:
        return load_file(str(path)), path
    except Exception as exc:  # safetensors raises its own error types
        raise PlaneSSLError(f"{path}: cannot read weights ({exc})") from None


def transfer_backbone(backbone: nn.Module, source: Mapping[str, torch.Tensor],
                      scope: str = "encoder+decoder", source_name: str = "source") -> dict:
    """Copy the ``scope`` parameters of ``source`` into ``backbone`` (an ``UNetBackbone``).

    Returns:
        ``{"scope", "transferred", "missing", "unexpected"}`` with sorted key lists (keys
        named as in the backbone, unexpected keys as in the source).

    Raises:
        PlaneSSLError: unknown scope, no backbone keys in the source, or a shape mismatch.
    """
    if scope not in SCOPES:
        raise PlaneSSLError(f"unknown transfer scope {scope!r}; known: {', '.join(SCOPES)}")
    prefixes = SCOPES[scope]
    by_backbone: dict[str, str] = {}
    for key in source:
        bk = backbone_key(key)
        if bk is not None:
            by_backbone.setdefault(bk, key)
    if not by_backbone:
        raise PlaneSSLError(f"{source_name}: holds no encoder/decoder weights; not a planessl backbone")
    own = backbone.state_dict()
    new_state, transferred, missing, mismatched = {}, [], [], []
    for key, tensor in own.items():
        if not key.startswith(prefixes):
            continue
        if key not in by_backbone:
            missing.append(key)
            continue
        src = source[by_backbone[key]]
        if tuple(src.shape) != tuple(tensor.shape):
            mismatched.append(f"{key} {tuple(src.shape)} vs {tuple(tensor.shape)}")
            continue
        new_state[key] = src.to(tensor.dtype)
        transferred.append(key)
    if mismatched:
        raise PlaneSSLError(f"{source_name}: architecture does not match this model "
                            f"({len(mismatched)} shape mismatches, first: {mismatched[0]} "
                            f"[pretrained vs this]); use the same model.preset/features as the pretraining run")
    used = {by_backbone[k] for k in transferred}
    unexpected = sorted(k for k in source if k not in used)
    backbone.load_state_dict(new_state, strict=False)
    return {"scope": scope, "source": source_name, "transferred": sorted(transferred),
            "missing": sorted(missing), "unexpected": unexpected}


def report_transfer(report: dict, out_dir: str | Path | None = None, echo=print) -> None:
    """Print a summary (counts, then every missing and unexpected key) and save
    ``transfer.json`` into ``out_dir``."""
    echo(f"transfer ({report['scope']}) from {report['source']}: "
         f"{len(report['transferred'])} transferred, {len(report['missing'])} missing, "
         f"{len(report['unexpected'])} unexpected")
    for k in report["missing"]:
        echo(f"  missing (kept as initialised): {k}")
    for k in report["unexpected"]:
        echo(f"  unexpected (not used): {k}")
    if out_dir is not None:
        write_text_atomic(Path(out_dir) / "transfer.json", json.dumps(report, indent=1))
