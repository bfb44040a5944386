"""The few-label experiment's tables and figure: mean per method and N over seeds, paired
differences to reference methods with bootstrap intervals over the labelled draws, and the
metric-against-N plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

METRIC_NAMES = {"mean_dice": "mean Dice", "accuracy": "accuracy"}
#: Draws a gain needs before the summary marks it (the interval alone is too optimistic
#: with fewer draws at small N).
CLAIM_DRAWS = 6


def metric_name(metric: str) -> str:
    """How a metric is named for people (``mean_dice`` -> ``mean Dice``)."""
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def _signed(x: float) -> str:
    """``+0.031`` / ``−0.004`` (a real minus sign, so the signs line up and read)."""
    return f"{'−' if x < 0 else '+'}{abs(x):.3f}"


def _fmt(values: list[float]) -> str:
    v = np.array([x for x in values if not math.isnan(x)])
    if v.size == 0:
        return "–"
    return f"{v.mean():.3f} ± {v.std():.3f}" if v.size > 1 else f"{v.mean():.3f}"


def bootstrap_interval(diffs: list[float] | np.ndarray, level: float = 0.95,
                       n_boot: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (one paired difference per
    labelled draw), resampling the draws with replacement; fixed ``seed``, so the same rows
    give the same interval. One draw gives ``(d, d)``."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        raise ValueError("no differences to bootstrap")
    if d.size == 1:
        return float(d[0]), float(d[0])
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_differences(rows: list[dict], metric: str, method: str, reference: str,
                       n: int) -> list[tuple[int, float]]:
    """``(seed, method − reference)`` for every seed with both cells at ``n``."""
    table = _table(rows, metric)
    seeds = sorted({s for (_, _, s) in table})
    return [(s, table[(method, n, s)] - table[(reference, n, s)]) for s in seeds
            if (method, n, s) in table and (reference, n, s) in table]


def _table(rows: list[dict], metric: str) -> dict[tuple[str, int, int], float]:
    def val(r):
        return float(r[metric]) if r.get(metric) not in (None, "") else math.nan

    table = {(r["method"], int(r["n"]), int(r["seed"])): val(r) for r in rows}
    return {k: v for k, v in table.items() if not math.isnan(v)}


def _paired_cell(d: list[float]) -> str:
    pos, neg = sum(x > 0 for x in d), sum(x < 0 for x in d)
    if len(d) == 1:  # one draw: no spread, no interval
        return f"{_signed(d[0])} ({pos}+/{neg}− of 1)"
    lo, hi = bootstrap_interval(d)
    mean = _signed(float(np.mean(d)))
    if lo > 0 and len(d) >= CLAIM_DRAWS:
        mean = f"**{mean}**"
    each = ", ".join(_signed(x) for x in d)
    return f"{mean} [{_signed(lo)}, {_signed(hi)}] ({pos}+/{neg}− of {len(d)}: {each})"


def summarise_results(rows: list[dict], metric: str, methods: list[str], ns: list[int],
                      references: list[str] | tuple[str, ...] = ("scratch",)) -> str:
    """Markdown: mean ± std (over seeds) per method and N with the number of seeds; then per
    reference method (scratch first; a later reference's table leaves out the earlier
    references) the paired difference (same N, same seed) with its 95 %
    bootstrap interval over the draws, the count of draws better and worse, and every
    draw's difference. A mean is bold where the interval is above zero with at least
    :data:`CLAIM_DRAWS` draws."""
    table = _table(rows, metric)
    seeds = sorted({s for (_, _, s) in table})
    out = [f"# Few-label results ({metric}, mean ± std over seeds)", "",
           "| method | seeds | " + " | ".join(f"N={n}" for n in ns) + " |",
           "|---|---|" + "---|" * len(ns)]
    for m in methods:
        m_seeds = sorted({s for (mm, n, s) in table if mm == m and n in ns})
        cells = []
        for n in ns:
            v = [table[(m, n, s)] for s in seeds if (m, n, s) in table]
            partial = f" ({len(v)} of {len(m_seeds)} seeds)" if 0 < len(v) < len(m_seeds) else ""
            cells.append(_fmt(v) + partial)
        out.append(f"| {m} | {len(m_seeds)} | " + " | ".join(cells) + " |")
    for k, ref in enumerate(references):
        # an earlier reference's table already holds this pair (with the other sign)
        others = [m for m in methods if m != ref and m not in references[:k]]
        if ref not in methods or not others:
            continue
        out += ["", f"## Paired difference to {ref} (same N, same seed)", "",
                f"Mean of (method − {ref}) over the seeds (labelled draws), its 95 % bootstrap "
                "interval over the draws in brackets, then how many draws are better (+) and "
                f"worse (−) than {ref} and the difference of each draw in seed order. Bold: "
                f"interval above zero with at least {CLAIM_DRAWS} draws.", "",
                "| method | " + " | ".join(f"N={n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
        for m in others:
            cells = []
            for n in ns:
                d = [x for _, x in paired_differences(rows, metric, m, ref, n)]
                cells.append(_paired_cell(d) if d else "–")
            out.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def results_figure(rows: list[dict], metric: str, methods: list[str], ns: list[int]):
    """The figure of :func:`plot_results` (a ``matplotlib.figure.Figure``, no pyplot state):
    metric (mean ± std over seeds) against N on a log axis ticked at the N values only,
    one line per method, the methods' points shifted a little sideways so that their
    error bars do not hide each other, the legend beside the axes."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    ns = sorted(ns)
    fig = Figure(figsize=(6.4, 3.8), dpi=120)
    ax = fig.subplots()
    # sideways shift in log space: a few % of the decades shown, centred on the true N
    span = math.log(max(ns) / min(ns)) if len(ns) > 1 and min(ns) > 0 else math.log(10)
    step = 0.035 * span
    most_seeds = 0
    for i, m in enumerate(methods):
        xs, ys, es, k = [], [], [], []
        for n in ns:
            v = [float(r[metric]) for r in rows if r["method"] == m and int(r["n"]) == n
                 and r.get(metric) not in (None, "")]
            v = [x for x in v if not math.isnan(x)]
            if v:
                xs.append(n), ys.append(np.mean(v)), es.append(np.std(v)), k.append(len(v))
        if not xs:
            continue
        shift = math.exp(step * (i - (len(methods) - 1) / 2))
        seeds = f"{min(k)}" if min(k) == max(k) else f"{min(k)}–{max(k)}"
        label = f"{m} ({seeds} seed{'s' if max(k) > 1 else ''})"
        most_seeds = max(most_seeds, max(k))
        ax.errorbar([x * shift for x in xs], ys, yerr=es if max(k) > 1 else None, marker="o",
                    capsize=4, label=label)
    ax.set_xscale("log")
    # ticks at the N values only: no log-axis minor ticks, no "2×10⁰" labels
    ax.xaxis.set_major_locator(FixedLocator(ns))
    ax.xaxis.set_major_formatter(FixedFormatter([str(n) for n in ns]))
    ax.xaxis.set_minor_locator(NullLocator())
    lo, hi = min(ns), max(ns)
    pad = math.exp(max(0.25 * span, step * len(methods)))
    ax.set_xlim(lo / pad, hi * pad)
    ax.set_xlabel("labelled subjects N")
    ax.set_ylabel(f"{metric_name(metric)} (test set)")
    spread = "mean ± std over seeds" if most_seeds > 1 else "one seed: no error bars"
    ax.set_title(f"{metric_name(metric)} vs labelled subjects ({spread})", fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  frameon=False, title="method")
    fig.tight_layout()
    return fig


def plot_results(rows: list[dict], metric: str, methods: list[str], ns: list[int], path: Path) -> None:
    """PNG of the metric (mean ± std over seeds) against N, one line per method
    (see :func:`results_figure`), written atomically."""
    fig = results_figure(rows, metric, methods, ns)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
