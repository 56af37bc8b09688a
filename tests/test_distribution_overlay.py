"""The sweep's overlay chart: every child's distribution drawn, none dropped past a panel limit."""

from __future__ import annotations

import numpy as np

from salesops_models.workflow.charts import MAX_PANELS, distribution_overlay_chart


def test_every_scenario_gets_its_own_cumulative_curve_beyond_the_panel_limit():
    rng = np.random.default_rng(0)
    n = 3 * MAX_PANELS  # a sweep of 18 children
    cost = {f"child{i}": rng.normal(1e6 + 1e4 * i, 5e4, 500) for i in range(n)}
    bookings = {f"child{i}": rng.normal(5e7, 2e6, 500) for i in range(n - 1)}
    fig = distribution_overlay_chart({"cost": cost, "bookings": bookings, "empty": {}}, "Sweep x")
    assert fig is not None
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2  # the empty output gets no panel
    curves = [[ln for ln in ax.get_lines() if not ln.get_label().startswith("_")] for ax in axes]
    assert [len(c) for c in curves] == [n, n - 1]
    # each curve is the empirical CDF of its samples: from 1/500 to 1 over the sorted values
    x, y = curves[0][3].get_data()
    np.testing.assert_allclose(np.asarray(x, float), np.sort(cost["child3"]))
    assert float(y[0]) == 1 / 500 and float(y[-1]) == 1.0


def test_no_samples_no_chart():
    assert distribution_overlay_chart({"cost": {}, "bookings": {"a": np.array([])}}, "t") is None
