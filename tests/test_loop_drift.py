"""Drift: a planted shift is flagged on the right feature, an unchanged one is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modeltel.loop import EvaluateOptions, evaluate, save_profile
from modeltel.loop._durations import format_instant
from modeltel.loop._result import GroupReport
from modeltel.loop._synthetic import append_records, feature_record, prediction_columns, prediction_record

DAY = 86_400 * 1_000_000_000
DAY0 = 1_704_067_200 * 1_000_000_000
DAYS = 14
PER_DAY = 400
AS_OF = format_instant(DAY0 + DAYS * DAY)


def _features(rng: np.random.Generator, n: int, amount_scale: float) -> dict[str, np.ndarray]:
    return {
        "amount": rng.lognormal(3.0, 0.5, n) * amount_scale,
        "age": rng.normal(40.0, 10.0, n),
        "country": rng.choice(np.array(["DE", "FR", "US"]), n, p=[0.5, 0.3, 0.2]),
    }


def _write(folder: Path, *, shift_last_day: bool, violations_last_day: bool = False, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    records = []
    for day in range(DAYS):
        last = day == DAYS - 1
        feats = _features(rng, PER_DAY, 2.0 if shift_last_day and last else 1.0)
        times = DAY0 + day * DAY + np.sort(rng.integers(1, DAY, PER_DAY))
        ids = [f"d{day}-{i}" for i in range(PER_DAY)]
        scores = rng.beta(2.0, 5.0, PER_DAY)
        columns = prediction_columns(ids, times.tolist(), scores.tolist())
        records.append(prediction_record("fraud", "1", columns))
        broken = ["amount:range"] if violations_last_day and last else []
        for i, pid in enumerate(ids):
            row = {name: values[i].item() for name, values in feats.items()}
            records.append(
                feature_record(
                    "fraud",
                    "1",
                    row,
                    time_ns=int(times[i]),
                    prediction_id=pid,
                    violations=broken if i % 4 == 0 else [],
                )
            )
    append_records(folder, records, per_line=200)


def _evaluate(folder: Path, **options: object) -> GroupReport:
    result = evaluate(folder, EvaluateOptions(as_of=AS_OF, reference="7d", **options))  # type: ignore[arg-type]
    (group,) = result.groups
    return group


def test_a_planted_shift_is_flagged_on_that_feature_only(tmp_path: Path) -> None:
    """Doubling ``amount`` on the last day flags amount and nothing else."""
    _write(tmp_path, shift_last_day=True)
    flagged = {s.signal for s in _evaluate(tmp_path).drift if s.flagged}
    assert flagged == {"amount"}


def test_an_unchanged_distribution_is_not_flagged(tmp_path: Path) -> None:
    """Same distributions throughout: no signal is flagged."""
    _write(tmp_path, shift_last_day=False)
    drift = _evaluate(tmp_path).drift
    assert {s.signal for s in drift} == {"score", "amount", "age", "country"}
    assert [s.signal for s in drift if s.flagged] == []


def test_chosen_features_limit_the_drift_report(tmp_path: Path) -> None:
    """With features chosen, only they (and the score) are reported."""
    _write(tmp_path, shift_last_day=True)
    drift = _evaluate(tmp_path, features=("age",)).drift
    assert [s.signal for s in drift] == ["score", "age"]


def test_a_saved_training_profile_is_the_reference(tmp_path: Path) -> None:
    """Against a training profile with the original distributions, the shifted feature is flagged."""
    _write(tmp_path / "telemetry", shift_last_day=True)
    rng = np.random.default_rng(99)
    training = {name: values.tolist() for name, values in _features(rng, 5000, 1.0).items()}
    training["score"] = rng.beta(2.0, 5.0, 5000).tolist()
    save_profile(training, tmp_path / "profile.json")
    group = _evaluate(tmp_path / "telemetry", profile=tmp_path / "profile.json")
    assert {s.signal for s in group.drift if s.flagged} == {"amount"}


def test_violations_are_operational_not_statistical_drift(tmp_path: Path) -> None:
    """Range violations show in the operational report, apart from statistical drift."""
    _write(tmp_path, shift_last_day=False, violations_last_day=True)
    group = _evaluate(tmp_path)
    assert group.operational is not None
    current = group.operational.windows["current"]
    assert current.violation_rates == {"amount:range": len(range(0, PER_DAY, 4)) / PER_DAY}
    assert group.operational.windows["reference"].violation_rates == {}
    assert [s.signal for s in group.drift if s.flagged] == []


def test_data_shorter_than_one_period_has_an_empty_reference(tmp_path: Path) -> None:
    """With every prediction in the current window, the reference is empty and nothing drifts."""
    _write(tmp_path, shift_last_day=True)
    result = evaluate(tmp_path, EvaluateOptions(as_of=AS_OF, reference="7d", period="30d"))
    assert isinstance(result.reference, tuple)
    start, end = result.reference
    assert (end - start, result.groups[0].drift) == (0, [])
