"""Promise 1: a failure inside modeltel never reaches predict's caller."""

from __future__ import annotations

import logging

import pytest

import modeltel
from modeltel._internal import error_counts
from modeltel.testing import capture


def _boom(_: object) -> float:
    raise ZeroDivisionError("score extractor bug")


@modeltel.instrument(model="f", version="1", score=_boom)
def bad_score(features: dict[str, object]) -> str:
    return "result"


@modeltel.instrument(model="f", version="1")
def plain(features: object) -> str:
    return "result"


def test_score_extractor_that_raises_is_swallowed(lenient: None, caplog: pytest.LogCaptureFixture) -> None:
    """The result is returned, the call is still counted, the error is counted and logged once."""
    before = error_counts.total()
    with capture() as c, caplog.at_level(logging.ERROR, logger="modeltel"):
        assert [bad_score({"a": 1.0}) for _ in range(3)] == ["result"] * 3
        assert c.counter("ml.predictions", **{"ml.outcome": "ok"}) == 3
    assert error_counts.total() - before == 3
    assert len([r for r in caplog.records if "output" in r.getMessage()]) == 1


def test_unserialisable_feature_is_swallowed(lenient: None) -> None:
    """A feature value that cannot be hashed or logged does not break the call."""
    with capture(feature_sample_rate=1.0) as c:
        assert plain({"handle": object()}) == "result"
        assert c.counter("ml.predictions") == 1
        (span,) = c.spans
    assert span.attributes is not None and span.attributes["ml.outcome"] == "ok"


def test_strict_mode_makes_our_bugs_loud() -> None:
    """In modeltel's own suite (MODELTEL_STRICT=1) the same bug raises, so it cannot hide."""
    with capture(), pytest.raises(ZeroDivisionError):
        bad_score({"a": 1.0})


def test_failed_exports_are_counted(tmp_path: object) -> None:
    """A span exporter that fails has its spans counted in modeltel.export.failures."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from modeltel import _names as n
    from modeltel._export.guarded import GuardedSpanExporter, export_failures

    class Refusing(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.FAILURE

    before = export_failures.snapshot().get("traces", 0)
    spans = [ReadableSpan(name="predict m"), ReadableSpan(name="predict m")]
    assert GuardedSpanExporter(Refusing()).export(spans) is SpanExportResult.FAILURE
    assert export_failures.snapshot()["traces"] == before + 2
    with capture() as c:
        assert c.counter(n.M_EXPORT_FAILURES, signal="traces") == before + 2
