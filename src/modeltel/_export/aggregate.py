"""Local, exact metric aggregation: the hot path adds to plain numbers under one short lock.

Recording through the OTel SDK costs several microseconds per instrument per call; modeltel's
own metrics instead accumulate here, per pre-built attribute set, exactly as the SDK's
cumulative sum and explicit-bucket histogram aggregations would (same bucket rule:
``bisect_left`` over the bounds, upper bound inclusive), and become OTel ``Metric`` data once per
collection. :class:`MergingMetricExporter` adds them to what the SDK collected.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)

from modeltel import _forksafe
from modeltel import _names as n
from modeltel._scores import split_finite


class Hist:
    """One explicit-bucket histogram series."""

    __slots__ = ("bounds", "count", "counts", "edges", "max", "min", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.edges = np.asarray(bounds, dtype=float)  # bounds as an array, made once for add_many
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, v: float) -> None:
        self.counts[bisect_left(self.bounds, v)] += 1
        self.count += 1
        self.sum += v
        if v < self.min:
            self.min = v
        if v > self.max:
            self.max = v

    def reset(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add_many(self, values: np.ndarray[Any, Any]) -> None:
        if values.size == 0:
            return
        idx = self.edges.searchsorted(values, side="left")
        for i, c in enumerate(np.bincount(idx, minlength=len(self.counts)).tolist()):
            self.counts[i] += c
        self.count += int(values.size)
        self.sum += float(values.sum())
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))


class Cell:
    """All per-prediction metrics of one (model, version, tenant, outcome[, class]) attribute set.

    ``attrs`` may carry ``ml.prediction.class``; only ``ml.predictions`` is exported with it
    (``base`` is the set without it), so classes do not multiply histogram series.
    """

    __slots__ = (
        "attrs",
        "base",
        "cost",
        "duration",
        "non_finite",
        "predictions",
        "sampled",
        "score",
        "start_ns",
    )

    def __init__(self, attrs: dict[str, str]) -> None:
        self.attrs = attrs
        self.base = {k: v for k, v in attrs.items() if k != n.PREDICTED_CLASS}
        self.start_ns = time.time_ns()
        self.predictions = 0
        self.non_finite = 0
        self.sampled = 0
        self.cost = 0.0
        self.duration = Hist(n.DURATION_BOUNDS)
        self.score = Hist(n.SCORE_BOUNDS)


class Flight:
    """The in-flight gauge of one model/version: starts minus finishes, no lock on the hot path.

    ``next()`` on an ``itertools.count`` is one C call under the GIL, so ``enter`` and ``leave``
    are atomic without a lock; the gauge reads both counters at collection time.
    """

    __slots__ = ("enter", "finished", "leave", "start_ns", "started")

    def __init__(self) -> None:
        self.start_ns = time.time_ns()
        self.started = itertools.count()
        self.finished = itertools.count()
        self.enter = self.started.__next__
        self.leave = self.finished.__next__

    def value(self) -> int:
        """Predictions started and not yet finished (0 if a finish races ahead of its read)."""
        return max(0, _count_of(self.started) - _count_of(self.finished))


class GaugeSlot:
    """One last-value gauge series: the hot path stores ``value``; collection reads it."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = math.nan


def _count_of(counter: itertools.count[int]) -> int:
    return int(repr(counter)[6:-1])  # "count(41)": reading it must not advance it


