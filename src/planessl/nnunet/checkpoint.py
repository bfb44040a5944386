"""Pretrained weights in the form nnU-Net's ``-pretrained_weights`` loads.

A pretraining run on an nnU-Net network keeps a copy of its plans and ``dataset.json`` in
``RUN/nnunet/`` (:func:`keep_plans`), so the run folder alone says which network it trained.
:func:`export_nnunet_checkpoint` rebuilds that network with nnU-Net's builder, loads the
run's ``weights.safetensors`` into it (every encoder and decoder weight must fit) and writes
``{'network_weights': state_dict}`` with plain tensors (``torch.save``; nnU-Net reads it with
``torch.load``), leaving out the segmentation layers (``.seg_layers.``), which nnU-Net's
``load_pretrained_weights`` skips and initialises itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from planessl.atomic import atomic_path
from planessl.errors import PlaneSSLError
from planessl.nnunet import require_nnunet
from planessl.nnunet.network import NetworkSpec, build_planned_network, read_plans

PLANS_DIR = "nnunet"
SEG_LAYERS = ".seg_layers."


def keep_plans(spec: NetworkSpec, run_dir: str | Path) -> Path:
    """Copy the plans and dataset.json of ``spec`` into ``RUN/nnunet/``; returns that folder."""
    folder = Path(run_dir) / PLANS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for src, name in ((spec.plans, "plans.json"), (spec.dataset_json, "dataset.json")):
        with atomic_path(folder / name) as tmp:
            shutil.copyfile(src, tmp)
    with atomic_path(folder / "network.json") as tmp:
        tmp.write_text(json.dumps({"plans": str(spec.plans), "configuration": spec.configuration},
                                  indent=1))
    return folder


def run_network_spec(run_dir: str | Path) -> NetworkSpec:
    """The network a run trained: its kept plans copy and configuration."""
    folder = Path(run_dir) / PLANS_DIR
    info = folder / "network.json"
    if not info.is_file():
        raise PlaneSSLError(f"{run_dir}: not a pretraining run on an nnU-Net network (no "
                            f"{PLANS_DIR}/network.json; pretrain with --network nnunet:PLANS.json)")
    try:
        configuration = json.loads(info.read_text())["configuration"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise PlaneSSLError(f"{info}: unreadable ({exc})") from None
    return NetworkSpec(folder / "plans.json", configuration)


def _storage_key(t: torch.Tensor) -> tuple[int, int]:
    return t.untyped_storage().data_ptr(), t.storage_offset()


def nnunet_state_dict(run_dir: str | Path) -> dict[str, torch.Tensor]:
    """The run's encoder and decoder weights as the state dict of the network nnU-Net builds
    from the kept plans, without the segmentation layers (plain CPU tensors)."""
    from planessl.engine import WEIGHTS_FILE, load_weights

    run_dir = Path(run_dir)
    spec = run_network_spec(run_dir)
    require_nnunet("export --nnunet")
    network = build_planned_network(read_plans(spec))
    weights = {k: v for k, v in load_weights(run_dir / WEIGHTS_FILE).items()
               if k.startswith(("encoder.", "decoder."))}
    own = network.state_dict()
    for key, value in weights.items():
        if key in own and own[key].shape != value.shape:
            raise PlaneSSLError(f"{run_dir / WEIGHTS_FILE}: {key} has shape {tuple(value.shape)}, "
                                f"the network of {spec.plans} {tuple(own[key].shape)}")
    result = network.load_state_dict(weights, strict=False)
    if result.unexpected_keys:
        raise PlaneSSLError(f"{run_dir / WEIGHTS_FILE}: weights the network of {spec.plans} does "
                            f"not have: {', '.join(result.unexpected_keys[:5])}")
    # One tensor may have several names (nnU-Net's decoder holds its encoder; a conv block
    # holds its conv both alone and in a Sequential): planessl saved it once, and loading
    # one name fills them all.
    groups: dict[tuple[int, int], set[str]] = {}
    for key, value in own.items():
        groups.setdefault(_storage_key(value), set()).add(key)
    loaded = set(weights)
    missing = [k for k in result.missing_keys
               if SEG_LAYERS not in k and not (groups[_storage_key(own[k])] & loaded)]
    if missing:
        raise PlaneSSLError(f"{run_dir / WEIGHTS_FILE}: no pretrained value for "
                            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()
            if SEG_LAYERS not in k}


def export_nnunet_checkpoint(run_dir: str | Path, out_path: str | Path) -> tuple[Path, int]:
    """Write ``{'network_weights': state_dict}`` for ``nnUNetv2_train ... -pretrained_weights``
    (atomically); returns the path and the number of tensors."""
    state = nnunet_state_dict(run_dir)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        torch.save({"network_weights": state}, tmp)
    return out_path, len(state)
