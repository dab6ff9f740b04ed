"""Two ways to record a prediction's metrics, one interface.

``LocalRecorder`` (modeltel owns the MeterProvider): exact local aggregates, exported by
``MergingMetricExporter``; a fraction of a microsecond per call. ``ApiRecorder`` (the application
installed its own MeterProvider, with its Views and readers): plain OTel API instruments, so the
application's pipeline sees every measurement; correct first, at the SDK's per-record cost.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from opentelemetry import metrics

from modeltel import _names as n
from modeltel._export.aggregate import Aggregator, Cell
from modeltel._scores import split_finite


class Recorder(Protocol):
    def cell(self, model: str, version: str, tenant: str, outcome: str, cls: str | None = None) -> Any: ...

    def flight(self, key: tuple[tuple[str, str], ...]) -> Any: ...

    def gauge_slot(self, name: str, attrs: tuple[tuple[str, str], ...]) -> Any: ...

    def record(self, cell: Any, duration: float, score: float | None, cost: float, sampled: bool) -> None: ...

    def record_batch(
        self,
        cell: Any,
        rows: int,
        duration: float,
        scores: np.ndarray[Any, Any] | None,
        cost: float,
        sampled: int,
    ) -> None: ...

    def add(self, name: str, value: float, attrs: tuple[tuple[str, str], ...]) -> None: ...


class LocalRecorder:
    """Records into an :class:`Aggregator`."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator
        self.cell = aggregator.cell
        self.flight = aggregator.flight
        self.gauge_slot = aggregator.gauge_slot
        self.record = aggregator.record
        self.record_batch = aggregator.record_batch
        self.add = aggregator.add


class ApiRecorder:
    """Records through OTel API instruments from the application's MeterProvider."""

    def __init__(self, meter: metrics.Meter, currency: str) -> None:
        self._predictions = meter.create_counter(n.M_PREDICTIONS, unit="{prediction}")
        self._duration = meter.create_histogram(
            n.M_DURATION, unit="s", explicit_bucket_boundaries_advisory=list(n.DURATION_BOUNDS)
        )
        self._score = meter.create_histogram(
            n.M_SCORE, unit="1", explicit_bucket_boundaries_advisory=list(n.SCORE_BOUNDS)
        )
        self._non_finite = meter.create_counter(n.M_SCORE_NON_FINITE, unit="{prediction}")
        self._cost = meter.create_counter(n.M_COST, unit=currency)
        self._sampled = meter.create_counter(n.M_FEATURES_SAMPLED, unit="{record}")
        self._meter = meter
        self._gauges: dict[str, Any] = {}
        self._in_flight = meter.create_up_down_counter(n.M_IN_FLIGHT, unit="{prediction}")
        self._counters = {
            n.M_VIOLATIONS: meter.create_counter(n.M_VIOLATIONS, unit="{violation}"),
            n.M_DROPPED_FEATURES: meter.create_counter(n.M_DROPPED_FEATURES, unit="{record}"),
        }

    def cell(self, model: str, version: str, tenant: str, outcome: str, cls: str | None = None) -> Cell:
        attrs = {n.MODEL_NAME: model, n.MODEL_VERSION: version, n.TENANT: tenant, n.OUTCOME: outcome}
        if cls is not None:
            attrs[n.PREDICTED_CLASS] = cls
        return Cell(attrs)

    def flight(self, key: tuple[tuple[str, str], ...]) -> _ApiFlight:
        return _ApiFlight(self._in_flight, dict(key))

    def gauge_slot(self, name: str, attrs: tuple[tuple[str, str], ...]) -> _ApiGaugeSlot:
        gauge = self._gauges.get(name)
        if gauge is None:
            gauge = self._gauges[name] = self._meter.create_gauge(name)
        return _ApiGaugeSlot(gauge, dict(attrs))

    def record(self, cell: Cell, duration: float, score: float | None, cost: float, sampled: bool) -> None:
        self._predictions.add(1, cell.attrs)
        attrs = cell.base
        self._duration.record(duration, attrs)
        if score is not None:
            if score - score == 0.0:
                self._score.record(score, attrs)
            else:
                self._non_finite.add(1, _without_outcome(attrs))
        if cost:
            self._cost.add(cost, attrs)
        if sampled:
            self._sampled.add(1, attrs)

    def record_batch(
        self,
        cell: Cell,
        rows: int,
        duration: float,
        scores: np.ndarray[Any, Any] | None,
        cost: float,
        sampled: int,
    ) -> None:
        self._predictions.add(rows, cell.attrs)
        attrs = cell.base
        self._duration.record(duration, attrs)
        if scores is not None:
            finite, non_finite = split_finite(scores)
            for s in finite.tolist():
                self._score.record(s, attrs)
            if non_finite:
                self._non_finite.add(non_finite, _without_outcome(attrs))
        if cost:
            self._cost.add(cost, attrs)
        if sampled:
            self._sampled.add(sampled, attrs)

    def add(self, name: str, value: float, attrs: tuple[tuple[str, str], ...]) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = self._meter.create_counter(name)
        counter.add(value, dict(attrs))


def _without_outcome(attrs: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in attrs.items() if k != n.OUTCOME}


class _ApiFlight:
    """``enter``/``leave`` of the in-flight gauge through an UpDownCounter."""

    __slots__ = ("_attrs", "_counter")

    def __init__(self, counter: metrics.UpDownCounter, attrs: dict[str, str]) -> None:
        self._counter, self._attrs = counter, attrs

    def enter(self) -> None:
        self._counter.add(1, self._attrs)

    def leave(self) -> None:
        self._counter.add(-1, self._attrs)


class _ApiGaugeSlot:
    """A gauge series whose ``value`` assignments go to an OTel Gauge."""

    __slots__ = ("_attrs", "_gauge")

    def __init__(self, gauge: Any, attrs: dict[str, str]) -> None:
        self._gauge, self._attrs = gauge, attrs

    @property
    def value(self) -> float:
        raise AttributeError("write-only: the value lives in the application's MeterProvider")

    @value.setter
    def value(self, value: float) -> None:
        self._gauge.set(value, self._attrs)
