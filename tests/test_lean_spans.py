"""modeltel's own predict spans where it owns the TracerProvider (``_lean_span``, ``_span_encoding``).

They must be indistinguishable from the SDK's: the same OTLP bytes once decoded (compared with
the SDK's own encoder on the same spans, on every supported SDK version), the same parenting for
the application's spans inside predict, the same sampling, limits and status rules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import BaseModel, Field

import modeltel
from modeltel import _names as n
from modeltel._export.span_encoding import encode
from modeltel._lean_span import LeanSpan
from modeltel.testing import Capture, capture
from otlp_receiver import OtlpReceiver

REMOTE_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REMOTE_SPAN = 0x00F067AA0BA902B7


@modeltel.instrument(
    model="lean", version="3", tenant="tenant", decision=lambda s: "yes" if s > 0.5 else "no"
)
def predict(features: dict[str, Any], tenant: str = "acme") -> float:
    if features.get("raise"):
        raise ValueError("model failed on " + str(features.get("raise")))
    extra = features.get("annotate")
    if extra:
        trace.get_current_span().set_attributes(extra)
    return float(features.get("x", 0.25))


@modeltel.instrument(model="lean-batch", version="1", batch=True)
def predict_batch(rows: list[dict[str, float]]) -> list[float]:
    return [0.1 * i for i in range(len(rows))]


class Contract(BaseModel):
    amount: float = Field(ge=0)


@modeltel.instrument(model="lean-contract", version="1", contract=Contract, on_violation="reject")
def strict_predict(features: dict[str, float]) -> float:
    return 0.5


def _provider(c: Capture) -> TracerProvider:
    return next(p for p in c.runtime.owned if isinstance(p, TracerProvider))


@pytest.fixture
def cap() -> Iterator[Capture]:
    with capture() as c:
        yield c


def _remote_parent(sampled: bool, state: str = "") -> context.Context:
    carrier = {"traceparent": f"00-{REMOTE_TRACE:032x}-{REMOTE_SPAN:016x}-{'01' if sampled else '00'}"}
    if state:
        carrier["tracestate"] = state
    return TraceContextTextMapPropagator().extract(carrier)


def _assert_same_as_sdk(spans: list[ReadableSpan]) -> None:
    lean = [s for s in spans if type(s) is LeanSpan]
    assert lean, "no LeanSpan to compare"
    ours = ExportTraceServiceRequest.FromString(encode(lean))
    sdk = encode_spans(lean)
    ours_spans = ours.resource_spans[0].scope_spans[0].spans
    sdk_spans = sdk.resource_spans[0].scope_spans[0].spans
    for mine, theirs in zip(ours_spans, sdk_spans, strict=True):
        assert mine == theirs, f"ours:\n{mine}\nSDK:\n{theirs}"
    assert ours == sdk


def test_predict_spans_are_lean_and_read_as_sdk_spans(cap: Capture) -> None:
    """Every kind of call's span encodes exactly as the SDK encoder encodes it."""
    predict({"x": 0.9})
    predict({"x": 0.1}, tenant="ünïcode-tenant-" + "t" * 200)  # multi-byte varints, UTF-8
    with pytest.raises(ValueError):
        predict({"raise": "a long reason " * 40})
    predict(
        {"x": 0.3, "annotate": {"app.flag": True, "app.count": -7, "app.big": 2**62, "app.list": [1.5, 2.5]}}
    )
    predict({"x": 0.3, "annotate": {n.MODEL_VERSION: "overridden by the app"}})
    predict_batch([{"a": 1.0}, {"a": 2.0}])
    with pytest.raises(modeltel.ContractViolation):
        strict_predict({"amount": -1.0})
    token = context.attach(_remote_parent(True, "vendor=abc,other=x"))
    try:
        predict({"x": 0.6})
    finally:
        context.detach(token)
    spans = cap.spans
    assert len(spans) == 8
    assert all(type(s) is LeanSpan for s in spans)
    _assert_same_as_sdk(spans)


