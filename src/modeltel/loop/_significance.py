"""Is a difference between two samples evidence of change, or sampling noise? p-values and their
correction for testing many signals at once.

* Numeric signals: the two-sample Kolmogorov-Smirnov test, asymptotic p-value with Stephens'
  small-sample correction (accurate to a few percent from ~50 values a side; conservative with
  ties, so discrete features raise fewer alarms, never more).
* Categorical signals: Pearson's chi-square test of homogeneity on the 2 x k table of counts.
  Categories too rare for the approximation (an expected count under 5 on either side) are pooled
  into one cell first, so a handful of rare values cannot fake evidence.
* Many signals: Benjamini-Hochberg. When nothing changed, the chance that a comparison flags any
  signal is at most ``q``; when some did, at most a share ``q`` of the flags are expected false.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["benjamini_hochberg", "chi2_homogeneity", "ks_pvalue", "total_variation"]

_MIN_EXPECTED = 5.0


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """P(D >= ``statistic``) for samples of sizes ``n`` and ``m`` from one distribution."""
    if n <= 0 or m <= 0:
        return 1.0
    root = math.sqrt(n * m / (n + m))
    lam = (root + 0.12 + 0.11 / root) * statistic
    if lam < 0.2:  # the series below converges slowly here, and its value is 1 to 1e-9
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = (-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-16:
            break
    return min(1.0, max(0.0, 2.0 * total))


def chi2_homogeneity(reference: Mapping[str, int], current: Mapping[str, int]) -> float:
    """The p-value of Pearson's chi-square test that both count tables share one distribution."""
    n, m = sum(reference.values()), sum(current.values())
    if n <= 0 or m <= 0:
        return 1.0
    cells = _pooled([(reference.get(c, 0), current.get(c, 0)) for c in set(reference) | set(current)], n, m)
    if len(cells) < 2:
        return 1.0
    total = n + m
    statistic = 0.0
    for a, b in cells:
        column = a + b
        for observed, side in ((a, n), (b, m)):
            expected = side * column / total
            statistic += (observed - expected) ** 2 / expected
    return _chi2_survival(statistic, len(cells) - 1)


def _pooled(cells: list[tuple[int, int]], n: int, m: int) -> list[tuple[int, int]]:
    """Cells with an expected count of at least 5 on both sides; the rest summed into one."""
    total = n + m
    kept, rare_a, rare_b = [], 0, 0
    for a, b in cells:
        column = a + b
        if min(n, m) * column / total >= _MIN_EXPECTED:
            kept.append((a, b))
        else:
            rare_a, rare_b = rare_a + a, rare_b + b
    if rare_a + rare_b:
        kept.append((rare_a, rare_b))
    return kept


def _chi2_survival(x: float, df: int) -> float:
    """P(X >= x) for X chi-square with ``df`` degrees of freedom: Q(df/2, x/2)."""
    if x <= 0:
        return 1.0
    a, half = df / 2.0, x / 2.0
    if half < a + 1.0:
        return max(0.0, 1.0 - _lower_series(a, half))
    return _upper_fraction(a, half)


def _lower_series(a: float, x: float) -> float:
    """P(a, x), the regularized lower incomplete gamma, by its series (x < a + 1)."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(1000):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x) by Lentz's continued fraction (x >= a + 1)."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def total_variation(reference: Mapping[str, int], current: Mapping[str, int]) -> float | None:
    """Half the L1 distance between the category shares: the largest change in the probability of
    any set of categories (0: the same shares, 1: no category in common)."""
    n, m = sum(reference.values()), sum(current.values())
    if n <= 0 or m <= 0:
        return None
    categories = set(reference) | set(current)
    return 0.5 * sum(abs(reference.get(c, 0) / n - current.get(c, 0) / m) for c in categories)


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[bool]:
    """Which of ``p_values`` are discoveries at false discovery rate ``q``."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    count = len(p_values)
    cutoff = 0
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= q * rank / count:
            cutoff = rank
    chosen = set(order[:cutoff])
    return [i in chosen for i in range(count)]
