"""PSI, KS, Spearman and trailing bands on in-memory samples."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy.stats import ks_2samp, spearmanr

from modeltel.loop._stats import (
    PSI_EPSILON,
    ks_statistic,
    psi_categorical,
    psi_numeric,
    quantile_edges,
    spearman,
    trailing_band,
)


def test_psi_of_identical_samples_is_zero() -> None:
    """The same sample against itself has PSI 0."""
    values = np.random.default_rng(1).normal(size=2000)
    assert psi_numeric(values, values) == 0.0


def test_psi_equals_the_formula_on_reference_quantile_bins() -> None:
    """PSI is sum((cur - ref) * ln(cur / ref)) over the reference's decile bins."""
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(size=5000), rng.normal(0.3, 1.0, 5000)
    edges = np.quantile(ref, np.arange(1, 10) / 10, method="inverted_cdf")
    r = np.bincount(np.searchsorted(edges, ref), minlength=10) / ref.size
    c = np.bincount(np.searchsorted(edges, cur), minlength=10) / cur.size
    assert psi_numeric(ref, cur) == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-12)


def test_psi_with_empty_bins_is_finite_and_uses_the_epsilon_floor() -> None:
    """Current values all in one bin: empty bins are floored at PSI_EPSILON, PSI stays finite."""
    ref = np.arange(1000, dtype=float)
    cur = np.full(500, 5000.0)
    r = np.full(10, 0.1)
    c = np.array([PSI_EPSILON] * 9 + [1.0])
    psi = psi_numeric(ref, cur)
    assert psi is not None and math.isfinite(psi)
    assert psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-12)


def test_psi_of_a_discrete_feature_merges_duplicate_edges() -> None:
    """A feature with three values gets edges at those values, not interpolated ones."""
    ref = np.array([0.0] * 50 + [1.0] * 30 + [2.0] * 20)
    assert quantile_edges(ref).tolist() == [0.0, 1.0, 2.0]


def test_psi_categorical_counts_new_categories() -> None:
    """A category absent from the reference contributes through the epsilon floor."""
    ref, cur = Counter({"DE": 50, "FR": 50}), Counter({"DE": 50, "FR": 40, "US": 10})
    r, c = np.array([0.5, 0.5, PSI_EPSILON]), np.array([0.5, 0.4, 0.1])
    assert psi_categorical(ref, cur) == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-12)


def test_ks_statistic_equals_scipy() -> None:
    """The KS statistic equals scipy.stats.ks_2samp's, ties included."""
    rng = np.random.default_rng(3)
    ref, cur = np.round(rng.normal(size=3000), 2), np.round(rng.normal(0.1, 1.2, 2000), 2)
    assert ks_statistic(ref, cur) == pytest.approx(ks_2samp(ref, cur).statistic, abs=1e-12)


def test_spearman_equals_scipy_with_ties() -> None:
    """Spearman's rho with tied values equals scipy's."""
    x = [1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 4.0, 7.0]
    y = [0.1, 0.3, 0.2, 0.2, 0.9, 0.5, 0.7, 0.8]
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_of_a_constant_series_is_undefined() -> None:
    """A constant series has no ranks to correlate."""
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


def test_trailing_band_is_mean_plus_minus_three_sample_std() -> None:
    """The band is mean +- 3 * std(ddof=1) of the history."""
    history = [0.80, 0.82, 0.81, 0.79, 0.83]
    band = trailing_band(history)
    std = float(np.std(history, ddof=1))
    assert band is not None
    assert (band.low, band.high) == pytest.approx((np.mean(history) - 3 * std, np.mean(history) + 3 * std))


def test_trailing_band_needs_three_values() -> None:
    """Fewer than three past values give no band."""
    assert trailing_band([0.8, 0.9]) is None
