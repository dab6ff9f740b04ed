"""Statistical drift: PSI and KS of the score and of sampled features, window against reference.

Windows are named by a SQL expression over ``ts`` (e.g. ``'reference'``/``'current'`` or one
name per period). At most ``SAMPLE_CAP`` rows per group and window are kept, chosen by a hash
of the prediction id so the sample is uniform, repeatable and the same rows across runs.

Each signal gets a state, from its effect size and the evidence for it together:

* ``not enough data``: fewer than ``MIN_SAMPLE`` values on either side. Never "drift": PSI on a
  few dozen values is mostly sampling noise (10 bins of 30 values each side average ~0.6).
* ``drift``: the change is large enough to matter (KS >= ``KS_EFFECT`` for numbers, total
  variation >= ``TV_EFFECT`` for categories) *and* too large to be noise: its p-value (KS test;
  chi-square for categories) is a discovery under Benjamini-Hochberg at ``FALSE_ALARM_RATE``
  across every signal of the comparison. When nothing changed, a comparison flags anything at
  most 1% of the time, whatever the sample size and however many features are sampled.
* ``stable``: otherwise.

PSI is reported beside them as the familiar effect size; it decides nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from modeltel.loop._dialect import dialect, finite
from modeltel.loop._join import SAMPLE_KEY
from modeltel.loop._metrics import Key
from modeltel.loop._profile import Profile
from modeltel.loop._significance import benjamini_hochberg, chi2_homogeneity, ks_pvalue, total_variation
from modeltel.loop._stats import ks_statistic, psi_categorical, psi_numeric

__all__ = [
    "DRIFT",
    "FALSE_ALARM_RATE",
    "KS_EFFECT",
    "MIN_SAMPLE",
    "NOT_ENOUGH_DATA",
    "SAMPLE_CAP",
    "STABLE",
    "TV_EFFECT",
    "DriftSignal",
    "Sample",
    "compare",
    "profile_sample",
    "score_samples",
    "window_samples",
]

SAMPLE_CAP: Final = 50_000
MIN_SAMPLE: Final = 50
FALSE_ALARM_RATE: Final = 0.01
KS_EFFECT: Final = 0.05
TV_EFFECT: Final = 0.05
SCORE: Final = "score"
DRIFT, STABLE, NOT_ENOUGH_DATA = "drift", "stable", "not enough data"


@dataclass
class Sample:
    """Values of every signal in one window: numeric arrays and categorical counts."""

    numeric: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    categorical: dict[str, Counter[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftSignal:
    """One signal's drift between a reference and a current window.

    ``effect`` is KS for a numeric signal and total variation for a categorical one; ``p_value``
    the evidence against "no change" (KS test, chi-square); ``state`` one of ``drift``,
    ``stable`` and ``not enough data``; ``flagged`` is ``state == "drift"``.
    """

    signal: str
    kind: str
    psi: float | None
    ks: float | None
    n_reference: int
    n_current: int
    flagged: bool
    effect: float | None = None
    p_value: float | None = None
    state: str = STABLE


def _sampled(source: str, keys: Sequence[str], window: str, cap: int, unit: str) -> str:
    """Rows of ``source`` (as ``w``), at most about ``cap`` per group and window: a row is kept
    when ``unit``, its number in [0, 1), is below cap / size."""
    k = ", ".join(keys)
    # ``sizes`` has a row per group and window: Spark otherwise plans a shuffle of every row of
    # ``w`` for this join before it learns that (DuckDB reads the hint as a comment).
    return f"""
        WITH w AS (SELECT *, {window} AS win FROM ({source}) WHERE {window} IS NOT NULL),
        sizes AS (SELECT {k}, win, count(*) AS size FROM w GROUP BY ALL)
        SELECT /*+ BROADCAST(sizes) */ w.* FROM w JOIN sizes USING ({k}, win)
        WHERE size <= {cap} OR {unit} < {cap} / size
    """


def window_samples(
    con: Any,
    keys: Sequence[str],
    window: str,
    cap: int = SAMPLE_CAP,
    scores: Mapping[tuple[Key, str], NDArray[np.float64]] | None = None,
) -> dict[tuple[Key, str], Sample]:
    """Score and feature samples per (group key, window name); ``scores``, when given, are the
    score samples of these windows already drawn by :func:`score_samples`."""
    k = ", ".join(keys)
    samples: dict[tuple[Key, str], Sample] = {}
    drawn = score_samples(con, keys, window, cap) if scores is None else scores
    for (key, win), values in drawn.items():
        samples.setdefault((key, win), Sample()).numeric[SCORE] = values
    unit = dialect(con).unit_hash(SAMPLE_KEY.format(t="w"))
    features = _sampled("SELECT * FROM feature_values", [*keys, "feature"], window, cap, unit)
    query = f"""
        SELECT {k}, win, feature, array_agg(num) FILTER (WHERE num IS NOT NULL),
               array_agg(str) FILTER (WHERE num IS NULL AND str IS NOT NULL)
        FROM ({features}) GROUP BY ALL
    """
    for row in con.execute(query).fetchall():
        key, (win, feature, numbers, texts) = tuple(row[: len(keys)]), row[len(keys) :]
        sample = samples.setdefault((key, str(win)), Sample())
        if numbers:
            sample.numeric[feature] = np.asarray(numbers, dtype=np.float64)
        if texts:
            sample.categorical[feature] = Counter(texts)
    return samples


def score_samples(
    con: Any, keys: Sequence[str], window: str, cap: int = SAMPLE_CAP
) -> dict[tuple[Key, str], NDArray[np.float64]]:
    """Finite scores per (group key, window name), at most ``cap`` each (chosen as above)."""
    k = ", ".join(keys)
    source = f"SELECT {k}, ts, sample_unit, score FROM joined WHERE {finite('score')}"
    scores = _sampled(source, keys, window, cap, "w.sample_unit")
    found: dict[tuple[Key, str], NDArray[np.float64]] = {}
    for row in con.execute(f"SELECT {k}, win, array_agg(score) FROM ({scores}) GROUP BY ALL").fetchall():
        key, win, values = tuple(row[: len(keys)]), str(row[len(keys)]), row[-1]
        found[(key, win)] = np.asarray(values, dtype=np.float64)
    return found


def profile_sample(profile: Profile) -> Sample:
    """A profile as a reference :class:`Sample`."""
    numeric = {name: np.asarray(values, dtype=np.float64) for name, values in profile.numeric.items()}
    return Sample(numeric, {name: Counter(counts) for name, counts in profile.categorical.items()})


def compare(reference: Sample, current: Sample, signals: Sequence[str] | None = None) -> list[DriftSignal]:
    """Drift of every signal present in both samples (or only ``signals``), score first, each
    with its state (see the module's docstring)."""
    wanted = set(signals) | {SCORE} if signals is not None else None
    found: list[DriftSignal] = []
    for name in sorted(reference.numeric.keys() & current.numeric.keys(), key=lambda s: (s != SCORE, s)):
        if wanted is not None and name not in wanted:
            continue
        ref, cur = reference.numeric[name], current.numeric[name]
        ks = ks_statistic(ref, cur)
        p = None if ks is None else ks_pvalue(ks, ref.size, cur.size)
        found.append(
            DriftSignal(name, "numeric", psi_numeric(ref, cur), ks, ref.size, cur.size, False, ks, p)
        )
    for name in sorted(reference.categorical.keys() & current.categorical.keys()):
        if wanted is not None and name not in wanted:
            continue
        ref_counts, cur_counts = reference.categorical[name], current.categorical[name]
        n, m = sum(ref_counts.values()), sum(cur_counts.values())
        effect, p = total_variation(ref_counts, cur_counts), chi2_homogeneity(ref_counts, cur_counts)
        psi = psi_categorical(ref_counts, cur_counts)
        found.append(DriftSignal(name, "categorical", psi, None, n, m, False, effect, p))
    return decide(found)


def decide(signals: list[DriftSignal]) -> list[DriftSignal]:
    """``signals`` with their states: Benjamini-Hochberg over those with enough data."""
    judged = [i for i, s in enumerate(signals) if min(s.n_reference, s.n_current) >= MIN_SAMPLE]
    evident = benjamini_hochberg([_p(signals[i]) for i in judged], FALSE_ALARM_RATE)
    states = dict.fromkeys(range(len(signals)), NOT_ENOUGH_DATA)
    for i, discovery in zip(judged, evident, strict=True):
        states[i] = DRIFT if discovery and _large(signals[i]) else STABLE
    return [replace(s, state=states[i], flagged=states[i] == DRIFT) for i, s in enumerate(signals)]


def _p(signal: DriftSignal) -> float:
    return 1.0 if signal.p_value is None else signal.p_value


def _large(signal: DriftSignal) -> bool:
    floor = KS_EFFECT if signal.kind == "numeric" else TV_EFFECT
    return signal.effect is not None and signal.effect >= floor
