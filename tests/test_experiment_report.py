"""The experiment's report: summary.md, the Dice-vs-N plot, and the quiet run log."""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pytest

from planessl.evaluation.summary import bootstrap_interval
from planessl.experiment import results_figure, summarise_results

DIFFS = (0.031, -0.004, 0.012)


def _rows(ns=(1, 3), seeds=(0, 1, 2)):
    rows = []
    for n in ns:
        for s in seeds:
            base = 0.5 + 0.05 * n + 0.01 * s
            rows.append({"method": "scratch", "n": str(n), "seed": str(s), "mean_dice": str(base)})
            rows.append({"method": "multitask", "n": str(n), "seed": str(s),
                         "mean_dice": str(base + DIFFS[s])})
    return rows


def test_summary_states_seeds_and_every_paired_difference():
    text = summarise_results(_rows(), "mean_dice", ["scratch", "multitask"], [1, 3])
    assert "| method | seeds | N=1 | N=3 |" in text
    assert "| scratch | 3 |" in text and "| multitask | 3 |" in text
    m = re.search(r"\| multitask \| \+0\.013 \[(\S+), (\S+)\] \(2\+/1− of 3: \+0\.031, "
                  r"−0\.004, \+0\.012\) \|", text)
    assert m, text
    lo, hi = (float(x.replace("−", "-")) for x in m.groups())
    # a bootstrap mean of the three draws lies between the smallest and the largest
    assert -0.004 <= lo < 0.013 < hi <= 0.031
    assert "**" not in text  # 3 draws: no gain is marked, whatever the interval


def test_bootstrap_interval_matches_the_normal_theory_interval():
    rng = np.random.default_rng(5)
    d = rng.normal(0.04, 0.05, size=400)
    lo, hi = bootstrap_interval(d)
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert abs(lo - (d.mean() - half)) < 0.1 * half and abs(hi - (d.mean() + half)) < 0.1 * half
    assert bootstrap_interval([0.2]) == (0.2, 0.2)
    assert bootstrap_interval(d[:6]) == bootstrap_interval(d[:6])  # fixed resampling seed


def test_summary_marks_a_gain_only_with_six_draws_above_zero_and_compares_to_each_reference():
    rows = []
    for s, (gain, extra) in enumerate([(0.05, 0.01), (0.07, -0.02), (0.04, 0.0), (0.06, 0.02),
                                       (0.05, -0.01), (0.08, 0.03)]):
        rows += [{"method": "scratch", "n": "1", "seed": str(s), "mean_dice": "0.4"},
                 {"method": "genesis", "n": "1", "seed": str(s), "mean_dice": str(0.4 + gain)},
                 {"method": "lines", "n": "1", "seed": str(s),
                  "mean_dice": str(0.4 + gain + extra)}]
    text = summarise_results(rows, "mean_dice", ["scratch", "genesis", "lines"], [1],
                             references=["scratch", "genesis"])
    assert "## Paired difference to scratch" in text and "## Paired difference to genesis" in text
    assert "| genesis | **+0.058** [" in text
    ref_genesis = text.split("## Paired difference to genesis")[1]
    assert "| lines | +0.005 [" in ref_genesis and "(3+/2− of 6:" in ref_genesis
    assert "| genesis |" not in ref_genesis and "| scratch |" not in ref_genesis


def test_summary_marks_a_cell_with_fewer_seeds():
    rows = [r for r in _rows() if not (r["n"] == "3" and r["seed"] == "2")]
    text = summarise_results(rows, "mean_dice", ["scratch", "multitask"], [1, 3])
    assert "(2 of 3 seeds)" in text and "(2+/0− of 2: +0.031, −0.004)" not in text
    assert "(1+/1− of 2: +0.031, −0.004)" in text


