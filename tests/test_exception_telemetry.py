"""Predict's exception as telemetry: bounded in size, sensitive values redacted, the caller's untouched."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

import modeltel
from modeltel._cascade import cascade
from modeltel._exception_event import (
    MAX_EXCEPTION_MESSAGE_CHARS,
    MAX_EXCEPTION_STACKTRACE_CHARS,
    MAX_STATUS_DESCRIPTION_CHARS,
    REDACTED,
    WITHHELD,
)
from modeltel.testing import Capture, capture
from otlp_receiver import MAX_REQUEST_BYTES, OtlpReceiver, metric_total

CANARY = "canary-7f3a9c@example.com"  # the same in exception_wire_app.py
HUGE = 5 * 1024 * 1024
APP = str(Path(__file__).with_name("exception_wire_app.py"))
WIRE_CALLS = 200  # answered calls; the app adds one raising 5 MiB of text, one naming the canary


class Applicant(BaseModel):
    email: str = modeltel.sensitive()
    amount: float


@dataclasses.dataclass
class Row:
    email: str
    amount: float


def _everything(c: Capture) -> str:
    """Every span and log record the capture holds, as the JSON text an exporter would write."""
    return "\n".join([*(s.to_json() for s in c.spans), *(r.to_json() for r in c.logs)])


def _raise_with_email(email: Any) -> float:
    raise ValueError(f"bad email {email}")


def _single(features: Any) -> float:
    email = features["email"] if isinstance(features, dict) else features.email
    return _raise_with_email(email)


def _chained(features: dict[str, Any]) -> float:
    try:
        return {}[features["email"]]  # type: ignore[no-any-return]
    except KeyError as missing:
        raise RuntimeError("lookup failed") from missing


def _batch(rows: Any) -> list[float]:
    emails = rows["email"].tolist() if isinstance(rows, pd.DataFrame) else [r["email"] for r in rows]
    raise ValueError(f"bad emails {emails!r}")


OTHER = "other-person@example.org"
CASES: dict[str, tuple[Callable[..., Any], dict[str, Any], Any]] = {
    "dict, contract": (_single, {"contract": Applicant}, {"email": CANARY, "amount": 1.0}),
    "pydantic instance": (_single, {"contract": Applicant}, Applicant(email=CANARY, amount=1.0)),
    "dataclass, sensitive=": (_single, {"sensitive": ["email"]}, Row(email=CANARY, amount=1.0)),
    "dict, sensitive=": (_single, {"sensitive": ["email"]}, {"email": CANARY, "amount": 1.0}),
    "chained cause": (_chained, {"contract": Applicant}, {"email": CANARY, "amount": 1.0}),
    "batch of dicts": (
        _batch,
        {"contract": Applicant, "batch": True},
        [{"email": OTHER, "amount": 1.0}, {"email": CANARY, "amount": 2.0}],
    ),
    "batch dataframe": (
        _batch,
        {"contract": Applicant, "batch": True},
        pd.DataFrame({"email": [OTHER, CANARY], "amount": [1.0, 2.0]}),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sensitive_values_never_leave_through_an_exception(case: str) -> None:
    """The canary is in the caller's exception and nowhere in spans, feature or prediction records."""
    func, options, features = CASES[case]
    predict = modeltel.instrument(model="kyc", version="1", **options)(func)
    with capture(feature_sample_rate=1.0, prediction_records=1.0) as c:
        with pytest.raises(Exception) as info:
            predict(features)
        exported = _everything(c)
        (span,) = c.spans
        assert c.feature_rows() and c.prediction_rows()  # both record paths ran
    assert CANARY in "".join(map(str, (info.value, info.value.__cause__)))  # the caller's text is whole
    assert CANARY not in exported
    assert OTHER not in exported
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert REDACTED in str(event.attributes["exception.stacktrace"])


@pytest.mark.usefixtures("lenient")
def test_text_is_withheld_when_the_sensitive_values_cannot_be_read(caplog: pytest.LogCaptureFixture) -> None:
    """Features the contract cannot read (a tuple): the exception's text is withheld, not sent,
    and the internal-error log does not quote predict's exception either."""

    @modeltel.instrument(model="kyc", version="1", contract=Applicant)
    def predict(features: Any) -> float:
        raise ValueError(f"bad {features}")

    with capture(feature_sample_rate=1.0) as c:
        with pytest.raises(ValueError, match=CANARY):
            predict(("email", CANARY))
        exported = _everything(c)
        (span,) = c.spans
    assert CANARY not in exported
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.message"] == WITHHELD
    assert span.events[0].attributes["exception.stacktrace"] == WITHHELD
    assert span.status.status_code is StatusCode.ERROR
    (logged,) = [r for r in caplog.records if "record.redact" in r.getMessage()]
    assert "TypeError" in logging.Formatter().format(logged)
    assert CANARY not in logging.Formatter().format(logged)


def test_the_caller_gets_the_same_exception_with_its_message() -> None:
    """Redaction works on a copy: the exception object and its message reach the caller unchanged."""
    raised = ValueError(f"bad email {CANARY}")

    @modeltel.instrument(model="kyc", version="1", contract=Applicant)
    def predict(features: dict[str, Any]) -> float:
        raise raised

    with capture() as c:
        with pytest.raises(ValueError) as info:
            predict({"email": CANARY, "amount": 1.0})
        (span,) = c.spans
    assert info.value is raised and raised.args == (f"bad email {CANARY}",)
    assert span.status.description == f"ValueError: bad email {REDACTED}"
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.message"] == f"bad email {REDACTED}"


