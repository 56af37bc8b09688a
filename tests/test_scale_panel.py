"""The rep x product panel generator of the scale benchmark (salesops_models.data.scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.data import generate_sample_company
from salesops_models.data.scale import (
    RepProductPanel,
    RepProductPatterns,
    rep_product_patterns,
    scale_rep_product_panel,
)
from salesops_models.errors import DataValidationError
from salesops_models.forecast.hierarchy import build_hierarchy


def _patterns(season: np.ndarray | None = None, start: int = 0) -> RepProductPatterns:
    """One source rep (2 deals a month), one product whose every deal is worth exactly 1."""
    return RepProductPatterns(
        months=pd.period_range("2023-01", periods=36, freq="M"),
        seasonality=np.ones(12) if season is None else season,
        monthly_log_growth=0.0,
        rep_rate=np.array([2.0]),
        rep_start=np.array([start]),
        rep_region=np.array(["West"]),
        product_names=("Core",),
        product_share=np.array([1.0]),
        size_logmean=np.array([0.0]),
        size_logsd=np.array([0.0]),
    )


def test_cells_are_poisson_counts_of_the_stated_rate():
    # deals worth 1 and no spread: each cell is Poisson(2 x seasonal index); 2,000 x 36 cells
    season = np.r_[np.full(6, 0.5), np.full(6, 1.5)]
    panel = scale_rep_product_panel(
        _patterns(season), 2000, n_products=1, seed=3, rep_spread=0.0, product_spread=0.0
    ).panel
    y = panel.to_numpy()
    assert np.array_equal(y, np.round(y))
    first_half = y[np.asarray(panel.index.month) <= 6]
    second_half = y[np.asarray(panel.index.month) > 6]
    for cells, rate in ((first_half, 1.0), (second_half, 3.0)):
        se = np.sqrt(rate / cells.size)
        assert abs(cells.mean() - rate) < 4 * se
        assert abs(cells.var() / cells.mean() - 1.0) < 0.05  # Poisson: variance = mean


def test_no_bookings_before_a_reps_hire_month():
    panel = scale_rep_product_panel(_patterns(start=20), 50, n_products=5, seed=1).panel
    assert (panel.iloc[:20] == 0).all().all()
    by_rep = panel.iloc[20:].T.groupby(lambda label: label.split("/")[1]).sum().sum(axis=1)
    assert len(by_rep) == 10 and (by_rep > 0).all()  # 2 deals a month: a rep without one is e^-32 unlikely


def test_same_seed_same_panel_other_seed_other_panel():
    pat = rep_product_patterns(generate_sample_company(n_accounts=400, n_reps=10, seed=2))
    a = scale_rep_product_panel(pat, 60, n_products=6, seed=11)
    b = scale_rep_product_panel(pat, 60, n_products=6, seed=11)
    c = scale_rep_product_panel(pat, 60, n_products=6, seed=12)
    pd.testing.assert_frame_equal(a.panel, b.panel, check_exact=True)
    assert not np.array_equal(a.panel.to_numpy(), c.panel.to_numpy())
    assert a.panel.shape == (len(pat.months), 60)
    assert (a.panel.to_numpy() >= 0).all()
    # the labels are the bottom labels of the company > region > rep > product hierarchy
    h = build_hierarchy(a.keys, RepProductPanel.LEVELS, RepProductPanel.LEVEL_NAMES, label="path")
    assert h.bottom_labels == list(a.panel.columns)
    assert h.n == 1 + a.keys["region"].nunique() + 10 + 60


def test_patterns_of_the_sample_company():
    company = generate_sample_company()
    pat = rep_product_patterns(company)
    assert pat.product_names == tuple(sorted(company.opportunities["product"].unique()))
    assert np.isclose(pat.product_share.sum(), 1.0)
    assert np.isclose(pat.seasonality.mean(), 1.0)
    # the sample creates deals with 12%/yr growth; won deals by close month grow alike
    assert 0.05 < pat.yearly_growth < 0.25
    won = company.opportunities.query("status == 'won'")
    assert len(pat.rep_rate) == won["rep_id"].nunique() and (pat.rep_rate > 0).all()


def test_a_count_that_is_not_a_multiple_of_the_products_is_a_clear_error():
    with pytest.raises(DataValidationError, match="multiple of 10"):
        scale_rep_product_panel(_patterns(), 105, n_products=10)
