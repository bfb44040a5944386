"""Montage of a cardiac study: SAX base/mid/apex, 2CH, 3CH, 4CH at ED and ES, with label
contours and the lines where the other views cut each image.

Used for ``docs/phantom_montage.png`` and, on the real UK Biobank demo subject,
``docs/ukbb_montage.png``, so the phantom's realism can be judged side by side. With
``--acdc DIR`` (ACDC HDF5 volumes) it also draws ``docs/phantom_vs_acdc.png``: SAX slices of
many phantom subjects above real ACDC SAX slices, both resampled onto the network's input
grid and normalised as in training (:func:`planessl.data.labelled.image_on_grid`)::

    python -m planessl.phantom.montage --out docs [--ukbb ../shared/data/ukbb_demo/1] \
        [--acdc ../shared/data/acdc_h5 --grid 96 --spacing 2.4 --contours]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from planessl.geometry import Plane, intersection_line, line_endpoints
from planessl.study import Series, Study

#: Contour colour per label value (ACDC convention + extras).
LABEL_COLOURS = {1: "#3c8cff", 2: "#40d040", 3: "#ff4040", 4: "#ffb000", 5: "#c060ff",
                 6: "#00e0e0"}
#: Line colour per view that cuts the image.
VIEW_COLOURS = {"sax": "#ffff60", "2ch": "#ff60ff", "3ch": "#60ffff", "4ch": "#ff9040"}


def _panels(study: Study) -> list[tuple[str, Series, int]]:
    """(title, series, slice) of the six columns; missing views are skipped."""
    out = []
    sax = study.views("sax")
    if sax:
        s = sax[0]
        n = s.n_slices
        first, last = 0, n - 1
        if s.labels is not None and s.labelled_frames:
            with_lv = np.flatnonzero((s.labels[:, s.labelled_frames[0]] == 3).any(axis=(1, 2)))
            if with_lv.size:
                first, last = int(with_lv[0]), int(with_lv[-1])
        for title, k in (("SAX base", min(first + 1, last)), ("SAX mid", (first + last) // 2),
                         ("SAX apex", last)):
            out.append((title, s, k))
    for view in ("2ch", "3ch", "4ch"):
        for s in study.views(view)[:1]:
            out.append((view.upper(), s, 0))
    return out


def render_montage(study: Study, path: str | Path, title: str = "") -> None:
    """Write the montage PNG of ``study`` to ``path`` (atomically)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(study)
    shown_planes = [(s.view, s.planes[k]) for _, s, k in panels]
    phases = [("ED", "ed_frame"), ("ES", "es_frame")]
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 5.6),
                             facecolor="black")
    axes = np.atleast_2d(axes)
    for row, (phase, attr) in enumerate(phases):
        for col, (name, s, k) in enumerate(panels):
            ax = axes[row, col]
            f = getattr(s, attr)
            f = 0 if f is None else int(f)
            img = np.asarray(s.pixels[k, f], dtype=np.float32)
            lo, hi = np.percentile(img, [1, 99.5])
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            if s.labels is not None and f in s.labelled_frames:
                lab = np.asarray(s.labels[k, f])
                for value, colour in LABEL_COLOURS.items():
                    if np.any(lab == value):
                        ax.contour(lab == value, levels=[0.5], colors=[colour],
                                   linewidths=0.7)
            plane = s.planes[k]
            for view, other in shown_planes:
                if other is plane or view == s.view:
                    continue
                _draw_line(ax, plane, other, VIEW_COLOURS.get(view, "white"))
            ax.set_xlim(-0.5, plane.shape[1] - 0.5)
            ax.set_ylim(plane.shape[0] - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name} {phase}", color="white", fontsize=9)
    _save_black(fig, path, title, fontsize=10, dpi=72)


