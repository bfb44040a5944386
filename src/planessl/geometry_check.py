"""The geometry check on the real tri-plane MR localizer that pydicom ships.

``dicomdirtests/98892003/MR2`` holds two tri-plane localizers (axial, sagittal, coronal;
one frame of reference each) and one lone localizer image of another study. pydicom's
maintainers downsized the pixels to 16 x 16 but kept the headers of the original images
(``pydicom/data/test_files/README.txt``), so the header's PixelSpacing (1.17 mm) describes
the original 256 x 256 grid (AcquisitionMatrix frequency 256, 100 % phase field of view):
the planes cross near pixel 128 of that grid, far outside a 16-pixel field of view.
To draw the lines on the thumbnails this check restores the original field of view and
resamples it to the 16 x 16 thumbnail grid (:meth:`planessl.geometry.Plane.resample`).
The lines themselves come from the unmodified headers.
"""

from __future__ import annotations

import csv
import io
import json
import platform
from pathlib import Path
from typing import Callable

from planessl.atomic import write_text
from planessl.geometry import Plane

#: Pixel matrix of the original localizer images (AcquisitionMatrix frequency encoding).
LOCALIZER_ORIGINAL_MATRIX = 256
LOCALIZER_PATTERN = "dicomdirtests/98892003/MR2/*"


def localizer_files() -> list[str]:
    """Paths of pydicom's tri-plane localizer test files (sorted)."""
    from pydicom.data import get_testdata_files

    return sorted(get_testdata_files(LOCALIZER_PATTERN))


def thumbnail_plane(header_plane: Plane, original_matrix: int = LOCALIZER_ORIGINAL_MATRIX
                    ) -> Plane:
    """The plane of a downsized thumbnail whose header still describes the original image.

    The original image has ``original_matrix`` pixels per side at the header's spacing,
    its pixel (0, 0) at the header's position; the thumbnail covers the same field of view
    with ``header_plane.shape`` pixels.
    """
    original = Plane(header_plane.origin, header_plane.row_dir, header_plane.col_dir,
                     header_plane.spacing, (original_matrix, original_matrix),
                     header_plane.thickness)
    rows, cols = header_plane.shape
    di, dj = header_plane.spacing
    return original.resample((di * original_matrix / rows, dj * original_matrix / cols),
                             shape=(rows, cols))


def _view_name(plane: Plane) -> str:
    axis = int(abs(plane.normal).argmax())
    return ("sagittal", "coronal", "axial")[axis]


def run_geometry_check(out_dir: str | Path, echo: Callable[[str], None] = print) -> dict:
    """Intersect every pair of images of each localizer, print the table, write
    ``localizer_<k>.png`` per frame of reference, ``localizer_lines.csv`` and
    ``run_info.json`` into ``out_dir``.

    Returns:
        ``{"groups": [[file names], ...], "rows": [table rows], "files": [paths]}``.
    """
    from planessl.io.imagespec import load_image_spec
    from planessl.linereport import describe_line
    from planessl.plotting import plot_show_lines

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = [load_image_spec(p) for p in localizer_files()]
    groups: dict[str, list] = {}
    for img in images:
        groups.setdefault(img.frame_of_reference or "", []).append(img)
    echo(f"geometry check: {len(images)} images of pydicom's MR localizers "
         f"({LOCALIZER_PATTERN}), {len(groups)} frames of reference")
    echo("lines come from the unmodified headers, in the original "
         f"{LOCALIZER_ORIGINAL_MATRIX} x {LOCALIZER_ORIGINAL_MATRIX} pixel grid; the PNGs draw "
         "them on the 16 x 16 thumbnails pydicom ships")
    rows_out: list[dict] = []
    written: list[str] = []
    group_names: list[list[str]] = []
    k = 0
    for uid, members in groups.items():
        names = [f"{Path(m.name).name} ({_view_name(m.plane)})" for m in members]
        if len(members) < 2:
            echo(f"  skipped {', '.join(names)}: alone in its frame of reference")
            continue
        k += 1
        group_names.append(names)
        echo(f"\nlocalizer {k} (FrameOfReferenceUID ...{uid[-12:]}):")
        echo(f"  {'A (drawn on)':<20} {'B (cutting)':<20} {'angle':>7}  "
             f"{'a':>9} {'b':>9} {'c':>10}  crosses A's original field of view at (i, j)")
        for ia, A in enumerate(members):
            original_a = Plane(A.plane.origin, A.plane.row_dir, A.plane.col_dir,
                               A.plane.spacing, (LOCALIZER_ORIGINAL_MATRIX,) * 2,
                               A.plane.thickness)
            for ib, B in enumerate(members):
                if ia == ib:
                    continue
                rep = describe_line(original_a, B.plane)
                row = {"localizer": k, "A": Path(A.name).name, "B": Path(B.name).name,
                       "A_view": _view_name(A.plane), "B_view": _view_name(B.plane),
                       **{key: rep.to_dict()[key] for key in ("angle_deg", "parallel",
                                                               "a", "b", "c")}}
                if rep.parallel:
                    text = "parallel: no line"
                else:
                    (i0, j0), (i1, j1) = rep.endpoints or ((float("nan"),) * 2,) * 2
                    row.update(i0=i0, j0=j0, i1=i1, j1=j1)
                    text = (f"{rep.angle_deg:7.2f}  {rep.a:9.5f} {rep.b:9.5f} {rep.c:10.3f}  "
                            f"({i0:.1f}, {j0:.1f}) - ({i1:.1f}, {j1:.1f})")
                rows_out.append(row)
                echo(f"  {names[ia]:<20} {names[ib]:<20} {text}")
        png = out_dir / f"localizer_{k}.png"
        plot_show_lines([(n, m.pixels, thumbnail_plane(m.plane)) for n, m in zip(names, members)],
                        png, columns=len(members),
                        suptitle=f"pydicom MR localizer {k}: lines of the other planes")
        written.append(str(png))
    csv_path = out_dir / "localizer_lines.csv"
    fields = ["localizer", "A", "B", "A_view", "B_view", "angle_deg", "parallel", "a", "b", "c",
              "i0", "j0", "i1", "j1"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows_out)
    write_text(csv_path, buf.getvalue())
    written.append(str(csv_path))
    info_path = out_dir / "run_info.json"
    write_text(info_path, json.dumps({"job": "geometry check", "source": LOCALIZER_PATTERN,
                                      "original_matrix": LOCALIZER_ORIGINAL_MATRIX,
                                      "versions": package_versions()}, indent=2))
    written.append(str(info_path))
    echo("\nwrote " + ", ".join(written))
    return {"groups": group_names, "rows": rows_out, "files": written}


def package_versions() -> dict:
    """Versions of Python and the packages planessl builds on (for run records)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("planessl", "numpy", "scipy", "pydicom", "nibabel", "matplotlib", "torch",
                 "monai", "pytorch-lightning"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
