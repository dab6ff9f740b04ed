"""Drift decisions that hold their false-alarm rate at any sample size (``loop/_drift.py``).

The traffic of a 14-day run is simulated window by window: 30 numeric features of mixed shapes
(normal, skewed, heavy-tailed, integer, zero-inflated, bimodal) and two categorical ones, sampled
at 1% of 50,000 or 2,000 predictions a day (about 3,500 and 140 rows in each 7-day window), and
the score of every prediction (capped at the evaluator's 50,000 a window). Seeds are fixed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modeltel
from modeltel.loop import EvaluateOptions, evaluate
from modeltel.loop._drift import DRIFT, MIN_SAMPLE, NOT_ENOUGH_DATA, SAMPLE_CAP, Sample, compare
from modeltel.loop._durations import format_instant
from modeltel.loop._synthetic import append_records, feature_record, prediction_columns, prediction_record
from modeltel.loop._text import format_evaluation
from modeltel.testing import capture

SEEDS = range(20)
WINDOW_DAYS = 7
SAMPLE_RATE = 0.01
COUNTRIES = np.array(["DE", "FR", "US", "GB"])
CHANNELS = np.array(["web", "app", "store", "phone", "partner", "kiosk", "mail", "rare"])
CHANNEL_P = [0.3, 0.25, 0.15, 0.1, 0.08, 0.06, 0.055, 0.005]


def _numeric(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    """30 features; ``shift`` moves the mean of ``normal_0`` by that many standard deviations."""
    out: dict[str, np.ndarray] = {}
    for i in range(6):
        out[f"normal_{i}"] = rng.normal(10.0 * i, 1.0 + i, n)
    out["normal_0"] = out["normal_0"] + shift * 1.0
    for i in range(5):
        out[f"lognormal_{i}"] = rng.lognormal(1.0, 0.3 + 0.2 * i, n)
    for i in range(4):
        out[f"exponential_{i}"] = rng.exponential(1.0 + i, n)
    for i in range(4):
        out[f"student_t_{i}"] = rng.standard_t(2 + i, n)
    for i in range(4):
        out[f"count_{i}"] = rng.poisson(1.5 * (i + 1), n).astype(np.float64)  # ties
    for i in range(3):
        zero = rng.random(n) < 0.6
        out[f"zero_inflated_{i}"] = np.where(zero, 0.0, rng.gamma(2.0, 3.0 + i, n))  # ties at 0
    for i in range(2):
        pick = rng.random(n) < 0.3
        out[f"bimodal_{i}"] = np.where(pick, rng.normal(-3.0, 1.0, n), rng.normal(4.0, 2.0, n))
    out["uniform_0"] = rng.uniform(0.0, 1.0, n)
    out["beta_0"] = rng.beta(0.5, 0.5, n)
    assert len(out) == 30
    return out


def _window(rng: np.random.Generator, per_day: int, shift: float = 0.0) -> Sample:
    predictions = per_day * WINDOW_DAYS
    sampled = int(rng.binomial(predictions, SAMPLE_RATE))
    numeric = _numeric(rng, sampled, shift)
    numeric["score"] = rng.beta(2.0, 5.0, min(predictions, SAMPLE_CAP))
    categorical = {
        "country": Counter(rng.choice(COUNTRIES, sampled, p=[0.4, 0.3, 0.2, 0.1]).tolist()),
        "channel": Counter(rng.choice(CHANNELS, sampled, p=CHANNEL_P).tolist()),
    }
    return Sample(numeric, categorical)


def _feature_flags(per_day: int, shift: float, seed: int) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    reference, current = _window(rng, per_day), _window(rng, per_day, shift)
    return {s.signal: s.state for s in compare(reference, current) if s.signal != "score"}


@pytest.mark.parametrize("per_day", [50_000, 2_000])
def test_stationary_traffic_raises_at_most_one_percent_of_alarms(per_day: int) -> None:
    """Nothing changes: across 20 seeds x 32 features, at most 1% of evaluations say drift."""
    states = [state for seed in SEEDS for state in _feature_flags(per_day, 0.0, seed).values()]
    assert len(states) == len(SEEDS) * 32
    assert NOT_ENOUGH_DATA not in states  # ~140 rows a window is enough to judge
    assert states.count(DRIFT) <= 0.01 * len(states)


def test_a_quarter_sd_shift_in_one_feature_is_caught() -> None:
    """A 0.25 standard-deviation mean shift (true KS ~0.0995) at 50,000 a day: flagged in at least
    18 of 20 seeds, and the unchanged features keep their false-alarm rate meanwhile."""
    runs = [_feature_flags(50_000, 0.25, seed) for seed in SEEDS]
    caught = sum(run["normal_0"] == DRIFT for run in runs)
    assert caught >= 18
    others = [state for run in runs for name, state in run.items() if name != "normal_0"]
    assert others.count(DRIFT) <= 0.01 * len(others)


def test_a_few_dozen_rows_are_not_enough_data_never_drift() -> None:
    """~30 sampled rows a window (a new service at 1%): every feature says so, none says drift,
    however different the samples happen to look."""
    rng = np.random.default_rng(7)
    reference = Sample(
        {"amount": rng.lognormal(3, 1, 30)}, {"country": Counter(rng.choice(COUNTRIES, 30).tolist())}
    )
    current = Sample(
        {"amount": rng.lognormal(5, 1, MIN_SAMPLE - 1)},  # a real shift, on too few rows
        {"country": Counter(["DE"] * 30)},
    )
    drift = compare(reference, current)
    assert {s.state for s in drift} == {NOT_ENOUGH_DATA}
    assert not any(s.flagged for s in drift)
    assert all(s.p_value is not None and s.effect is not None for s in drift)  # shown, not hidden


def test_every_signal_reports_its_sizes_effect_and_evidence() -> None:
    rng = np.random.default_rng(3)
    drift = compare(_window(rng, 50_000), _window(rng, 50_000, 1.0))
    by_name = {s.signal: s for s in drift}
    assert drift[0].signal == "score"
    shifted = by_name["normal_0"]
    assert shifted.state == DRIFT and shifted.p_value is not None and shifted.p_value < 1e-10
    assert shifted.effect == shifted.ks and shifted.effect is not None and shifted.effect > 0.3
    country = by_name["country"]
    assert country.kind == "categorical" and country.ks is None and country.effect is not None
    assert country.n_reference > 3_000 and country.n_current > 3_000


# ---------------------------------------------------------------- through modeltel evaluate

DAY = 86_400 * 1_000_000_000
DAY0 = 1_704_067_200 * 1_000_000_000


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def test_windows_are_half_open_on_both_sides_and_say_so(tmp_path: Path) -> None:
    """A prediction at the reference's end is in the current window, not in neither; the header
    prints both as [start, end); by default the latest prediction is in the current window."""
    boundary = DAY0 + 7 * DAY
    times = [DAY0, DAY0 + DAY, boundary, boundary + DAY, DAY0 + 14 * DAY - 1]
    ids = _ids("p", len(times))
    append_records(
        tmp_path, [prediction_record("m", "1", prediction_columns(ids, times, [0.5] * len(times)))]
    )
    result = evaluate(tmp_path, EvaluateOptions(reference="7d", period="7d"))
    assert result.reference == (DAY0, boundary)
    assert result.current == (DAY0 + 7 * DAY, DAY0 + 14 * DAY)
    (group,) = result.groups
    score = next(s for s in group.drift if s.signal == "score")
    assert (score.n_reference, score.n_current) == (2, 3)
    text = format_evaluation(result)
    start, end = format_instant(DAY0), format_instant(boundary)
    assert f"reference [{start}, {end})" in text and f"current [{end}, " in text


def test_feature_records_carry_the_predictions_own_time() -> None:
    """The ``ml.features`` record's timestamp is the instant its prediction record carries."""

    @modeltel.instrument(model="timed", version="1")
    def predict(features: dict[str, float]) -> float:
        return 0.5

    with capture(feature_sample_rate=1.0, prediction_records=1.0) as c:
        predict({"x": 1.0})
        (record,) = c.feature_records()
        (row,) = c.prediction_rows()
    assert record.log_record.timestamp == row["time_unix_nano"] > 0