def _save_black(fig, path: str | Path, title: str | None, fontsize: int, dpi: int) -> None:
    """Title, tight layout, then write the figure on black atomically (temporary name,
    then rename)."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title, color="white", fontsize=fontsize)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=dpi, facecolor="black")
    plt.close(fig)
    os.replace(tmp, path)


def _draw_line(ax, plane: Plane, other: Plane, colour: str) -> None:
    line = intersection_line(plane, other)
    if line is None:
        return
    ends = line_endpoints(line, plane.shape)
    if ends is None:
        return
    (i0, j0), (i1, j1) = ends
    ax.plot([j0, j1], [i0, i1], color=colour, linewidth=0.8, alpha=0.8)


# ----------------------------------------------------------------------- UK Biobank
#: UK Biobank segmentation values -> planessl (ACDC) label values.
UKBB_TO_ACDC = {0: 0, 1: 3, 2: 2, 3: 1, 4: 4, 5: 5}


def _ukbb_series(folder: Path, name: str, view: str, seg: str | None) -> Series | None:
    from planessl.io.nifti import read_volume

    ed, es = folder / f"{name}_ED.nii.gz", folder / f"{name}_ES.nii.gz"
    if not ed.exists() or not es.exists():
        return None
    vol_ed, planes = read_volume(ed)
    vol_es, _ = read_volume(es)
    # (X, Y, Z, 1) -> (S, F, H, W) with frames ED, ES.
    pixels = np.stack([vol_ed[..., 0], vol_es[..., 0]], axis=-1).transpose(2, 3, 0, 1)
    labels = None
    if seg is not None and (folder / f"{seg}_ED.nii.gz").exists():
        seg_ed, _ = read_volume(folder / f"{seg}_ED.nii.gz")
        seg_es, _ = read_volume(folder / f"{seg}_ES.nii.gz")
        raw = np.stack([seg_ed[..., 0], seg_es[..., 0]], axis=-1).transpose(2, 3, 0, 1)
        lut = np.zeros(256, np.uint8)
        for k, v in UKBB_TO_ACDC.items():
            lut[k] = v
        labels = lut[np.clip(np.rint(raw), 0, 255).astype(np.uint8)]
    return Series(name=view, view=view, planes=planes, pixels=pixels.astype(np.float32),
                  labels=labels, labelled_frames=[0, 1] if labels is not None else [],
                  ed_frame=0, es_frame=1)


def ukbb_study(folder: str | Path) -> Study:
    """The ED/ES frames of a UK Biobank subject folder (``sa_ED.nii.gz`` ...) as a
    :class:`Study` with labels converted to the ACDC convention."""
    folder = Path(folder)
    series = [s for s in (_ukbb_series(folder, "sa", "sax", "seg_sa"),
                          _ukbb_series(folder, "la_2ch", "2ch", "seg_la_2ch"),
                          _ukbb_series(folder, "la_4ch", "4ch", "seg4_la_4ch")) if s is not None]
    return Study(id=folder.name, series=series)


# ------------------------------------------------------------- phantom vs ACDC (grid)
def _pick_slice(series: Series, frame: int, k: int) -> int:
    """A basal-mid, mid or apical-mid slice (cycling with ``k``) among those with LV cavity."""
    with_lv = np.arange(series.n_slices)
    if series.labels is not None and frame in series.labelled_frames:
        found = np.flatnonzero((series.labels[:, frame] == 3).any(axis=(1, 2)))
        if found.size:
            with_lv = found
    frac = (0.3, 0.5, 0.7)[k % 3]
    return int(with_lv[int(round(frac * (len(with_lv) - 1)))])


def grid_sax_images(study: Study, k: int, size: int, spacing: float
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """One SAX slice of ``study`` (ED for even ``k``, ES for odd) on the training grid:
    ``size`` x ``size`` pixels of ``spacing`` (nominal mm when the source has no spacing),
    clipped to percentiles and z-scored; with its label map when labelled."""
    from planessl.data.labelled import GridSpec, image_on_grid, labels_on_grid

    s = study.views("sax")[0]
    f = s.ed_frame if k % 2 == 0 or s.es_frame is None else s.es_frame
    f = 0 if f is None else int(f)
    sl = _pick_slice(s, f, k // 2)
    image, target = image_on_grid(s.pixels[sl, f], s.planes[sl],
                                  GridSpec(image_size=size, spacing_mm=spacing))
    labels = None
    if s.labels is not None and f in s.labelled_frames:
        labels = labels_on_grid(s.labels[sl, f], s.planes[sl], target)
    return image, labels


def acdc_studies(folder: str | Path, count: int) -> list[Study]:
    """``count`` ACDC HDF5 patients spread evenly over those in ``folder`` (so that every
    diagnostic group of the sorted ACDC numbering shows)."""
    from planessl.io.acdc import discover_acdc_h5, load_acdc_h5

    sources, _ = discover_acdc_h5([Path(folder)])
    if not sources:
        return []
    picks = np.unique(np.linspace(0, len(sources) - 1, min(count, len(sources))).round()
                      .astype(int))
    return [load_acdc_h5(sources[i], f"acdc-{i}") for i in picks]


def render_grid_comparison(phantoms: list[Study], reals: list[Study], path: str | Path, *,
                           size: int = 96, phantom_spacing: float = 2.4,
                           real_spacing: float = 1.6, contours: bool = False,
                           cols: int = 8, title: str = "",
                           real_name: str = "ACDC") -> None:
    """Phantom SAX slices (top rows) above real SAX slices (bottom rows), on the training
    grid, all in one fixed window of the z-scored intensities."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = [(f"phantom ({phantom_spacing:.3g} mm grid)", phantoms, phantom_spacing),
              (f"{real_name} ({real_spacing:.3g} source px grid)", reals, real_spacing)]
    rows_per = [int(np.ceil(len(b[1]) / cols)) for b in blocks]
    n_rows = sum(rows_per)
    fig, axes = plt.subplots(n_rows, cols, figsize=(1.6 * cols, 1.75 * n_rows + 0.4),
                             facecolor="black", squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    row0 = 0
    for (name, studies, spacing), n_r in zip(blocks, rows_per):
        for k, st in enumerate(studies):
            ax = axes[row0 + k // cols, k % cols]
            image, labels = grid_sax_images(st, k, size, spacing)
            ax.imshow(image, cmap="gray", vmin=-1.5, vmax=3.0, interpolation="nearest")
            if contours and labels is not None:
                for value in (1, 2, 3):
                    if np.any(labels == value):
                        ax.contour(labels == value, levels=[0.5],
                                   colors=[LABEL_COLOURS[value]], linewidths=0.6)
            ax.set_title(f"{name.split()[0]} {k}", color="white", fontsize=7, pad=2)
        axes[row0, 0].text(0, -0.25, name, transform=axes[row0, 0].transAxes, color="yellow",
                           fontsize=8, va="top")
        row0 += n_r
    _save_black(fig, path, title, fontsize=9, dpi=80)


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parents[3]
    default_ukbb = Path(os.environ.get("PLANESSL_SHARED_DATA", here / "../shared/data")) / \
        "ukbb_demo" / "1"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(here / "docs"), help="folder for the PNGs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--preset", default="full")
    ap.add_argument("--ukbb", default=str(default_ukbb), help="UK Biobank subject folder")
    ap.add_argument("--acdc", default=None,
                    help="ACDC HDF5 folder: also draw phantom_vs_acdc.png (not for the repo)")
    ap.add_argument("--subjects", type=int, default=16, help="subjects per block (--acdc)")
    ap.add_argument("--grid", type=int, default=96, help="training grid size, px (--acdc)")
    ap.add_argument("--spacing", type=float, default=2.4,
                    help="training grid spacing, mm (--acdc)")
    ap.add_argument("--acdc-mm-per-px", type=float, default=1.5,
                    help="assumed ACDC pixel size (the HDF5 files have none): ACDC is put on "
                         "a grid of spacing / this source pixels, so both show the same "
                         "physical scale (1: the same nominal numbers, as a run that uses "
                         "one data.spacing_mm for both)")
    ap.add_argument("--contours", action="store_true", help="draw RV/myo/LV contours")
    args = ap.parse_args(argv)
    from planessl.phantom import CLASS_NAMES, make_study

    study = make_study(args.seed, args.index, args.preset)
    out = Path(args.out)
    render_montage(study, out / "phantom_montage.png",
                   f"phantom seed {args.seed} subject {args.index} ({args.preset}, "
                   f"{CLASS_NAMES[study.targets['class']]})")
    print(out / "phantom_montage.png")
    if Path(args.ukbb).is_dir():
        render_montage(ukbb_study(args.ukbb), out / "ukbb_montage.png",
                       "UK Biobank demo subject 1 (labels: automated segmentation)")
        print(out / "ukbb_montage.png")
    else:
        print(f"no UK Biobank folder at {args.ukbb}; skipped its montage")
    if args.acdc:
        reals = acdc_studies(args.acdc, args.subjects)
        if not reals:
            print(f"no ACDC HDF5 files under {args.acdc}; skipped phantom_vs_acdc.png")
            return 0
        phantoms = [make_study(args.seed, k, "small", frames=8)
                    for k in range(args.subjects)]
        src_px = args.spacing / args.acdc_mm_per_px
        render_grid_comparison(
            phantoms, reals, out / "phantom_vs_acdc.png", size=args.grid,
            phantom_spacing=args.spacing, real_spacing=src_px, contours=args.contours,
            title=f"SAX on the training grid ({args.grid} px, z-scored, window -1.5..3): "
                  f"phantom (small preset, seed {args.seed}) at {args.spacing:g} mm vs real "
                  f"ACDC at {src_px:.3g} source px (~{args.acdc_mm_per_px:g} mm/px); "
                  f"even: ED, odd: ES")
        print(out / "phantom_vs_acdc.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
