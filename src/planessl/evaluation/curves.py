"""Learning curves of an experiment's fine-tuning runs: the validation metric against the
optimiser step, one panel per N, one colour per method, one line per seed, so that a reader
can see whether every arm reached its plateau before the checkpoint was chosen."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Collection, Sequence

CELL = re.compile(r"^(?P<method>.+)-n(?P<n>\d+)-s(?P<seed>\d+)$")


def read_curves(cells: Path, monitor: str, finished: Collection[tuple[str, int, int]] | None = None
                ) -> dict[tuple[str, int, int], list[tuple[int, float]]]:
    """``(method, n, seed) -> [(step, value), ...]`` of the ``monitor`` column of every
    ``cells/<method>-n<N>-s<seed>/run/metrics.csv`` (cells without one are left out; with
    ``finished``, so is every cell not in it, e.g. one interrupted or still running)."""
    curves = {}
    for folder in sorted(Path(cells).glob("*")):
        m = CELL.match(folder.name)
        path = folder / "run" / "metrics.csv"
        if m is None or not path.is_file():
            continue
        key = (m["method"], int(m["n"]), int(m["seed"]))
        if finished is not None and key not in finished:
            continue
        with open(path, newline="") as fh:
            points = [(int(float(r["step"])), float(r[monitor])) for r in csv.DictReader(fh)
                      if r.get(monitor) not in (None, "") and r.get("step") not in (None, "")]
        if points:
            curves[key] = sorted(points)
    return curves


def learning_curves_figure(curves: dict, methods: Sequence[str], ns: Sequence[int],
                           monitor: str = "val_dice"):
    """A matplotlib figure of ``curves`` (see :func:`read_curves`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [n for n in ns if any(k[1] == n for k in curves)] or list(ns)
    cols = min(len(ns), 4)
    rows = math.ceil(len(ns) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), dpi=110,
                             squeeze=False, sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, n in zip(axes.flat, ns):
        for k, method in enumerate(methods):
            first = True
            for (m, nn, seed), points in sorted(curves.items()):
                if m != method or nn != n:
                    continue
                steps, values = zip(*points)
                ax.plot(steps, values, color=colours[k % len(colours)], alpha=0.8, linewidth=1,
                        label=method if first else None)
                first = False
        ax.set_title(f"N={n}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel(monitor.replace("_", " "), fontsize=8)
    for ax in list(axes.flat)[len(ns):]:
        ax.axis("off")
    legend: dict = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, h)
    labels, handles = list(legend), list(legend.values())
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4) or 1, fontsize=8,
               frameon=False)
    fig.suptitle("validation during fine-tuning (one line per seed)", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return fig


def plot_learning_curves(cells: Path, methods: Sequence[str], ns: Sequence[int], path: Path,
                         monitor: str = "val_dice",
                         finished: Collection[tuple[str, int, int]] | None = None) -> bool:
    """Write the learning-curve PNG (atomically) of the cells (of the ``finished`` ones when
    given); ``False`` when no cell has a curve."""
    import matplotlib.pyplot as plt

    curves = read_curves(cells, monitor, finished)
    if not curves:
        return False
    fig = learning_curves_figure(curves, methods, ns, monitor)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return True
