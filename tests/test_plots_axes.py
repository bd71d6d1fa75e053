"""The dimension plot follows the series rule: one line (and legend entry, and fit) per swept
learning rate; declared landscape draws pooled into one line; a D whose median is beyond the
budget is drawn apart, as a hollow marker at the budget with an arrow up."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
from test_analysis_axes import _drawn, _two_rates
from test_figures import _legend_texts, _series_lines

from saddle import plots

matplotlib.use("Agg")


def _measured_legend(ax):
    return [t for t in _legend_texts(ax) if not t.startswith("theory:")]


def test_two_learning_rates_are_two_series_with_their_own_fits():
    fig = plots.plot_dimension(_two_rates())
    ax = fig.axes[0]
    names = sorted(ln.get_gid() for ln in _series_lines(ax))
    assert names == ["series:learning_rate=0.1", "series:learning_rate=1000.0"]
    legend = _measured_legend(ax)
    assert len(legend) == 2, legend
    for t in legend:  # each its own fit: b = 0.5, not one pooled b = 0.00 [-2, 2]
        b, lo, hi = map(float, re.search(r"b=(\S+) \[(\S+), (\S+)\]", t).groups())
        assert abs(b - 0.5) < 0.03 and hi - lo < 0.1, t
    fits = _series_lines(ax, "fit")
    assert len(fits) == 2
    matplotlib.pyplot.close(fig)


def test_declared_draws_make_one_line():
    fig = plots.plot_dimension(_drawn())
    ax = fig.axes[0]
    assert [ln.get_gid() for ln in _series_lines(ax)] == ["series:all runs"]
    assert len(_measured_legend(ax)) == 1
    matplotlib.pyplot.close(fig)


def _one_rate_censored_at_the_top() -> pd.DataFrame:
    df = _two_rates()
    top = (df["learning_rate"] == 1000) & (df["D"] == 1024)
    df.loc[top, ["status", "escaped", "escape_time", "steps"]] = ("censored", False, None,
                                                                  10_000)
    return df


def test_censored_D_is_drawn_as_a_lower_bound_at_the_budget():
    fig = plots.plot_dimension(_one_rate_censored_at_the_top())
    ax = fig.axes[0]
    series = {ln.get_gid(): ln for ln in _series_lines(ax)}
    big = series["series:learning_rate=1000.0"]
    assert len(big.get_xdata()) == 2 and np.max(big.get_xdata()) < 1024 * 1.2  # 64, 256 only
    cens = _series_lines(ax, "censored")
    assert [ln.get_gid() for ln in cens] == ["censored:learning_rate=1000.0"]
    (ln,) = cens
    assert np.allclose(ln.get_ydata(), 10_000) and len(ln.get_xdata()) == 1
    assert ln.get_markerfacecolor() == "none"  # hollow
    assert np.isclose(ln.get_xdata()[0], 1024, rtol=0.2)
    # an upward arrow (lolims caps) sits above the budget
    from matplotlib.markers import CARETUPBASE

    (box,) = [c for c in ax.containers if c.lines[0] is ln]
    ups = [cap for cap in box.lines[1] if cap.get_marker() == CARETUPBASE]
    assert len(ups) == 1 and float(ups[0].get_ydata()[0]) > 10_000
    assert "median beyond the budget" in " ".join(t.get_text() for t in ax.texts)
    assert len(_measured_legend(ax)) == 2
    matplotlib.pyplot.close(fig)
