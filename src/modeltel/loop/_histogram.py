"""Score distributions for the report: reference and current shares in shared equal-width bins."""

from __future__ import annotations

from typing import Final

import numpy as np

from modeltel.loop._drift import SCORE, Sample
from modeltel.loop._result import ScoreHistogram

__all__ = ["HISTOGRAM_BINS", "score_histogram"]

HISTOGRAM_BINS: Final = 20


def score_histogram(reference: Sample, current: Sample, bins: int = HISTOGRAM_BINS) -> ScoreHistogram | None:
    """Shares of reference and current scores per bin over their joint range ([0, 1] if inside it)."""
    ref = reference.numeric.get(SCORE, np.empty(0))
    cur = current.numeric.get(SCORE, np.empty(0))
    both = np.concatenate([ref, cur])
    if both.size == 0:
        return None
    lo, hi = float(both.min()), float(both.max())
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    elif hi == lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)

    def shares(values: np.ndarray) -> tuple[float, ...]:
        counts, _ = np.histogram(values, bins=edges)
        return tuple(float(c) / max(values.size, 1) for c in counts)

    return ScoreHistogram(tuple(float(e) for e in edges), shares(ref), shares(cur))
