"""The reference every benchmark compares with: what a careful engineer writes by hand.

A span with the ``ml.*`` attributes, duration and score histograms (modeltel's bucket bounds) and
a prediction counter, through whichever tracer and meter the caller gives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from time import perf_counter
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from modeltel._names import DURATION_BOUNDS, SCORE_BOUNDS


def hand_written(
    fn: Callable[..., Any], tracer: Tracer, meter: Meter, model: str, version: str
) -> Callable[..., Any]:
    """``fn(features, tenant)`` instrumented by hand."""
    duration = meter.create_histogram(
        "ml.prediction.duration", unit="s", explicit_bucket_boundaries_advisory=list(DURATION_BOUNDS)
    )
    score_h = meter.create_histogram(
        "ml.prediction.score", unit="1", explicit_bucket_boundaries_advisory=list(SCORE_BOUNDS)
    )
    counter = meter.create_counter("ml.predictions", unit="{prediction}")

    @functools.wraps(fn)
    def wrapper(features: Any, tenant: str) -> Any:
        attrs = {"ml.model.name": model, "ml.model.version": version, "ml.tenant": tenant}
        with tracer.start_as_current_span("predict " + model, attributes=attrs) as span:
            t0 = perf_counter()
            score = fn(features, tenant)
            elapsed = perf_counter() - t0
            span.set_attributes({"ml.prediction.score": score, "ml.outcome": "ok"})
        metric_attrs = {**attrs, "ml.outcome": "ok"}
        duration.record(elapsed, metric_attrs)
        score_h.record(score, metric_attrs)
        counter.add(1, metric_attrs)
        return score

    return wrapper
