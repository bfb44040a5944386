"""``planessl ingest SRC... --out CACHE``: dataset folders in, a PHI-free cache out."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from planessl.ingest import FORMATS

    formats = "\n".join(f"  {k:<8} {f.description}" for k, f in FORMATS.items())
    p = subparsers.add_parser(
        "ingest", help="read DICOM / NIfTI / HDF5 / npy datasets into a planessl cache",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read studies from files or folders into a PHI-free cache that training "
                    "reads. Studies already cached and unchanged are skipped; an interrupted "
                    "ingest can simply be run again.\n\nformats:\n  auto     detect per source "
                    "(default)\n" + formats)
    p.add_argument("sources", nargs="+", metavar="SRC", help="files or folders to read")
    p.add_argument("--out", required=True, metavar="CACHE", help="cache folder (created)")
    p.add_argument("--labels", metavar="CSV", default=None,
                   help="exam-level targets (e.g. columns abnormal, acl, meniscus: integers or "
                        "yes/no) from a table with a header row. The key column is the first "
                        "column named source_key (as --keys writes), cache_id, "
                        "StudyInstanceUID, PatientID, AccessionNumber or folder (a folder "
                        "holding the exam's files, or its name in its layout: ACDC patientNNN, "
                        "MRNet exam number, NIfTI file-name prefix); with none of these names, "
                        "the first column, compared with all of them. A row is used when it "
                        "matches exactly one exam; rows matching no exam (or several) and "
                        "cached exams without a row are listed. Optional column laterality "
                        "(L/R). Give it on every ingest into the cache: without it, changed "
                        "studies are rewritten without targets")
    p.add_argument("--format", default="auto", choices=["auto", *FORMATS], dest="fmt")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="parallel processes (default: min(4, CPUs))")
    p.add_argument("--salt", default=os.environ.get("PLANESSL_SALT"),
                   help="secret salt for the opaque study ids (default: PLANESSL_SALT or "
                        "the public salt)")
    p.add_argument("--force", action="store_true", help="rewrite unchanged studies too")
    p.add_argument("--assume-spacing", type=float, default=None, metavar="MM",
                   help="pixel spacing (mm) to assume where the source has none (ACDC HDF5; "
                        "default: a 1 mm placeholder); use --force to change it in a cache")
    p.add_argument("--keys", metavar="FILE", default=None,
                   help="also write the CSV table source_key,cache_id (each cached study's "
                        "key in its source, e.g. its StudyInstanceUID, and its opaque id; and "
                        "file:PATH,file-ID for each skipped or warned file, which the cache "
                        "names by id only) to FILE, which must lie outside the cache: keep "
                        "it with your own records")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planessl.ingest import check_key_table_path, ingest, write_key_table

    keys = check_key_table_path(args.keys, args.out) if args.keys else None
    report = ingest(args.sources, args.out, fmt=args.fmt, labels=args.labels,
                    workers=args.workers,
                    salt=args.salt, progress=False if args.no_progress else None,
                    force=args.force, assume_spacing_mm=args.assume_spacing)
    print(report.table())
    if keys is not None:
        files = {f"file:{path}": fid for path, fid in report.file_ids.items()}
        write_key_table(keys, {**report.keys, **files})
        more = f" and {len(files)} skipped file(s) -> file id" if files else ""
        print(f"keys: {len(report.keys)} source key(s) -> cache id{more} written to {keys}")
    if not report.cached:
        print(f"planessl: error: {report.nothing_cached()}", file=sys.stderr)
        return 1
    return 0
