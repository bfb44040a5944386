"""``planessl lines A B`` and ``planessl show-lines IMG ...``: intersection lines of image planes.

Images are given as ``PATH[:K]`` (DICOM or NIfTI; see :mod:`planessl.io.imagespec`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from planessl.errors import PlaneSSLError
from planessl.geometry import DEFAULT_PARALLEL_TOLERANCE_DEG

SPEC_HELP = ("DICOM file, or NIfTI file with an optional :K slice suffix (sa_ED.nii.gz:5); "
             "for a 4D cine frame 0 of the slice is used; :K picks the frame of a "
             "multi-frame DICOM")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lines", help="line where plane B cuts image A, in A's pixels",
        description="Print the line where the plane of image B cuts image A, in A's pixel "
                    "indices: a*i + b*j + c = 0 (a^2 + b^2 = 1, i = row, j = column), the two "
                    "points where it crosses A's field of view, and the angle between the "
                    "planes; or say that the planes are parallel.")
    p.add_argument("a", metavar="A", help="the image to draw on: " + SPEC_HELP)
    p.add_argument("b", metavar="B", help="the cutting image: " + SPEC_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--png", metavar="FILE", help="also draw the line on A's image")
    _common(p)
    p.set_defaults(func=run_lines)

    s = subparsers.add_parser(
        "show-lines", help="draw every image's line on every other image (one PNG)",
        description="For a set of images of one study, draw on each image the lines of all "
                    "the others (one panel per image, one colour per image) and print the "
                    "table of lines. The first thing to run to trust the geometry.")
    s.add_argument("images", metavar="IMG", nargs="+", help=SPEC_HELP)
    s.add_argument("--out", required=True, metavar="FILE.png", help="PNG to write")
    s.add_argument("--titles", metavar="T1,T2,...",
                   help="comma-separated panel titles, one per image (default: the specs)")
    s.add_argument("--json", action="store_true", help="print the table as JSON")
    _common(s)
    s.set_defaults(func=run_show_lines)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tolerance", type=float, default=DEFAULT_PARALLEL_TOLERANCE_DEG,
                   metavar="DEG", help="planes closer than this angle are parallel "
                                       "(default %(default)s degrees)")
    p.add_argument("--any-frame-of-reference", action="store_true",
                   help="allow DICOM images whose FrameOfReferenceUIDs differ (their "
                        "positions are then not comparable: the lines may be meaningless)")


def check_frames_of_reference(images: Sequence, allow: bool) -> None:
    """Refuse DICOM images of different frames of reference unless ``allow``.

    DICOM images without FrameOfReferenceUID (blanked by anonymisers) are used with the
    others, their geometry being the only evidence; one warning on stderr names them.
    """
    uids = {img.frame_of_reference for img in images if img.frame_of_reference}
    if len(uids) > 1 and not allow:
        groups = {}
        for img in images:
            groups.setdefault(img.frame_of_reference, []).append(img.name)
        detail = "; ".join(f"{', '.join(names)}" for names in groups.values())
        raise PlaneSSLError(
            "the images have different DICOM frames of reference, so their positions are "
            f"not comparable (groups: {detail}); pass --any-frame-of-reference to draw anyway")
    missing = [img.name for img in images
               if img.source_format == "dicom" and not img.frame_of_reference]
    if missing:
        print(f"planessl: warning: no FrameOfReferenceUID in {', '.join(missing)}: positions "
              f"compared as if in one frame of reference (the geometry is the only evidence)",
              file=sys.stderr)


def run_lines(args: argparse.Namespace) -> int:
    from planessl.io.imagespec import load_image_spec
    from planessl.linereport import describe_line

    img_a, img_b = load_image_spec(args.a), load_image_spec(args.b)
    check_frames_of_reference([img_a, img_b], args.any_frame_of_reference)
    rep = describe_line(img_a.plane, img_b.plane, args.tolerance)
    if args.png:
        from planessl.plotting import plot_line

        plot_line(img_a.pixels, img_a.plane, rep, args.png,
                  title=f"{img_a.name}\nline of {img_b.name}", label=img_b.name)
    if args.json:
        out = {"A": img_a.name, "B": img_b.name, "A_shape": list(img_a.plane.shape),
               "A_spacing_mm": list(img_a.plane.spacing), "tolerance_deg": args.tolerance}
        out.update(rep.to_dict())
        if args.png:
            out["png"] = str(args.png)
        print(json.dumps(out, indent=2))
        return 0
    pa = img_a.plane
    print(f"A: {img_a.name}  ({pa.shape[0]} x {pa.shape[1]} pixels, "
          f"{pa.spacing[0]:.4g} x {pa.spacing[1]:.4g} mm)")
    print(f"B: {img_b.name}")
    print(f"angle between the planes: {rep.angle_deg:.3f} deg")
    if rep.parallel:
        print(f"the planes are parallel (within {args.tolerance:g} deg): no line")
        return 0
    print("line of B in A's pixels: a*i + b*j + c = 0  (i = row, j = column)")
    print(f"  a = {rep.a:.8f}\n  b = {rep.b:.8f}\n  c = {rep.c:.6f}")
    if rep.endpoints is None:
        print("  the line misses A's field of view")
    else:
        (i0, j0), (i1, j1) = rep.endpoints
        print(f"  crosses A's field of view from (i, j) = ({i0:.3f}, {j0:.3f}) "
              f"to ({i1:.3f}, {j1:.3f})")
    if args.png:
        print(f"wrote {args.png}")
    return 0


def format_table(names: Sequence[str], reports) -> str:
    """Text table of ``reports[a][b]`` (see :func:`planessl.plotting.plot_show_lines`)."""
    lines = [f"{'A (drawn on)':<28} {'B (cutting)':<28} line of B in A's pixels"]
    for a, row in enumerate(reports):
        for b, rep in enumerate(row):
            if rep is not None:
                lines.append(f"{_short(names[a]):<28} {_short(names[b]):<28} {rep.summary()}")
    return "\n".join(lines)


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]


def run_show_lines(args: argparse.Namespace) -> int:
    from planessl.io.imagespec import load_image_spec
    from planessl.plotting import plot_show_lines

    from planessl.errors import InputFileError

    if len(args.images) < 2:
        raise PlaneSSLError("show-lines needs at least two images")
    titles = list(args.images)
    if args.titles:
        titles = [t.strip() for t in args.titles.split(",")]
        if len(titles) != len(args.images):
            raise PlaneSSLError(f"--titles has {len(titles)} titles for {len(args.images)} "
                                f"images")
    images, kept, errors = [], [], []
    for spec, title in zip(args.images, titles):
        try:  # a damaged image is one line; the others are drawn
            images.append(load_image_spec(spec))
            kept.append(title)
        except InputFileError as exc:
            errors.append(exc)
    if len(images) < 2:  # nothing to draw: the one error line says why
        if len(errors) == 1:
            raise errors[0]
        raise PlaneSSLError(f"show-lines needs at least two images; {len(images)} of "
                            f"{len(args.images)} could be read: "
                            + "; ".join(str(e) for e in errors))
    for exc in errors:
        print(f"planessl: skipped {exc}", file=sys.stderr)
    titles = kept
    check_frames_of_reference(images, args.any_frame_of_reference)
    reports = plot_show_lines([(t, img.pixels, img.plane) for t, img in zip(titles, images)],
                              args.out, tolerance_deg=args.tolerance)
    if args.json:
        table = [{"A": titles[a], "B": titles[b], **rep.to_dict()}
                 for a, row in enumerate(reports) for b, rep in enumerate(row)
                 if rep is not None]
        print(json.dumps({"png": str(args.out), "lines": table}, indent=2))
    else:
        print(format_table(titles, reports))
        print(f"wrote {args.out}")
    return 0