def test_async_predict_and_the_prediction_block_redact_too() -> None:
    """The async wrapper and ``with modeltel.prediction(...)`` take the same error path."""

    @modeltel.instrument(model="kyc", version="1", contract=Applicant)
    async def predict(features: dict[str, Any]) -> float:
        return _raise_with_email(features["email"])

    features = {"email": CANARY, "amount": 1.0}
    with capture() as c:
        with pytest.raises(ValueError):
            asyncio.run(predict(features))
        block = modeltel.prediction(model="kyc", version="1", contract=Applicant, features=features)
        with pytest.raises(ValueError), block:
            _raise_with_email(CANARY)
        exported = _everything(c)
        assert len(c.spans) == 2
    assert CANARY not in exported


def test_a_cascade_span_does_not_copy_the_tier_exception() -> None:
    """The parent ``cascade`` span is ERROR with the type only; the tier span holds the clean text."""

    def cheap(features: dict[str, Any]) -> float:
        return _raise_with_email(features["email"])

    predict = cascade(cheap, lambda features: 1.0, model="kyc", contract=Applicant)
    with capture() as c:
        with pytest.raises(ValueError):
            predict({"email": CANARY, "amount": 1.0})
        exported = _everything(c)
        parent = next(s for s in c.spans if s.name == "cascade kyc")
    assert CANARY not in exported
    assert (parent.status.status_code, parent.status.description) == (StatusCode.ERROR, "ValueError")


def test_a_huge_exception_text_is_bounded_on_the_span() -> None:
    """A 5 MiB message: message, stack trace and status keep their limits, beginning and end kept."""
    message = "start " + "x" * HUGE + " end"
    raised = ValueError(message)

    @modeltel.instrument(model="kyc", version="1")
    def predict(features: dict[str, Any]) -> float:
        raise raised

    with capture() as c:
        with pytest.raises(ValueError) as info:
            predict({"amount": 1.0})
        (span,) = c.spans
    assert info.value is raised and str(info.value) == message
    attributes = span.events[0].attributes
    assert attributes is not None
    sent, stack = str(attributes["exception.message"]), str(attributes["exception.stacktrace"])
    assert len(sent) == MAX_EXCEPTION_MESSAGE_CHARS and len(stack) == MAX_EXCEPTION_STACKTRACE_CHARS
    assert sent.startswith("start xxx") and sent.endswith("xxx end")
    assert f"truncated by modeltel: {len(message)} characters in all" in sent
    assert stack.startswith("Traceback (most recent call last):") and "in predict" in stack
    assert span.status.description is not None
    assert len(span.status.description) == MAX_STATUS_DESCRIPTION_CHARS


@pytest.mark.parametrize("offset", [0, 7, 13, 19])
def test_a_long_text_cut_short_keeps_no_piece_of_a_sensitive_value(offset: int) -> None:
    """A message repeating the canary past every limit: wherever a cut falls, no 6-character piece
    of the canary survives in the message, stack trace or status."""
    message = "x" * offset + f"{CANARY} " * 3000

    @modeltel.instrument(model="kyc", version="1", contract=Applicant)
    def predict(features: dict[str, Any]) -> float:
        raise ValueError(message)

    with capture() as c:
        with pytest.raises(ValueError):
            predict({"email": CANARY, "amount": 1.0})
        (span,) = c.spans
    attributes = span.events[0].attributes
    assert attributes is not None
    sent = [str(attributes["exception.message"]), str(attributes["exception.stacktrace"])]
    sent.append(str(span.status.description))
    pieces = {CANARY[i : i + 6] for i in range(len(CANARY) - 5)}
    assert "truncated by modeltel" in sent[0] and "truncated by modeltel" in sent[1]
    assert [piece for piece in pieces if any(piece in text for text in sent)] == []


@pytest.mark.wire
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_exception_text_crosses_the_wire_bounded_and_redacted(protocol: str) -> None:
    """A 5 MiB message among 200 calls no longer costs the span batch: all 202 spans arrive, the
    text bounded; the canary a predict raised is in no span, log record or metric received."""
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            MODELTEL_FEATURE_SAMPLE_RATE="1",
            MODELTEL_SHUTDOWN_TIMEOUT="20",
        )
        proc = subprocess.run(
            [sys.executable, APP, str(WIRE_CALLS)], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        # The process flushed everything before it exited: what has not arrived within a short
        # wait never will.
        receiver.wait_until(lambda r: len(r.spans()) >= WIRE_CALLS + 2, timeout=10)
        spans, logs, metrics = receiver.spans(), receiver.logs(), receiver.metrics()
        assert receiver.largest_request["traces"] < MAX_REQUEST_BYTES

    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "answered": WIRE_CALLS,
        "raised": 2,
        "unchanged": True,
    }
    assert len(spans) == WIRE_CALLS + 2
    errors = [s for s in spans if s["attributes"]["ml.outcome"] == "error"]
    assert len(errors) == 2 and all(s["status_code"] == StatusCode.ERROR.value for s in errors)
    for span in errors:
        (event,) = span["events"]
        assert len(event["attributes"]["exception.message"]) <= MAX_EXCEPTION_MESSAGE_CHARS
        assert len(event["attributes"]["exception.stacktrace"]) <= MAX_EXCEPTION_STACKTRACE_CHARS
        assert len(span["status_message"]) <= MAX_STATUS_DESCRIPTION_CHARS
    assert metric_total(metrics, "ml.predictions", **{"ml.outcome": "error"}) == 2
    assert any(rec["event_name"] == "ml.features" for rec in logs)
    assert any(rec["event_name"] == "ml.prediction.records" for rec in logs)
    assert CANARY not in repr([spans, logs, metrics])
