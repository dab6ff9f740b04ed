"""Local aggregation exports exactly what the OTel SDK would have exported for the same records."""

from __future__ import annotations

import random

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import modeltel
from modeltel import _names as n
from modeltel.testing import capture


def _sdk_histogram(
    values: list[float], bounds: tuple[float, ...]
) -> tuple[int, float, list[int], float, float]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    hist = provider.get_meter("ref").create_histogram("h", explicit_bucket_boundaries_advisory=list(bounds))
    for v in values:
        hist.record(v, {"k": "v"})
    data = reader.get_metrics_data()
    assert data is not None
    point = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
    provider.shutdown()
    return point.count, point.sum, list(point.bucket_counts), point.min, point.max


def test_score_histogram_matches_the_sdk_record_for_record() -> None:
    """Counts, sum, buckets (bounds included), min and max equal the SDK's for 5,000 scores."""
    rng = random.Random(7)
    # Non-negative only: the SDK refuses negative histogram values (modeltel keeps them).
    scores = [rng.choice([0.0, 0.05, 0.5, 1.0, rng.random(), rng.random() * 2]) for _ in range(5000)]

    @modeltel.instrument(model="exact", version="1")
    def f(features: dict[str, float]) -> float:
        return features["s"]

    with capture() as c:
        for s in scores:
            f({"s": s})
        (point,) = c.metric_points(n.M_SCORE)
        assert c.counter(n.M_PREDICTIONS) == 5000
    ours = point.count, point.sum, list(point.bucket_counts), point.min, point.max
    assert ours == _sdk_histogram(scores, n.SCORE_BOUNDS)