def test_span_attributes_status_and_events(cap: Capture) -> None:
    """What the SDK path recorded, the lean path records: attributes, the exception event, status."""
    predict({"x": 0.9})
    with pytest.raises(ValueError):
        predict({"raise": "boom"})
    with pytest.raises(modeltel.ContractViolation):
        strict_predict({"amount": -1.0})
    ok, failed, rejected = cap.spans
    assert dict(ok.attributes) == {
        n.MODEL_NAME: "lean",
        n.MODEL_VERSION: "3",
        n.PAYLOAD_HASH_RECIPE: 2,
        n.TENANT: "acme",
        n.PREDICTION_ID: ok.attributes[n.PREDICTION_ID],
        n.PAYLOAD_HASH: ok.attributes[n.PAYLOAD_HASH],
        n.OUTCOME: "ok",
        n.FEATURES_SAMPLED: False,
        n.SCORE: 0.9,
        n.DECISION: "yes",
    }
    assert ok.status.status_code is trace.StatusCode.UNSET
    assert ok.kind is trace.SpanKind.INTERNAL and ok.parent is None
    assert ok.start_time is not None and ok.end_time is not None and ok.start_time <= ok.end_time
    (event,) = failed.events
    assert event.name == "exception" and event.attributes["exception.type"] == "ValueError"
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert failed.status.description == "ValueError: model failed on boom"
    assert rejected.status.status_code is trace.StatusCode.ERROR
    assert rejected.attributes[n.CONTRACT_VIOLATIONS] == ("amount:range",)


def test_the_apps_spans_inside_predict_are_its_children(cap: Capture) -> None:
    """An app span opened inside predict parents to the predict span; predict parents to the caller's."""
    tracer = _provider(cap).get_tracer("app")

    @modeltel.instrument(model="nested", version="1")
    def nested(features: dict[str, float]) -> float:
        assert trace.get_current_span().is_recording()
        with tracer.start_as_current_span("feature lookup"):
            return 0.5

    with tracer.start_as_current_span("http request") as request:
        nested({"x": 1.0})
    by_name = {s.name: s for s in cap.spans}
    outer, span, inner = by_name["http request"], by_name["predict nested"], by_name["feature lookup"]
    assert type(span) is LeanSpan and type(inner) is not LeanSpan
    assert span.context.trace_id == inner.context.trace_id == request.get_span_context().trace_id
    assert span.parent is not None and span.parent.span_id == outer.context.span_id
    assert inner.parent is not None and inner.parent.span_id == span.context.span_id
    _assert_same_as_sdk(cap.spans)


def test_a_remote_parents_trace_state_and_sampled_flag_are_kept(cap: Capture) -> None:
    """Parent-based sampling (the default): a sampled remote parent's trace continues with its
    trace state; an unsampled one leaves predict and the app's spans inside it unrecorded."""
    tracer = _provider(cap).get_tracer("app")
    for sampled in (True, False):
        token = context.attach(_remote_parent(sampled, "vendor=abc"))
        try:

            @modeltel.instrument(model=f"remote-{sampled}", version="1")
            def call(features: dict[str, float]) -> float:
                with tracer.start_as_current_span("inner"):
                    return 0.5

            call({"x": 1.0})
        finally:
            context.detach(token)
    spans = cap.spans
    assert [s.name for s in spans] == ["inner", "predict remote-True"]
    inner, span = spans
    assert span.context.trace_id == REMOTE_TRACE and span.parent is not None
    assert span.parent.span_id == REMOTE_SPAN and span.parent.is_remote
    assert span.context.trace_state.get("vendor") == "abc"
    assert inner.parent is not None and inner.parent.span_id == span.context.span_id
    _assert_same_as_sdk(spans)