class Aggregator:
    """Every modeltel metric series of this process."""

    def __init__(self, currency: str = "USD") -> None:
        self.currency = currency
        self._lock = threading.Lock()
        self._cells: dict[tuple[str, ...], Cell] = {}
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
        self._in_flight: dict[tuple[tuple[str, str], ...], Flight] = {}
        self._gauges: dict[tuple[str, tuple[tuple[str, str], ...]], GaugeSlot] = {}
        _forksafe.register(self)

    def cell(self, model: str, version: str, tenant: str, outcome: str, cls: str | None = None) -> Cell:
        """The series for one attribute set, created on first use."""
        key = (model, version, tenant, outcome, cls or "")
        cell = self._cells.get(key)
        if cell is None:
            attrs = {n.MODEL_NAME: model, n.MODEL_VERSION: version, n.TENANT: tenant, n.OUTCOME: outcome}
            if cls is not None:
                attrs[n.PREDICTED_CLASS] = cls
            with self._lock:
                cell = self._cells.setdefault(key, Cell(attrs))
        return cell

    def flight(self, key: tuple[tuple[str, str], ...]) -> Flight:
        """The in-flight gauge of one model/version: ``enter()`` as a call starts, ``leave()`` as it ends."""
        with self._lock:
            slot = self._in_flight.get(key)
            if slot is None:
                slot = self._in_flight[key] = Flight()
            return slot

    def gauge_slot(self, name: str, attrs: tuple[tuple[str, str], ...]) -> GaugeSlot:
        """The last-value gauge series ``name`` with ``attrs`` (remaining budget); set its ``value``."""
        with self._lock:
            slot = self._gauges.get((name, attrs))
            if slot is None:
                slot = self._gauges[(name, attrs)] = GaugeSlot()
            return slot

    def record(self, cell: Cell, duration: float, score: float | None, cost: float, sampled: bool) -> None:
        """One single-row prediction."""
        d = cell.duration
        with self._lock:
            cell.predictions += 1
            # Hist.add inlined: this runs on every prediction.
            d.counts[bisect_left(d.bounds, duration)] += 1
            d.count += 1
            d.sum += duration
            if duration < d.min:
                d.min = duration
            if duration > d.max:
                d.max = duration
            if score is not None:
                if score - score == 0.0:  # finite: inf - inf and nan - nan are nan
                    cell.score.add(score)
                else:
                    cell.non_finite += 1
            if cost:
                cell.cost += cost
            if sampled:
                cell.sampled += 1

    def record_batch(
        self,
        cell: Cell,
        rows: int,
        duration: float,
        scores: np.ndarray[Any, Any] | None,
        cost: float,
        sampled: int,
    ) -> None:
        """One batch call: ``rows`` predictions, one duration, per-row scores."""
        finite, non_finite = split_finite(scores) if scores is not None else (None, 0)
        with self._lock:
            cell.predictions += rows
            cell.duration.add(duration)
            if finite is not None:
                cell.score.add_many(finite)
                cell.non_finite += non_finite
            if cost:
                cell.cost += cost
            cell.sampled += sampled

    def add(self, name: str, value: float, attrs: tuple[tuple[str, str], ...]) -> None:
        """Add to a plain monotonic counter series (violations, drops)."""
        key = (name, attrs)
        with self._lock:
            slot = self._counters.get(key)
            if slot is None:
                slot = self._counters[key] = [0, time.time_ns()]
            slot[0] += value

    def metrics(self, delta: bool = False) -> list[Metric]:
        """Everything recorded so far, as cumulative OTel metric data; with ``delta``, what was
        recorded since the last such call, with counters and histograms reset (as the SDK's delta
        aggregations do: only series with new measurements, min and max of the interval). The
        in-flight and last-value gauges are current values either way. Delta readings take what
        they read, so an aggregator feeds one delta reader and nothing else."""
        now = time.time_ns()
        with self._lock:
            cells = [_snapshot(c) for c in self._cells.values()]
            counters = [
                (name, dict(attrs), v, int(start))
                for (name, attrs), (v, start) in self._counters.items()
                if v or not delta  # a delta point only where something was added
            ]
            if delta:
                self._reset(now)
            in_flight = [(dict(key), f.value(), f.start_ns) for key, f in self._in_flight.items()]
            gauges = [
                (name, dict(attrs), s.value, now)
                for (name, attrs), s in self._gauges.items()
                if s.value == s.value  # NaN: created, not yet set
            ]
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        cell_metrics = _cell_metrics(cells, now, self.currency, temporality)
        counter_metrics = _counter_metrics(counters, now, temporality)
        return cell_metrics + counter_metrics + _gauge(in_flight, now) + _last_values(gauges)

    def _reset(self, now: int) -> None:
        """Start a new interval for every counter and histogram series (under the lock)."""
        for c in self._cells.values():
            c.start_ns = now
            c.predictions = c.non_finite = c.sampled = 0
            c.cost = 0.0
            c.duration.reset()
            c.score.reset()
        for slot in self._counters.values():
            slot[0], slot[1] = 0, now

    def _after_fork(self) -> None:
        # A child starts with empty series: counts made before the fork belong to the parent.
        self._lock = threading.Lock()
        self._cells = {}
        self._counters = {}
        self._in_flight = {}
        self._gauges = {}