@pytest.mark.parametrize("ns", [[1, 3], [1, 2, 5, 10], [4]])
def test_plot_ticks_only_at_n_and_arms_side_by_side(ns):
    fig = results_figure(_rows(ns), "mean_dice", ["scratch", "multitask"], ns)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(n) for n in ns]
    assert list(ax.get_xticks()) == ns
    assert len(ax.get_xticks(minor=True)) == 0
    assert all(t.get_text() == "" for t in ax.get_xticklabels(minor=True))
    # one line per arm, its points shifted a little sideways of the true N, the arms apart
    xs = [[float(v) for v in bars.lines[0].get_xdata()] for bars in ax.containers]
    assert len(xs) == 2
    for x in xs:
        assert all(0.9 * n < xi < 1.1 * n for xi, n in zip(x, ns))
    assert all(a < b for a, b in zip(*xs))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["scratch (3 seeds)", "multitask (3 seeds)"]


def test_quiet_logging_sends_library_output_to_the_log(tmp_path, capsys):
    from planessl.engine import quiet_logging

    lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    before = logging.getLogger("pytorch_lightning").handlers[:]
    with quiet_logging(tmp_path / "run" / "log.txt") as log:
        log("cell scratch N=1")
        lightning.info("GPU available: False, used: False")
        warnings.warn("a library warning", UserWarning)
        print("a stray print")
    assert capsys.readouterr() == ("", "")
    text = (tmp_path / "run" / "log.txt").read_text()
    for expected in ("cell scratch N=1", "GPU available", "UserWarning: a library warning",
                     "a stray print"):
        assert expected in text
    assert logging.getLogger("pytorch_lightning").handlers == before


def test_quiet_logging_logs_the_error_and_raises(tmp_path):
    from planessl.engine import quiet_logging

    with pytest.raises(RuntimeError, match="boom"):
        with quiet_logging(tmp_path / "log.txt"):
            raise RuntimeError("boom")
    assert "run failed" in (tmp_path / "log.txt").read_text()


def test_one_seed_gives_no_spread():
    rows = _rows(seeds=(0,))
    text = summarise_results(rows, "mean_dice", ["scratch", "multitask"], [1, 3])
    assert "| multitask | 1 | 0.581 | 0.681 |" in text
    assert "| multitask | +0.031 (1+/0− of 1) | +0.031 (1+/0− of 1) |" in text
    ax = results_figure(rows, "mean_dice", ["scratch", "multitask"], [1, 3]).axes[0]
    assert "no error bars" in ax.get_title()
    assert all(not bars.has_yerr for bars in ax.containers)


def test_learning_curves_read_every_cell_and_draw_one_line_per_seed(tmp_path):
    from planessl.evaluation.curves import learning_curves_figure, plot_learning_curves, read_curves

    for method, n, seed, vals in [("scratch", 1, 0, [0.2, 0.4]), ("scratch", 1, 1, [0.3, 0.5]),
                                  ("slices", 2, 0, [0.1, 0.6])]:
        run = tmp_path / "cells" / f"{method}-n{n}-s{seed}" / "run"
        run.mkdir(parents=True)
        rows = ["epoch,step,train_loss,val_dice", "0,49,0.9,", f"0,99,,{vals[0]}", f"1,199,,{vals[1]}"]
        (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "cells" / "broken-n1-s0").mkdir()  # no metrics: left out
    curves = read_curves(tmp_path / "cells", "val_dice")
    assert curves[("scratch", 1, 1)] == [(99, 0.3), (199, 0.5)]
    assert set(curves) == {("scratch", 1, 0), ("scratch", 1, 1), ("slices", 2, 0)}
    fig = learning_curves_figure(curves, ["scratch", "slices"], [1, 2])
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["N=1", "N=2"]
    assert [len(ax.lines) for ax in panels] == [2, 1]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["scratch", "slices"]
    assert plot_learning_curves(tmp_path / "cells", ["scratch", "slices"], [1, 2], tmp_path / "lc.png")
    assert (tmp_path / "lc.png").stat().st_size > 1000
    assert not plot_learning_curves(tmp_path / "nothing", ["scratch"], [1], tmp_path / "no.png")
    # an interrupted or running cell (not among the finished rows) is left out
    assert set(read_curves(tmp_path / "cells", "val_dice", {("scratch", 1, 0), ("slices", 2, 0)})) \
        == {("scratch", 1, 0), ("slices", 2, 0)}
