"""Hostile input: unbounded tenant ids and huge payloads cannot hurt the telemetry."""

from __future__ import annotations

import modeltel
from modeltel.testing import capture


@modeltel.instrument(model="h", version="1", tenant="tenant")
def predict(features: dict[str, object], tenant: str) -> float:
    return 0.5


def test_ten_thousand_tenants_keep_metric_series_bounded() -> None:
    """Past max_tenants distinct ids, metrics say __other__; spans keep the (truncated) real id."""
    with capture(max_tenants=100) as c:
        for i in range(10_000):
            predict({"x": 1.0}, tenant=f"tenant-{i}")
        tenants = {p.attributes["ml.tenant"] for p in c.metric_points("ml.predictions")}
        total = c.counter("ml.predictions")
        other = c.counter("ml.predictions", **{"ml.tenant": "__other__"})
    assert len(tenants) == 101 and "__other__" in tenants
    assert total == 10_000 and other == 9_900


def test_long_tenant_ids_are_truncated_on_spans() -> None:
    """A 10 KB tenant id becomes 64 characters."""
    with capture() as c:
        predict({"x": 1.0}, tenant="t" * 10_000)
        (span,) = c.spans
    assert span.attributes is not None and span.attributes["ml.tenant"] == "t" * 64


def test_huge_payload_is_dropped_and_counted_without_poisoning_the_batch() -> None:
    """A 5 MB sampled payload is dropped and counted; small records around it still arrive."""
    big = {"blob": "x" * 5_000_000}
    with capture(feature_sample_rate=1.0) as c:
        predict({"x": 1.0}, tenant="a")
        predict(big, tenant="a")
        predict({"x": 2.0}, tenant="a")
        records = c.feature_records()
        dropped = c.counter("modeltel.features.dropped", reason="too_large")
        spans = c.spans
    assert [r.log_record.body for r in records] == [{"features": {"x": 1.0}}, {"features": {"x": 2.0}}]
    assert dropped == 1
    assert len(spans) == 3