def _last_values(gauges: list[tuple[str, dict[str, str], float, int]]) -> list[Metric]:
    by_name: dict[str, list[NumberDataPoint]] = {}
    for name, attrs, value, t in gauges:
        by_name.setdefault(name, []).append(
            NumberDataPoint(attributes=attrs, start_time_unix_nano=0, time_unix_nano=t, value=value)
        )
    return [
        Metric(name=name, description="Budget left in the current window", unit="", data=Gauge(points))
        for name, points in by_name.items()
    ]


def _gauge(in_flight: list[tuple[dict[str, str], int, int]], now: int) -> list[Metric]:
    if not in_flight:
        return []
    points = [
        NumberDataPoint(attributes=a, start_time_unix_nano=s, time_unix_nano=now, value=v)
        for a, v, s in in_flight
    ]
    data = Sum(
        data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE, is_monotonic=False
    )
    return [Metric(name=n.M_IN_FLIGHT, description="Predictions running now", unit="{prediction}", data=data)]


def _merged_over_class(cells: list[Cell]) -> list[Cell]:
    """Cells that differ only by class, added together (for every metric but ml.predictions)."""
    if not any(n.PREDICTED_CLASS in c.attrs for c in cells):
        return cells
    merged: dict[tuple[tuple[str, str], ...], Cell] = {}
    for c in cells:
        key = tuple(sorted(c.base.items()))
        into = merged.get(key)
        if into is None:
            merged[key] = _snapshot(c, attrs=c.base)
            continue
        into.start_ns = min(into.start_ns, c.start_ns)
        into.non_finite += c.non_finite
        into.sampled += c.sampled
        into.cost += c.cost
        _add_hist(into.duration, c.duration)
        _add_hist(into.score, c.score)
    return list(merged.values())


def _add_hist(into: Hist, h: Hist) -> None:
    into.counts = [a + b for a, b in zip(into.counts, h.counts, strict=True)]
    into.count += h.count
    into.sum += h.sum
    into.min = min(into.min, h.min)
    into.max = max(into.max, h.max)


def _snapshot(c: Cell, attrs: dict[str, str] | None = None) -> Cell:
    copy = Cell.__new__(Cell)
    copy.attrs = c.attrs if attrs is None else attrs
    copy.base, copy.start_ns = c.base, c.start_ns
    copy.predictions, copy.non_finite, copy.sampled, copy.cost = (
        c.predictions,
        c.non_finite,
        c.sampled,
        c.cost,
    )
    copy.duration, copy.score = _copy_hist(c.duration), _copy_hist(c.score)
    return copy


def _copy_hist(h: Hist) -> Hist:
    copy = Hist(h.bounds)
    copy.counts, copy.count, copy.sum, copy.min, copy.max = list(h.counts), h.count, h.sum, h.min, h.max
    return copy


def _sum_metric(
    name: str, unit: str, desc: str, points: list[NumberDataPoint], temporality: AggregationTemporality
) -> Metric:
    data = Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=True)
    return Metric(name=name, description=desc, unit=unit, data=data)