def test_a_ratio_sampler_keeps_the_traces_it_would_keep(monkeypatch: pytest.MonkeyPatch) -> None:
    """``traceidratio``: kept spans are exactly those whose trace id passes the SDK's ratio test."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    bound = round(0.25 * (1 << 64))
    with capture() as c:
        for i in range(2_000):
            predict({"x": i / 2_000})
        spans = c.spans
        calls = c.counter(n.M_PREDICTIONS)
    assert calls == 2_000
    assert all((s.context.trace_id & ((1 << 64) - 1)) < bound for s in spans)
    assert 400 < len(spans) < 600  # 500 expected; the bounds are ~5.8 standard deviations


def test_an_added_span_processor_gets_the_sdks_spans(cap: Capture) -> None:
    """An app that adds a processor to modeltel's provider sees ``on_start`` for predict spans: from
    then on they are the SDK's, and both kinds reach the exporter."""
    started: list[str] = []

    class Watch(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            started.append(span.name)

    predict({"x": 0.2})
    _provider(cap).add_span_processor(Watch())
    predict({"x": 0.3})
    first, second = sorted(cap.spans, key=lambda s: s.start_time or 0)
    assert type(first) is LeanSpan and type(second) is not LeanSpan
    assert started == ["predict lean"]
    assert dict(first.attributes).keys() == dict(second.attributes).keys()


def test_attribute_limits_apply_as_the_sdks_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` cuts values as the SDK does; at
    ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` the application's attributes are dropped and counted,
    never modeltel's (the SDK would drop the oldest: the model's name)."""
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "6")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "14")
    many = {f"app.a{i}": i for i in range(10)}
    with capture() as c:
        predict({"x": 0.7, "annotate": many}, tenant="a-long-tenant")
        (span,) = c.spans
    assert span.attributes[n.TENANT] == "a-long"
    assert span.attributes[n.MODEL_NAME] == "lean"
    assert len(span.attributes) == 14
    assert span.dropped_attributes == 10 - (14 - 10)  # 10 of modeltel's own, 4 of the app's fit
    _assert_same_as_sdk([span])


def test_status_rules_match_the_sdks(cap: Capture) -> None:
    """OK is final, UNSET is ignored, nothing changes after end: as the SDK's span behaves."""
    kept: list[Any] = []

    @modeltel.instrument(model="status", version="1")
    def call(features: dict[str, float]) -> float:
        span = trace.get_current_span()
        span.set_status(trace.StatusCode.OK)
        span.set_status(trace.StatusCode.ERROR, "ignored: OK is final")
        span.update_name("renamed")
        span.record_exception(KeyError("k"), {"extra": 1})
        kept.append(span)
        return 0.1

    call({"x": 1.0})
    kept[0].set_attribute("late", 1)
    (span,) = cap.spans
    assert span.name == "renamed" and span.status.status_code is trace.StatusCode.OK
    assert "late" not in span.attributes
    (event,) = span.events
    assert event.attributes["exception.type"] == "KeyError" and event.attributes["extra"] == 1
    _assert_same_as_sdk([span])


_values = st.one_of(
    st.text(max_size=300),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=20), max_size=5),
    st.lists(st.floats(allow_nan=False), max_size=5),
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=150), _values, max_size=12))
def test_any_attributes_encode_as_the_sdk_encodes_them(extra: dict[str, Any]) -> None:
    """Whatever the application puts on the span, the decoded request equals the SDK encoder's."""
    with capture() as c:
        predict({"x": 0.5, "annotate": extra})
        spans = c.spans
    _assert_same_as_sdk(spans)


LEAN_APP = str(Path(__file__).with_name("lean_wire_app.py"))


@pytest.mark.wire
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_lean_spans_reach_a_collector_as_standard_otlp(protocol: str) -> None:
    """Over the real wire: predict spans continue the caller's trace, the app's span inside predict
    is their child, the app's attribute, the exception event and the status all arrive."""
    calls = 40
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
        proc = subprocess.run(
            [sys.executable, LEAN_APP, str(calls)], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        assert receiver.wait_until(lambda r: len(r.spans()) >= 2 * calls, timeout=30)
        spans = receiver.spans()
    predicts = {s["trace_id"]: s for s in spans if s["name"] == "predict lean-wire"}
    lookups = {s["trace_id"]: s for s in spans if s["name"] == "feature lookup"}
    assert len(predicts) == len(lookups) == calls
    for call, expected in enumerate(seen):
        span, lookup = predicts[expected["trace_id"]], lookups[expected["trace_id"]]
        assert span["parent_span_id"] == expected["parent_id"]
        assert lookup["parent_span_id"] == span["span_id"]
        assert lookup["attributes"]["app.rows"] == 3
        x = (call % 4 - 1) / 2
        assert span["attributes"]["app.cache_hit"] is (x > 0.5)
        assert span["attributes"]["ml.tenant"] == f"t{call % 3}"
        if x < 0:
            assert span["status_code"] == 2 and span["status_message"] == "ValueError: negative x"
            assert [e["name"] for e in span["events"]] == ["exception"]
        else:
            assert span["status_code"] == 0 and span["attributes"]["ml.prediction.score"] == x


def test_each_runtime_encodes_its_own_resource() -> None:
    """A runtime built again (``configure()`` with new settings, a forked child) has a resource of
    its own (a new ``service.instance.id``); its spans' encoding carries that one, never a
    previous runtime's."""
    seen = []
    for _ in range(3):
        with capture() as c:
            predict({"x": 0.5})
            (span,) = c.spans
        request = ExportTraceServiceRequest.FromString(encode([span]))
        attributes = {kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes}
        assert attributes["service.instance.id"] == span.resource.attributes["service.instance.id"]
        seen.append(attributes["service.instance.id"])
    assert len(set(seen)) == 3
