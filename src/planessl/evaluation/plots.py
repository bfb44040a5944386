"""Figures saved beside runs (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np

from planessl.evaluation.lines import fit_line
from planessl.geometry import Line, line_endpoints


def _draw_line(ax, abc, shape, colour: str, style: str = "-") -> None:
    a, b, c = abc
    norm = float(np.hypot(a, b))
    if norm == 0:
        return
    ends = line_endpoints(Line(a / norm, b / norm, c / norm, 90.0), shape)
    if ends is not None:
        (i0, j0), (i1, j1) = ends
        ax.plot([j0, j1], [i0, i1], style, color=colour, linewidth=1.2)


def save_heatmap_preview(path: str | Path, preview: dict[str, np.ndarray],
                         channels: Sequence[str], dpi: int = 80) -> None:
    """Rows: images; columns: the input, then target and predicted heatmap per channel,
    with the line extracted from each (green: from the target, red: from the prediction).

    ``preview`` holds ``image`` (N, 1, H, W), ``lines`` and ``pred`` (N, C, H, W),
    ``line_mask`` (N, C), ``spacing`` (N, 2)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, c = preview["pred"].shape[:2]
    fig, axes = plt.subplots(n, 1 + 2 * c, figsize=(1.6 * (1 + 2 * c), 1.6 * n), squeeze=False)
    for r in range(n):
        img = preview["image"][r, 0]
        shape = img.shape
        sp = tuple(float(x) for x in preview["spacing"][r])
        axes[r, 0].imshow(img, cmap="gray")
        if r == 0:
            axes[r, 0].set_title("input", fontsize=7)
        for k in range(c):
            for col, (key, label) in enumerate((("lines", "target"), ("pred", "predicted"))):
                ax = axes[r, 1 + 2 * k + col]
                heat = preview[key][r, k]
                ax.imshow(img, cmap="gray")
                ax.imshow(heat, cmap="magma", alpha=0.6, vmin=0, vmax=1)
                if r == 0:
                    ax.set_title(f"{channels[k]} {label}", fontsize=7)
                if preview["line_mask"][r, k] <= 0:
                    ax.text(2, 8, "missing", color="w", fontsize=6)
                    continue
                fit_t = fit_line(preview["lines"][r, k], sp)
                fit_p = fit_line(preview["pred"][r, k], sp)
                if fit_t is not None:
                    _draw_line(ax, fit_t, shape, "lime", "--")
                if fit_p is not None:
                    _draw_line(ax, fit_p, shape, "red")
                ax.set_xlim(-0.5, shape[1] - 0.5)
                ax.set_ylim(shape[0] - 0.5, -0.5)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
