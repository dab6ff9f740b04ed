"""Statistical drift: PSI and KS of the score and of sampled features, window against reference.

Windows are named by a SQL expression over ``ts`` (e.g. ``'reference'``/``'current'`` or one
name per period). At most ``SAMPLE_CAP`` rows per group and window are kept, chosen by a hash
of the prediction id so the sample is uniform, repeatable and the same rows across runs.

A signal is *flagged* when PSI >= ``PSI_ALERT`` (the usual "significant shift" level), or when
the KS statistic is both >= ``KS_ALERT`` and above its critical value at alpha = 0.001 (a
shift large enough to matter and too large to be sampling noise).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from modeltel.loop._metrics import Key
from modeltel.loop._profile import Profile
from modeltel.loop._stats import ks_critical, ks_statistic, psi_categorical, psi_numeric

__all__ = [
    "KS_ALERT",
    "PSI_ALERT",
    "SAMPLE_CAP",
    "DriftSignal",
    "Sample",
    "compare",
    "profile_sample",
    "window_samples",
]

SAMPLE_CAP: Final = 50_000
PSI_ALERT: Final = 0.2
KS_ALERT: Final = 0.1
SCORE: Final = "score"


@dataclass
class Sample:
    """Values of every signal in one window: numeric arrays and categorical counts."""

    numeric: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    categorical: dict[str, Counter[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftSignal:
    """One signal's drift between a reference and a current window."""

    signal: str
    kind: str
    psi: float | None
    ks: float | None
    n_reference: int
    n_current: int
    flagged: bool


def _sampled(source: str, keys: Sequence[str], window: str, cap: int) -> str:
    k = ", ".join(keys)
    return f"""
        WITH w AS (SELECT *, {window} AS win FROM ({source}) WHERE {window} IS NOT NULL),
        sizes AS (SELECT {k}, win, count(*) AS size FROM w GROUP BY ALL)
        SELECT w.* FROM w JOIN sizes USING ({k}, win)
        WHERE CAST(hash(w.prediction_id) AS DOUBLE) / 18446744073709551616.0 < {cap} / size
    """


def window_samples(
    con: Any, keys: Sequence[str], window: str, cap: int = SAMPLE_CAP
) -> dict[tuple[Key, str], Sample]:
    """Score and feature samples per (group key, window name)."""
    k = ", ".join(keys)
    samples: dict[tuple[Key, str], Sample] = {}
    scores = _sampled(
        f"SELECT {k}, ts, prediction_id, score FROM joined WHERE isfinite(score)", keys, window, cap
    )
    for row in con.execute(f"SELECT {k}, win, list(score) FROM ({scores}) GROUP BY ALL").fetchall():
        key, win, values = tuple(row[: len(keys)]), row[len(keys)], row[-1]
        samples.setdefault((key, win), Sample()).numeric[SCORE] = np.asarray(values, dtype=np.float64)
    features = _sampled("SELECT * FROM feature_values", [*keys, "feature"], window, cap)
    query = f"""
        SELECT {k}, win, feature, list(num) FILTER (WHERE num IS NOT NULL),
               list(str) FILTER (WHERE num IS NULL AND str IS NOT NULL)
        FROM ({features}) GROUP BY ALL
    """
    for row in con.execute(query).fetchall():
        key, (win, feature, numbers, texts) = tuple(row[: len(keys)]), row[len(keys) :]
        sample = samples.setdefault((key, win), Sample())
        if numbers:
            sample.numeric[feature] = np.asarray(numbers, dtype=np.float64)
        if texts:
            sample.categorical[feature] = Counter(texts)
    return samples


def profile_sample(profile: Profile) -> Sample:
    """A profile as a reference :class:`Sample`."""
    numeric = {name: np.asarray(values, dtype=np.float64) for name, values in profile.numeric.items()}
    return Sample(numeric, {name: Counter(counts) for name, counts in profile.categorical.items()})


def _flag(psi: float | None, ks: float | None, n: int, m: int) -> bool:
    if psi is not None and psi >= PSI_ALERT:
        return True
    return ks is not None and ks >= KS_ALERT and ks > ks_critical(n, m)


def compare(reference: Sample, current: Sample, signals: Sequence[str] | None = None) -> list[DriftSignal]:
    """Drift of every signal present in both samples (or only ``signals``), score first."""
    wanted = set(signals) | {SCORE} if signals is not None else None
    result: list[DriftSignal] = []
    for name in sorted(reference.numeric.keys() & current.numeric.keys(), key=lambda s: (s != SCORE, s)):
        if wanted is not None and name not in wanted:
            continue
        ref, cur = reference.numeric[name], current.numeric[name]
        psi, ks = psi_numeric(ref, cur), ks_statistic(ref, cur)
        result.append(
            DriftSignal(name, "numeric", psi, ks, ref.size, cur.size, _flag(psi, ks, ref.size, cur.size))
        )
    for name in sorted(reference.categorical.keys() & current.categorical.keys()):
        if wanted is not None and name not in wanted:
            continue
        ref_counts, cur_counts = reference.categorical[name], current.categorical[name]
        psi = psi_categorical(ref_counts, cur_counts)
        n, m = sum(ref_counts.values()), sum(cur_counts.values())
        result.append(DriftSignal(name, "categorical", psi, None, n, m, _flag(psi, None, n, m)))
    return result
