"""Figures of intersection lines drawn on images (matplotlib, Agg backend, PNG files).

Pixel ``(i, j)`` is drawn with its centre at ``x = j``, ``y = i`` (row 0 at the top) and a
display aspect of ``di / dj`` so that millimetres look the same in both directions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from planessl.atomic import atomic_path
from planessl.geometry import DEFAULT_PARALLEL_TOLERANCE_DEG, Plane
from planessl.linereport import LineReport, describe_line


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _window(pixels: np.ndarray) -> tuple[float, float]:
    """Display range: 1st to 99th percentile (robust to a few bright pixels)."""
    lo, hi = np.percentile(pixels, [1, 99]) if pixels.size else (0.0, 1.0)
    if not hi > lo:
        lo, hi = float(pixels.min()), float(pixels.max()) + 1e-6
    return float(lo), float(hi)


def draw_image(ax, pixels: np.ndarray, plane: Plane) -> None:
    """Show ``pixels`` on ``ax`` with pixel centres at integer coordinates, true aspect."""
    lo, hi = _window(pixels)
    rows, cols = plane.shape
    di, dj = plane.spacing
    ax.imshow(pixels, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest",
              extent=(-0.5, cols - 0.5, rows - 0.5, -0.5), aspect=di / dj)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_line(ax, report: LineReport, color, label: str | None = None) -> bool:
    """Draw the segment of ``report`` inside the field of view; ``False`` when there is none."""
    if report.endpoints is None:
        return False
    (i0, j0), (i1, j1) = report.endpoints
    ax.plot([j0, j1], [i0, i1], color=color, linewidth=1.6, label=label)
    return True


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Save ``fig`` as PNG atomically and close it."""
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def plot_line(pixels: np.ndarray, plane: Plane, report: LineReport, out: str | Path,
              title: str = "", label: str = "line") -> None:
    """PNG of image A with the line where another plane cuts it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5 * plane.shape[0] * plane.spacing[0]
                                    / (plane.shape[1] * plane.spacing[1])))
    draw_image(ax, pixels, plane)
    if not draw_line(ax, report, "#ff3030", label):
        ax.text(0.5, 0.02, "no line: " + ("parallel" if report.parallel
                                          else "outside the field of view"),
                transform=ax.transAxes, ha="center", va="bottom", color="yellow", fontsize=9)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)


def plot_show_lines(images: Sequence[tuple[str, np.ndarray, Plane]], out: str | Path,
                    tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG,
                    columns: int | None = None, suptitle: str = "") -> list[list[LineReport | None]]:
    """One panel per image with the lines of every other image, one colour per image.

    Args:
        images: ``(title, pixels, plane)`` per image, all of one study (one frame of
            reference).
        out: the PNG to write.

    Returns:
        ``reports[a][b]``: the line of image ``b`` in image ``a`` (``None`` on the diagonal).
    """
    plt = _pyplot()
    n = len(images)
    if columns is None:
        columns = max(2, int(np.ceil(np.sqrt(n))))
    cols = max(1, min(columns, n))
    rows = (n + cols - 1) // cols
    colors = plt.get_cmap("tab10" if n <= 10 else "tab20").colors
    legend_cols = min(n, 3)
    legend_h = 0.45 + 0.2 * ((n + legend_cols - 1) // legend_cols)  # inches
    title_h = 0.4 if suptitle else 0.0
    fig_h = 3.6 * rows + legend_h + title_h
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, fig_h), squeeze=False)
    reports: list[list[LineReport | None]] = []
    for a, (title, pixels, plane) in enumerate(images):
        ax = axes[a // cols][a % cols]
        draw_image(ax, pixels, plane)
        row: list[LineReport | None] = []
        missing = []
        for b, (_, _, other) in enumerate(images):
            if a == b:
                row.append(None)
                continue
            rep = describe_line(plane, other, tolerance_deg)
            row.append(rep)
            if not draw_line(ax, rep, colors[b % len(colors)]):
                missing.append(f"{b + 1}:{'parallel' if rep.parallel else 'outside'}")
        reports.append(row)
        ax.set_title(f"{a + 1}: {title}", fontsize=8, color=colors[a % len(colors)])
        for side in ax.spines.values():
            side.set_edgecolor(colors[a % len(colors)])
            side.set_linewidth(2.5)
        if missing:
            ax.text(0.5, 0.01, "no line: " + ", ".join(missing), transform=ax.transAxes,
                    ha="center", va="bottom", color="yellow", fontsize=7)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles = [plt.Line2D([], [], color=colors[b % len(colors)], linewidth=2,
                          label=f"{b + 1}: {images[b][0]}") for b in range(n)]
    fig.legend(handles=handles, loc="lower center", ncol=legend_cols, fontsize=8,
               frameon=False, title="line of image (colour = panel frame)", title_fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout(rect=(0, legend_h / fig_h, 1, 1 - title_h / fig_h), h_pad=1.8)
    save_figure(fig, out)
    return reports
