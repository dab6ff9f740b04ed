"""Small statistics on in-memory samples: PSI, KS, Spearman correlation and trailing bands.

Drift is computed on samples (at most ``SAMPLE_CAP`` values per window, chosen by a hash of the
prediction id), so these functions see bounded arrays whatever the data size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "PSI_BINS",
    "PSI_EPSILON",
    "Band",
    "ks_statistic",
    "psi_categorical",
    "psi_numeric",
    "quantile_edges",
    "spearman",
    "trailing_band",
]

PSI_BINS: Final = 10
# An empty bin would make ln(cur / ref) infinite; a share floor of 1e-4 (0.01%) keeps PSI
# finite while a bin that empties out still contributes about 0.1 * ln(0.1 / 1e-4) ~ 0.69.
PSI_EPSILON: Final = 1e-4


def _finite(values: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def quantile_edges(reference: ArrayLike, bins: int = PSI_BINS) -> NDArray[np.float64]:
    """Inner bin edges at the reference's 1/bins .. (bins-1)/bins quantiles, duplicates merged.

    Edges are observed values (inverted CDF), so a discrete feature gets one bin per value
    rather than edges interpolated between values.
    """
    ref = _finite(reference)
    if ref.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(ref, np.arange(1, bins) / bins, method="inverted_cdf"))


def _shares(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    # side="left": a value equal to an edge falls in the bin that edge closes, (lo, hi].
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    return counts / max(values.size, 1)


def _psi_from_shares(ref: NDArray[np.float64], cur: NDArray[np.float64]) -> float:
    ref = np.maximum(ref, PSI_EPSILON)
    cur = np.maximum(cur, PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_numeric(reference: ArrayLike, current: ArrayLike, bins: int = PSI_BINS) -> float | None:
    """Population stability index with quantile bins from the reference; None if either is empty."""
    ref, cur = _finite(reference), _finite(current)
    if ref.size == 0 or cur.size == 0:
        return None
    edges = quantile_edges(ref, bins)
    return _psi_from_shares(_shares(ref, edges), _shares(cur, edges))


def psi_categorical(reference: Mapping[str, int], current: Mapping[str, int]) -> float | None:
    """PSI with one bin per category, from category counts; None if either side is empty."""
    ref_total, cur_total = sum(reference.values()), sum(current.values())
    if ref_total == 0 or cur_total == 0:
        return None
    categories = sorted(set(reference) | set(current))
    ref = np.array([reference.get(c, 0) for c in categories]) / ref_total
    cur = np.array([current.get(c, 0) for c in categories]) / cur_total
    return _psi_from_shares(ref, cur)


def ks_statistic(reference: ArrayLike, current: ArrayLike) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic (max CDF distance); None if either is empty."""
    ref, cur = np.sort(_finite(reference)), np.sort(_finite(current))
    if ref.size == 0 or cur.size == 0:
        return None
    points = np.concatenate([ref, cur])
    cdf_ref = np.searchsorted(ref, points, side="right") / ref.size
    cdf_cur = np.searchsorted(cur, points, side="right") / cur.size
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


def _average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    averaged: NDArray[np.float64] = sums[inverse] / counts[inverse]
    return averaged


def spearman(x: ArrayLike, y: ArrayLike) -> float | None:
    """Spearman rank correlation (ties get average ranks); None if either side is constant."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return None
    return float(np.corrcoef(_average_ranks(a), _average_ranks(b))[0, 1])


@dataclass(frozen=True)
class Band:
    """Mean +- ``width`` standard deviations of the previous periods' values."""

    mean: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the band (edges included, plus float rounding slack)."""
        slack = 1e-9 * max(1.0, abs(self.mean))
        return self.low - slack <= value <= self.high + slack


def trailing_band(history: Sequence[float], width: float = 3.0, minimum: int = 3) -> Band | None:
    """The band from ``history`` (sample std), or None with fewer than ``minimum`` values."""
    values = [v for v in history if math.isfinite(v)]
    if len(values) < minimum:
        return None
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1))
    return Band(mean, mean - width * std, mean + width * std)
