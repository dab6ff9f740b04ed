"""Backtest: which drift signals moved when model quality moved, and so deserve an alert.

For every period after the reference window we have each signal's drift against the reference
and the model's quality change |quality(period) - quality(reference)|. A signal that earns
trust rises in the same periods the quality moves: its Spearman rank correlation with the
quality change is high. Seasonal signals swing without quality moving and score near zero,
so their alerts can be down-weighted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from modeltel.loop._stats import spearman

__all__ = ["MIN_PERIODS", "NOISE_BELOW", "TRUST_AT", "SignalTrust", "backtest"]

MIN_PERIODS: Final = 5
TRUST_AT: Final = 0.5
NOISE_BELOW: Final = 0.2


@dataclass(frozen=True)
class SignalTrust:
    """One drift signal's backtest: rank correlation with quality change, and the verdict."""

    signal: str
    periods: int
    correlation: float | None
    verdict: str


def _verdict(correlation: float | None, periods: int, min_periods: int) -> str:
    if periods < min_periods:
        return "insufficient history"
    if correlation is None:
        return "constant"
    if correlation >= TRUST_AT:
        return "trusted"
    return "noise" if correlation < NOISE_BELOW else "weak"


def backtest(
    signals: Mapping[str, Sequence[float | None]],
    quality_change: Sequence[float | None],
    min_periods: int = MIN_PERIODS,
) -> list[SignalTrust]:
    """Rank ``signals`` (one value per period) by Spearman correlation with ``quality_change``.

    Periods where either value is missing are skipped. Verdicts: ``trusted`` (rho >= 0.5),
    ``weak`` (0.2 <= rho < 0.5), ``noise`` (rho < 0.2), ``constant`` (a series that never
    moved), or ``insufficient history`` (fewer than ``min_periods`` periods).
    """
    results: list[SignalTrust] = []
    for name, series in signals.items():
        pairs = [
            (s, q)
            for s, q in zip(series, quality_change, strict=True)
            if s is not None and q is not None and math.isfinite(s) and math.isfinite(q)
        ]
        rho = spearman([p[0] for p in pairs], [p[1] for p in pairs]) if len(pairs) >= 2 else None
        results.append(SignalTrust(name, len(pairs), rho, _verdict(rho, len(pairs), min_periods)))
    return sorted(results, key=lambda t: (t.correlation is None, -(t.correlation or 0.0), t.signal))
