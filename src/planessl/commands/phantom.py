"""``planessl phantom``: write synthetic multi-view cine CMR subjects to disk.

Deterministic for a seed: subject ``k`` depends only on ``(seed, k)``, whatever the number
of workers. Each subject is written to a hidden temporary folder and renamed when complete,
so an interrupted run leaves no half-written subject; running the same command again
completes it (subjects already present are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
from pathlib import Path

from planessl.errors import PlaneSSLError

FORMATS = ("dicom", "ukbb", "acdc")
PRESET_NAMES = ("small", "full")
RUN_FILE = "phantom_run.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "phantom", help="write synthetic multi-view cardiac MR subjects",
        description="Write synthetic cine cardiac MR subjects (SAX stack, 2CH, 3CH, 4CH, "
                    "labels; with --localizers also their localizers) as DICOM (Kaggle DSB "
                    "layout), UK Biobank NIfTI or ACDC.")
    p.add_argument("--subjects", type=int, required=True, help="number of subjects")
    p.add_argument("--format", default="dicom", help="dicom | ukbb | acdc (default dicom)")
    p.add_argument("--out", required=True, help="output folder (new, empty, or an earlier "
                                                "run of the same command to complete)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--preset", default="small", help="small (fast, 128 px, 8 frames) | full "
                                                     "(realistic cine, 25 frames)")
    p.add_argument("--frames", type=int, default=None, help="frames per cycle (default: preset)")
    p.add_argument("--breath-hold-mm", type=float, default=0.0,
                   help="sd of breath-hold misregistration between series, mm (default 0)")
    p.add_argument("--localizers", action="store_true",
                   help="also write the localizers acquired before the cines: pseudo-2CH and "
                        "pseudo-4CH single slices and a SAX localizer stack (single frame, "
                        "thick slices, larger planning errors; views loc_2ch, loc_4ch, loc_sax; "
                        "DICOM only). The cines are the same with or without them")
    p.add_argument("--vendor", default=None, choices=("siemens", "ge", "philips"),
                   help="name, number and time the series as that vendor's exam and store it "
                        "as an anonymised export (DICOM only): localizers first (Siemens "
                        "trufi_2-chamber/4-chamber/short-axis, thinner than the cines; GE "
                        "FIESTA; Philips sBTFE/Survey), cines after them (Siemens TF Cine "
                        "Retro_iPAT 4C/2C/LVOT/SAO; GE FIESTA CINE; Philips BTFE_BH), blank "
                        "Study/Series/SOP/FrameOfReference UIDs, folders <subject>/"
                        "<PatientName>/<StudyDate>/Series0003_<description>/, files without "
                        "extension")
    p.add_argument("--anatomy", default="cardiac",
                   help="cardiac (default) | knee: knee exams (sagittal, coronal, axial "
                        "proton-density fat-suppressed stacks; targets abnormal, acl, meniscus, "
                        "effusion rendered as lesions) as --format dicom (one series per "
                        "stack, BodyPartExamined KNEE, Laterality), nifti (one file per stack "
                        "+ phantom.json) or mrnet (NNNN.npy + label CSVs, no geometry)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> dict:
    anatomy = getattr(args, "anatomy", "cardiac")
    if anatomy not in ("cardiac", "knee"):
        raise PlaneSSLError(f"unknown --anatomy {anatomy!r}; choose cardiac or knee")
    if anatomy == "knee":
        from planessl.phantom.writers import KNEE_FORMATS

        if args.format not in KNEE_FORMATS:
            raise PlaneSSLError(f"knee phantoms are written as {', '.join(KNEE_FORMATS)}, not "
                                f"--format {args.format}")
        if getattr(args, "localizers", False):
            raise PlaneSSLError("--localizers are cardiac; knee phantoms have none")
        if getattr(args, "vendor", None):
            raise PlaneSSLError("--vendor names cardiac series; knee phantoms have their own")
        if args.subjects < 0 or args.workers < 1 or args.preset not in PRESET_NAMES:
            raise PlaneSSLError("--subjects must be >= 0, --workers >= 1, --preset small|full")
        return {"subjects": args.subjects, "format": args.format, "seed": args.seed,
                "preset": args.preset, "frames": None, "breath_hold_mm": 0.0,
                "anatomy": "knee"}
    if args.subjects < 0:
        raise PlaneSSLError(f"--subjects must be 0 or more, got {args.subjects}")
    if args.format not in FORMATS:
        raise PlaneSSLError(f"unknown --format {args.format!r}; choose one of "
                            f"{', '.join(FORMATS)}")
    if args.preset not in PRESET_NAMES:
        raise PlaneSSLError(f"unknown --preset {args.preset!r}; choose one of "
                            f"{', '.join(PRESET_NAMES)}")
    if args.workers < 1:
        raise PlaneSSLError(f"--workers must be 1 or more, got {args.workers}")
    if args.frames is not None and args.frames < 2:
        raise PlaneSSLError(f"--frames must be 2 or more, got {args.frames}")
    if args.breath_hold_mm < 0:
        raise PlaneSSLError(f"--breath-hold-mm must be 0 or more, got {args.breath_hold_mm}")
    localizers = bool(getattr(args, "localizers", False))
    if localizers and args.format != "dicom":
        raise PlaneSSLError(f"--localizers are written as DICOM only, not --format "
                            f"{args.format}")
    config = {"subjects": args.subjects, "format": args.format, "seed": args.seed,
              "preset": args.preset, "frames": args.frames,
              "breath_hold_mm": args.breath_hold_mm}
    if localizers:  # only when asked: run files of runs without them stay as they were
        config["localizers"] = True
    vendor = getattr(args, "vendor", None)
    if vendor:
        if args.format != "dicom":
            raise PlaneSSLError(f"--vendor names DICOM series; not for --format {args.format}")
        config["vendor"] = vendor
    return config


def _names(config: dict) -> list[str]:
    from planessl.phantom.knee import knee_study_id
    from planessl.phantom.subject import study_id

    if config.get("anatomy") == "knee":
        if config["format"] == "mrnet":
            return ["train", "train-abnormal.csv", "train-acl.csv", "train-meniscus.csv"]
        return [knee_study_id(config["seed"], k) for k in range(config["subjects"])]
    if config["format"] == "acdc":
        return [f"patient{k + 1:03d}" for k in range(config["subjects"])]
    return [study_id(config["seed"], k) for k in range(config["subjects"])]


def _prepare_out(out: Path, config: dict) -> set[str]:
    """Check the output folder; returns the subjects already complete in it."""
    if out.exists() and not out.is_dir():
        raise PlaneSSLError(f"{out}: exists and is not a folder")
    if not out.exists():
        out.mkdir(parents=True)
        return set()
    entries = {p.name for p in out.iterdir()}
    if not entries:
        return set()
    run_file = out / RUN_FILE
    previous = None
    if run_file.exists():
        try:
            previous = json.loads(run_file.read_text()).get("config")
        except (OSError, ValueError):
            previous = None
    same = previous is not None and all(previous.get(k) == config[k] for k in
                                        ("format", "seed", "preset", "frames", "breath_hold_mm")) \
        and previous.get("localizers", False) == config.get("localizers", False) \
        and previous.get("vendor") == config.get("vendor") \
        and previous.get("anatomy", "cardiac") == config.get("anatomy", "cardiac")
    if not same:
        raise PlaneSSLError(f"{out}: output folder is not empty and holds no earlier run of "
                            f"this command with the same format, seed and preset; choose a "
                            f"new or empty folder")
    names = set(_names(config))
    foreign = sorted(e for e in entries if e not in names and e != RUN_FILE
                     and not e.startswith(".tmp-") and not _is_knee_table(e, config))
    if foreign:
        raise PlaneSSLError(f"{out}: output folder holds other files ({', '.join(foreign[:3])}"
                            f"{' ...' if len(foreign) > 3 else ''}); choose a new or empty "
                            f"folder")
    for e in entries:  # leftovers of an interrupted run
        if e.startswith(".tmp-"):
            shutil.rmtree(out / e, ignore_errors=True)
    return names & entries


def _is_knee_table(name: str, config: dict) -> bool:
    """The labels table of a knee run (rewritten at the end of every run)."""
    from planessl.phantom.writers import KNEE_LABELS_FILE

    return config.get("anatomy") == "knee" and name == KNEE_LABELS_FILE


def _write_one(job: tuple[int, dict, str]) -> str:
    from planessl.phantom.subject import make_study, subject_info
    from planessl.phantom.writers import write_subject

    index, config, out = job
    if config.get("anatomy") == "knee":
        from planessl.phantom.knee import make_knee_study

        study = make_knee_study(config["seed"], index, config["preset"])
        return write_subject(study, out, config["format"], index).name
    study = make_study(config["seed"], index, config["preset"], frames=config["frames"],
                       breath_hold_mm=config["breath_hold_mm"],
                       localizers=config.get("localizers", False))
    path = write_subject(study, out, config["format"], index, subject_info(config["seed"], index),
                         vendor=config.get("vendor"))
    return path.name


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("planessl", "numpy", "scipy", "pydicom", "nibabel"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def run(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    config = _check(args)
    out = Path(args.out)
    done = _prepare_out(out, config)
    tmp = out / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps({"config": config, "versions": _versions()}, indent=1) + "\n")
    os.replace(tmp, out / RUN_FILE)
    if config.get("anatomy") == "knee" and config["format"] == "mrnet":
        from planessl.phantom.knee import make_knee_study
        from planessl.phantom.writers import write_mrnet

        if done:  # MRNet files are numbered across the run: written in one go
            shutil.rmtree(out / "train", ignore_errors=True)
        write_mrnet([make_knee_study(config["seed"], k, config["preset"])
                     for k in range(config["subjects"])], out)
        print(f"{config['subjects']} knee exams written in the MRNet layout in {out}")
        return 0
    names = _names(config)
    todo = [k for k in range(config["subjects"]) if names[k] not in done]
    jobs = [(k, config, str(out)) for k in todo]
    bar = tqdm(total=len(jobs), desc="phantom", unit="subject")
    if args.workers == 1 or len(jobs) <= 1:
        for job in jobs:
            _write_one(job)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for _ in pool.map(_write_one, jobs):
                bar.update(1)
    bar.close()
    print(f"{len(jobs)} subjects written, {len(done)} already present, in {out}")
    if config.get("anatomy") == "knee":
        from planessl.phantom.writers import write_knee_labels

        table = write_knee_labels(out, names)
        print(f"exam-level targets of the {len(names)} exams in {table} (for `planessl "
              f"ingest {out} --labels {table}`)")
    return 0