def test_stationary_service_telemetry_flags_nothing(tmp_path: Path) -> None:
    """End to end from the SDK's own records: a service whose traffic never changes, sampled at
    5%, evaluated with a reference and current window: no feature and no score is flagged."""
    rng = np.random.default_rng(11)
    pool = [_row(values) for values in zip(*_numeric(rng, 4_000, 0.0).values(), strict=True)]
    names = list(_numeric(np.random.default_rng(0), 1, 0.0))
    records = []
    for day in range(14):
        chosen = rng.integers(0, len(pool), 600)
        times = (DAY0 + day * DAY + np.sort(rng.integers(0, DAY, 600))).tolist()
        ids = _ids(f"d{day}", 600)
        scores = rng.beta(2.0, 5.0, 600).tolist()
        records.append(prediction_record("svc", "1", prediction_columns(ids, times, scores)))
        for i in range(0, 600, 20):  # a 5% sample
            row = dict(zip(names, pool[chosen[i]], strict=True))
            records.append(feature_record("svc", "1", row, time_ns=times[i], prediction_id=ids[i]))
    append_records(tmp_path, records, per_line=100)
    result = evaluate(tmp_path, EvaluateOptions(reference="7d", period="7d"))
    (group,) = result.groups
    assert len(group.drift) == 31
    assert [s.signal for s in group.drift if s.flagged] == []
    assert {s.state for s in group.drift} == {"stable"}


def _row(values: tuple[Any, ...]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
