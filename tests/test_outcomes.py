"""record_outcome: an ml.outcome log record that never breaks the caller."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from modeltel import _names as n
from modeltel._export.runtime import get_runtime
from modeltel._outcomes import EVENT_OUTCOME, OUTCOME_LABEL, record_outcome
from modeltel.testing import Capture


def test_record_outcome_emits_one_outcome_record(cap: Capture) -> None:
    """The record carries the event name, prediction id, label and model."""
    record_outcome("p-1", label=1, model="fraud")
    (record,) = cap.logs
    assert record.log_record.event_name == EVENT_OUTCOME
    assert dict(record.log_record.attributes or {}) == {
        n.PREDICTION_ID: "p-1",
        OUTCOME_LABEL: 1,
        n.MODEL_NAME: "fraud",
    }


def test_record_outcome_by_payload_hash(cap: Capture) -> None:
    """An outcome may name the payload hash instead of the prediction id."""
    record_outcome(payload_hash="00ff00ff00ff00ff", label="fraud")
    (record,) = cap.logs
    assert dict(record.log_record.attributes or {}) == {
        n.PAYLOAD_HASH: "00ff00ff00ff00ff",
        OUTCOME_LABEL: "fraud",
    }


def test_outcome_timestamp_is_the_given_datetime(cap: Capture) -> None:
    """``at`` as a datetime becomes the record's timestamp in Unix nanoseconds."""
    at = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    record_outcome("p-1", label=0, at=at)
    assert cap.logs[0].log_record.timestamp == int(at.timestamp()) * 1_000_000_000


def test_naive_datetime_is_utc(cap: Capture) -> None:
    """A naive ``at`` is read as UTC, not local time."""
    record_outcome("p-1", label=0, at=datetime(2024, 5, 1))
    expected = datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert cap.logs[0].log_record.timestamp == int(expected.timestamp()) * 1_000_000_000


def test_outcome_timestamp_from_unix_seconds(cap: Capture) -> None:
    """``at`` as Unix seconds keeps microsecond precision."""
    record_outcome("p-1", label=0.5, at=1_700_000_000.25)
    assert cap.logs[0].log_record.timestamp == 1_700_000_000_250_000_000


def test_outcome_without_at_is_stamped_now(cap: Capture) -> None:
    """Without ``at`` the record is stamped with the current time."""
    before = datetime.now(timezone.utc)
    record_outcome("p-1", label=1)
    after = datetime.now(timezone.utc) + timedelta(microseconds=1)
    stamp = cap.logs[0].log_record.timestamp
    assert stamp is not None
    assert int(before.timestamp() * 1e6) * 1000 <= stamp <= int(after.timestamp() * 1e6) * 1000


def test_integral_float_labels_travel_as_ints(cap: Capture) -> None:
    """1.0 and 1 are the same label downstream."""
    record_outcome("p-1", label=1.0)
    assert dict(cap.logs[0].log_record.attributes or {})[OUTCOME_LABEL] == 1


def test_outcome_needs_an_id_or_a_hash() -> None:
    """Neither id nor hash is a caller error."""
    with pytest.raises(ValueError, match="prediction_id or a payload_hash"):
        record_outcome(label=1)


@pytest.mark.usefixtures("lenient")
def test_a_failing_pipeline_does_not_raise(cap: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exporter-side failure is swallowed: the caller sees no exception."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("collector gone")

    monkeypatch.setattr(get_runtime().otel_logger, "emit", broken)
    assert record_outcome("p-1", label=1) is None