def _number_points(cells: list[Cell], attr: str, now: int, attrs_of: Any = None) -> list[NumberDataPoint]:
    # Cells whose attributes coincide once attrs_of drops one (e.g. the outcome) are one series.
    series: dict[tuple[tuple[str, str], ...], list[Any]] = {}
    for c in cells:
        value = getattr(c, attr)
        if value:
            attrs = c.attrs if attrs_of is None else attrs_of(c)
            slot = series.setdefault(tuple(sorted(attrs.items())), [attrs, 0, c.start_ns])
            slot[1] += value
            slot[2] = min(slot[2], c.start_ns)
    points = []
    for attrs, value, start in series.values():
        points.append(
            NumberDataPoint(attributes=attrs, start_time_unix_nano=start, time_unix_nano=now, value=value)
        )
    return points


def _hist_points(cells: list[Cell], attr: str, now: int) -> list[HistogramDataPoint]:
    points = []
    for c in cells:
        h: Hist = getattr(c, attr)
        if h.count:
            points.append(
                HistogramDataPoint(
                    attributes=c.attrs,
                    start_time_unix_nano=c.start_ns,
                    time_unix_nano=now,
                    count=h.count,
                    sum=h.sum,
                    bucket_counts=tuple(h.counts),
                    explicit_bounds=tuple(h.bounds),
                    min=h.min,
                    max=h.max,
                )
            )
    return points


def _without_outcome(c: Cell) -> dict[str, str]:
    return {k: v for k, v in c.attrs.items() if k != n.OUTCOME}


def _cell_metrics(
    cells: list[Cell], now: int, currency: str, temporality: AggregationTemporality
) -> list[Metric]:
    out = []
    points = _number_points(cells, "predictions", now)
    if points:
        desc = "Predictions by outcome (one per row for batches)"
        out.append(_sum_metric(n.M_PREDICTIONS, "{prediction}", desc, points, temporality))
    cells = _merged_over_class(cells)
    for name, unit, desc, attr, attrs_of in (
        (
            n.M_SCORE_NON_FINITE,
            "{prediction}",
            "Scores that were NaN or infinite",
            "non_finite",
            _without_outcome,
        ),
        (n.M_COST, currency, "Cost of predictions", "cost", None),
        (n.M_FEATURES_SAMPLED, "{record}", "Predictions whose full features were logged", "sampled", None),
    ):
        points = _number_points(cells, attr, now, attrs_of)
        if points:
            out.append(_sum_metric(name, unit, desc, points, temporality))
    for name, unit, desc, attr in (
        (n.M_DURATION, "s", "Duration of predict calls", "duration"),
        (n.M_SCORE, "1", "Prediction scores (finite only)", "score"),
    ):
        hist_points = _hist_points(cells, attr, now)
        if hist_points:
            data = Histogram(data_points=hist_points, aggregation_temporality=temporality)
            out.append(Metric(name=name, description=desc, unit=unit, data=data))
    return out


_COUNTER_META = {
    n.M_VIOLATIONS: ("{violation}", "Contract violations by feature and kind"),
    n.M_DROPPED_FEATURES: ("{record}", "Sampled feature records dropped for size or encoding"),
    "ml.cascade.calls": ("{call}", "Cascade calls by the tier that answered"),
    n.M_SHADOW: ("{call}", "Shadow (challenger) calls by agreement with the champion"),
    n.M_SHADOW_DELTA: ("1", "Sum of |challenger score - champion score|"),
}


def _counter_metrics(
    counters: list[tuple[str, dict[str, str], float, int]], now: int, temporality: AggregationTemporality
) -> list[Metric]:
    by_name: dict[str, list[NumberDataPoint]] = {}
    for name, attrs, value, start in counters:
        by_name.setdefault(name, []).append(
            NumberDataPoint(attributes=attrs, start_time_unix_nano=start, time_unix_nano=now, value=value)
        )
    return [
        _sum_metric(name, *_COUNTER_META.get(name, ("1", "")), pts, temporality)
        for name, pts in by_name.items()
    ]
