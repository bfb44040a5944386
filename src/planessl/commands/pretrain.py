"""``planessl pretrain``: train a pretext task on a cache of unlabelled studies."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from planessl.tasks.registry import TASK_NAMES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pretrain a network with a pretext task (lines, slices, multitask or a competing method)",
        description="Pretrain on a cache with a pretext task. Any config key can be set as "
                    "key.sub=value (see planessl.config.PretrainConfig).")
    p.add_argument("--data", nargs="+", default=None, metavar="CACHE",
                   help="cache folder(s), or phantom:N to generate N phantom studies into "
                        "RUN/cache; several caches are mixed, by default in proportion to "
                        "their studies, else by data.cache_weights=[w1,w2,...] (default with "
                        "--resume: the run's own caches)")
    p.add_argument("--task", choices=TASK_NAMES, default=None,
                   help="pretext task: the plane-geometry lines, slices, multitask (default), "
                        "or a competing method: anatomy, simclr, gcl, pcl, rotation, genesis")
    p.add_argument("--network", default=None, metavar="unet|nnunet:PLANS.json[:CONF]",
                   help="backbone: planessl's U-Net (unet, the default, sized by model.preset) "
                        "or the network nnU-Net builds from a plans file "
                        "(nnunet:PLANS.json[:CONFIGURATION], default configuration 2d, with "
                        "dataset.json beside it; input grid and normalisation from the plans; "
                        "needs pip install 'planessl[nnunet]')")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--config", default=None, help="YAML file of config values")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--max-steps", type=int, default=None, help="optimiser steps to train")
    length.add_argument("--epochs", type=int, default=None, help="epochs to train")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out exactly from its last checkpoint")
    p.add_argument("--devices", default=None, help="devices (processes) per node, or auto")
    p.add_argument("--num-nodes", type=int, default=None, help="machines (DDP)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=run)


def resolve_data(spec: str, out_dir: Path, seed: int) -> Path:
    """The cache folder of ``--data`` (generating phantoms for ``phantom:N``)."""
    from planessl.errors import PlaneSSLError

    if not spec.startswith("phantom:"):
        return Path(spec)
    try:
        n = int(spec.split(":", 1)[1])
        if n < 1:
            raise ValueError
    except ValueError:
        raise PlaneSSLError(f"--data {spec}: expected phantom:N with N a positive number") from None
    cache_dir = out_dir / "cache"
    from planessl.cache import Cache, MANIFEST
    if (cache_dir / MANIFEST).is_file() and len(Cache(cache_dir)) == n:
        return cache_dir
    try:
        from planessl.phantom import make_study
    except ImportError:
        raise PlaneSSLError("--data phantom:N needs planessl.phantom, which this "
                            "installation lacks") from None
    from planessl.cache import rebuild_manifest, write_study
    for k in range(n):
        write_study(cache_dir, make_study(seed=seed, index=k))
    rebuild_manifest(cache_dir)
    return cache_dir


OVERRIDE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*=")


def split_data_args(items: list[str]) -> tuple[list[str], list[str]]:
    """``--data`` entries as (caches, key=value overrides): ``--data A B optim.lr=0.1``
    would otherwise swallow the overrides that follow it (an existing path stays a cache)."""
    caches, overrides = [], []
    for item in items:
        (overrides if OVERRIDE.match(item) and not Path(item).exists() else caches).append(item)
    return caches, overrides


def resolve_caches(specs: list[str], out_dir: Path, seed: int) -> list[Path]:
    """The cache folders of ``--data`` entries (at most one ``phantom:N``)."""
    from planessl.errors import PlaneSSLError

    if sum(s.startswith("phantom:") for s in specs) > 1:
        raise PlaneSSLError("--data: at most one phantom:N (it is generated into RUN/cache)")
    return [resolve_data(s, out_dir, seed) for s in specs]


def run(args: argparse.Namespace) -> int:
    from planessl.config import PretrainConfig, load_config
    from planessl.errors import PlaneSSLError

    out_dir = Path(args.out)
    data, extra = split_data_args(list(args.data or []))
    overrides = extra + list(args.overrides)
    if args.task:
        overrides.append(f"task.name={args.task}")
    if args.network:
        from planessl.nnunet.network import is_nnunet, parse_network, read_plans
        if is_nnunet(args.network):
            read_plans(args.network)  # the extra is installed and the plans are usable
            overrides.append(f"model.network={parse_network(args.network)}")
        else:
            overrides.append(f"model.network={args.network}")
    if args.max_steps is not None:
        overrides += [f"trainer.max_steps={args.max_steps}", "trainer.max_epochs=-1"]
    if args.epochs is not None:
        overrides += [f"trainer.max_epochs={args.epochs}", "trainer.max_steps=-1"]
    if args.devices is not None:
        overrides.append(f"trainer.devices={args.devices}")
    if args.num_nodes is not None:
        overrides.append(f"trainer.num_nodes={args.num_nodes}")
    base = None
    if args.resume and (out_dir / "config.yaml").is_file():
        base = out_dir / "config.yaml"  # the run's own settings, then the new ones
    cfg = load_config(PretrainConfig, base, [])
    if args.config:
        cfg = load_config(PretrainConfig, args.config, []) if base is None else cfg
        if base is not None:
            from planessl.config import _merge
            import yaml
            _merge(cfg, yaml.safe_load(Path(args.config).read_text()) or {})
    from planessl.config import apply_overrides
    apply_overrides(cfg, overrides)
    if not args.resume and (out_dir / "checkpoints").is_dir() and any((out_dir / "checkpoints").iterdir()):
        raise PlaneSSLError(f"{out_dir}: already holds a run; use --resume to continue it "
                            f"or choose another --out")
    if data:
        caches = resolve_caches(data, out_dir, cfg.seed)
        saved = [Path(c).resolve() for c in cfg.data.caches]
        if base is not None and saved and saved != [c.resolve() for c in caches]:
            raise PlaneSSLError(f"{out_dir} was trained on {', '.join(map(str, saved))}; "
                                f"--data gives {', '.join(str(c) for c in caches)} (resume with "
                                f"the same caches, or without --data)")
    elif cfg.data.caches:
        caches = [Path(c) for c in cfg.data.caches]
    else:
        raise PlaneSSLError("--data is required (a cache folder, several, or phantom:N)")
    if base is None:  # a resumed run keeps its own resolved settings
        from planessl.finetune_defaults import given_keys
        from planessl.pretrain_defaults import pretrain_defaults
        from planessl.pretraining import open_caches

        for note in pretrain_defaults(cfg, open_caches(caches, cfg),
                                      given_keys(overrides, args.config)):
            print(f"from the cache: {note}")
    from planessl.pretraining import run_pretraining
    run_pretraining(cfg, caches, out_dir, resume=args.resume, command=sys.argv)
    print(f"planessl: pretraining done; weights in {out_dir / 'weights.safetensors'}")
    return 0
