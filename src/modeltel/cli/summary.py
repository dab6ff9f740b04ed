"""``modeltel summary PATH``: per model, version and tenant figures from OTLP/JSON files.

Metrics are cumulative, re-exported periodically and possibly written by several
processes into the same file, so only the latest point of each series is used
(see ``modeltel._export.otlp_flat.latest_points``) before summing across series.

Latency quantiles are estimates: like Prometheus ``histogram_quantile`` they interpolate
linearly inside the bucket holding the requested rank, so the error is bounded by that
bucket's width (narrowed by the recorded min and max when known).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeltel import _names as n
from modeltel._export.otlp_flat import FlatRecord, latest_points
from modeltel._export.otlp_json import OtlpFiles
from modeltel._features import feature_row_count
from modeltel._gc import gc_paused
from modeltel.loop._collector import read_collected

__all__ = [
    "MergedHistogram",
    "Summary",
    "SummaryRow",
    "format_summary",
    "histogram_quantile",
    "histogram_std_estimate",
    "merge_histograms",
    "summarize",
    "summarize_files",
]

Key = tuple[str, str, str]
"""(model name, model version, tenant)."""

QUANTILES = (0.5, 0.95, 0.99)
TOP_TENANTS = 20
"""Tenants shown per model/version by default; the rest share one row."""


@dataclass(frozen=True)
class MergedHistogram:
    """Histogram points added together; ``bounds`` is None if their bucket bounds differ."""

    count: int
    sum: float | None
    min: float | None
    max: float | None
    bounds: tuple[float, ...] | None
    bucket_counts: tuple[int, ...]


@dataclass(frozen=True)
class SummaryRow:
    """Figures for one (model, version, tenant); ``tenant`` is None on a model/version total row,
    and ``others`` counts the tenants of the row that folds the smaller ones together."""

    model: str
    version: str
    tenant: str | None
    outcomes: dict[str, int]
    latency_ms: dict[float, float | None]
    score_mean: float | None
    score_std_estimate: float | None
    non_finite: int
    feature_records: int  # sampled predictions: a batch call's one record counts its rows
    spans: int
    others: int = 0  # on the row folding a model/version's smaller tenants: how many it holds

    @property
    def calls(self) -> int:
        """Predictions across all outcomes."""
        return sum(self.outcomes.values())


@dataclass(frozen=True)
class Summary:
    """Rows in display order (each model/version's tenants, then its total row)."""

    folder: str
    rows: list[SummaryRow]
    outcomes: tuple[str, ...]
    bad_lines: int


def merge_histograms(points: Iterable[FlatRecord]) -> MergedHistogram | None:
    """Add histogram points (already reduced to latest cumulative points); None if there are none."""
    points = list(points)
    if not points:
        return None
    # Buckets can only be added when every point uses the same bounds.
    shapes = {(tuple(p["explicit_bounds"]), len(p["bucket_counts"])) for p in points}
    same_shape = len(shapes) == 1
    buckets = zip(*(p["bucket_counts"] for p in points), strict=True) if same_shape else iter(())
    return MergedHistogram(
        count=sum(p["count"] for p in points),
        sum=_sum_or_none(p["sum"] for p in points),
        min=_extreme_or_none(min, (p["min"] for p in points)),
        max=_extreme_or_none(max, (p["max"] for p in points)),
        bounds=shapes.pop()[0] if same_shape else None,
        bucket_counts=tuple(map(sum, buckets)),
    )


def _sum_or_none(values: Iterable[float | None]) -> float | None:
    values = list(values)
    return None if None in values else sum(v for v in values if v is not None)


def _extreme_or_none(pick: Callable[[list[float]], float], values: Iterable[float | None]) -> float | None:
    # A bound is only known for the merge if every point recorded one.
    values = list(values)
    return None if None in values else pick([v for v in values if v is not None])


def _bucket_edges(hist: MergedHistogram, index: int) -> tuple[float, float]:
    """Finite (lower, upper) edges of bucket ``index``, narrowed by the recorded min/max."""
    bounds = hist.bounds or ()
    lower = bounds[index - 1] if index > 0 else -math.inf
    upper = bounds[index] if index < len(bounds) else math.inf
    if hist.min is not None:
        lower = max(lower, hist.min)
    if hist.max is not None:
        upper = min(upper, hist.max)
    # Without min/max, fall back to Prometheus' choices: the first bucket starts at 0
    # (or collapses onto a non-positive bound) and the overflow bucket collapses onto
    # the highest finite bound.
    if math.isinf(lower):
        lower = min(0.0, upper)
    if math.isinf(upper):
        upper = lower
    return lower, upper


def histogram_quantile(q: float, hist: MergedHistogram) -> float | None:
    """Estimate quantile ``q`` (0..1) by linear interpolation inside the bucket holding its rank.

    The estimate is off by at most the width of that bucket. None when the histogram is
    empty or merged from points with different bucket bounds.
    """
    total = sum(hist.bucket_counts)
    if hist.bounds is None or total == 0:
        return None
    rank = q * total
    seen = 0
    for index, in_bucket in enumerate(hist.bucket_counts):
        if in_bucket and seen + in_bucket >= rank:
            lower, upper = _bucket_edges(hist, index)
            return lower + (upper - lower) * (rank - seen) / in_bucket
        seen += in_bucket
    return None


def histogram_std_estimate(hist: MergedHistogram) -> float | None:
    """Estimate the standard deviation by placing every value at its bucket's midpoint."""
    total = sum(hist.bucket_counts)
    if hist.bounds is None or total == 0 or hist.sum is None:
        return None
    mean = hist.sum / hist.count
    squares = 0.0
    for index, in_bucket in enumerate(hist.bucket_counts):
        if in_bucket:
            lower, upper = _bucket_edges(hist, index)
            squares += in_bucket * ((lower + upper) / 2 - mean) ** 2
    return math.sqrt(squares / total)


def _text(attributes: dict[str, Any], name: str) -> str:
    value = attributes.get(name, "")
    return value if isinstance(value, str) else str(value)


def _attr_key(attributes: dict[str, Any]) -> Key | None:
    model = _text(attributes, n.MODEL_NAME)
    if not model:
        return None
    return model, _text(attributes, n.MODEL_VERSION), _text(attributes, n.TENANT)


def _span_key(span: FlatRecord) -> Key | None:
    name: str = span["name"]
    if not name.startswith(n.SPAN_NAME_PREFIX):
        return None
    attributes = span["attributes"]
    return name[len(n.SPAN_NAME_PREFIX) :], _text(attributes, n.MODEL_VERSION), _text(attributes, n.TENANT)


@dataclass(slots=True)
class _Group:
    """What one (model, version, tenant) recorded: its metric points by name, sampled feature
    rows and spans; ``shown`` when it has a row of its own (calls, latency, features or spans)."""

    points: dict[str, list[FlatRecord]] = field(default_factory=dict)
    feature_records: int = 0
    spans: int = 0
    shown: bool = False

    def calls(self) -> int:
        return int(sum(p["value"] for p in self.points.get(n.M_PREDICTIONS, ())))


_ROW_METRICS = frozenset({n.M_PREDICTIONS, n.M_DURATION})


def _groups(files: OtlpFiles) -> dict[Key, _Group]:
    """Every point, feature record and span added to its (model, version, tenant), in one pass."""
    groups: dict[Key, _Group] = {}
    for point in latest_points(files.metrics):
        key = _attr_key(point["attributes"])
        if key is not None:
            group = _group(groups, key)
            group.points.setdefault(point["name"], []).append(point)
            group.shown = group.shown or point["name"] in _ROW_METRICS
    for record in files.logs:
        key = _attr_key(record["attributes"]) if record["event_name"] == n.EVENT_FEATURES else None
        if key is not None:
            group = _group(groups, key)
            group.feature_records += feature_row_count(record["body"])
            group.shown = True
    for span in files.spans:
        key = _span_key(span)
        if key is not None:
            group = _group(groups, key)
            group.spans += 1
            group.shown = True
    return groups


def _group(groups: dict[Key, _Group], key: Key) -> _Group:
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Group()
    return group


def _outcomes(points: Sequence[FlatRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for point in points:
        outcome = _text(point["attributes"], n.OUTCOME)
        counts[outcome] = counts.get(outcome, 0) + int(point["value"])
    return counts


def _latency_ms(hist: MergedHistogram | None) -> dict[float, float | None]:
    estimates = {q: histogram_quantile(q, hist) if hist else None for q in QUANTILES}
    return {q: None if s is None else s * 1000 for q, s in estimates.items()}


def _row(
    groups: Sequence[_Group], model: str, version: str, tenant: str | None, others: int = 0
) -> SummaryRow:
    """One row over ``groups``: a tenant's own, the tenants folded together, or all of them."""

    def select(name: str) -> list[FlatRecord]:
        return [p for group in groups for p in group.points.get(name, ())]

    score = merge_histograms(select(n.M_SCORE))
    return SummaryRow(
        model=model,
        version=version,
        tenant=tenant,
        outcomes=_outcomes(select(n.M_PREDICTIONS)),
        latency_ms=_latency_ms(merge_histograms(select(n.M_DURATION))),
        score_mean=score.sum / score.count if score and score.count and score.sum is not None else None,
        score_std_estimate=histogram_std_estimate(score) if score else None,
        non_finite=int(sum(p["value"] for p in select(n.M_SCORE_NON_FINITE))),
        feature_records=sum(group.feature_records for group in groups),
        spans=sum(group.spans for group in groups),
        others=others,
    )


def _version_rows(model: str, version: str, tenants: dict[str, _Group], top: int | None) -> list[SummaryRow]:
    """A model/version's rows: its ``top`` tenants by calls, the rest folded into one row, the total."""
    shown = sorted((t for t, g in tenants.items() if g.shown), key=lambda t: (-tenants[t].calls(), t))
    folded = shown[top:] if top is not None and len(shown) > top + 1 else []
    rows = [_row([tenants[t]], model, version, t) for t in shown[: len(shown) - len(folded)]]
    if folded:
        label = f"({len(folded):,} others)"
        rows.append(_row([tenants[t] for t in folded], model, version, label, others=len(folded)))
    rows.append(_row(list(tenants.values()), model, version, None))
    return rows


def _outcome_columns(rows: Iterable[SummaryRow]) -> tuple[str, ...]:
    seen = {outcome for row in rows for outcome, count in row.outcomes.items() if count}
    known = [o for o in n.OUTCOMES if o in (n.OK, n.ERROR) or o in seen]
    return (*known, *sorted(seen.difference(n.OUTCOMES)))


def summarize(folder: str | os.PathLike[str], top: int | None = TOP_TENANTS) -> Summary:
    """Read the OTLP/JSON files in ``folder`` and compute rows per (model, version, tenant).

    Per model/version: its ``top`` tenants by calls (all of them with ``top=None``), the rest
    folded into one row (``others`` tenants, tenant ``"(N others)"``), then a total row
    (``tenant=None``) over all its tenants. One pass over the records: linear in their number.
    """
    with gc_paused():
        return summarize_files(read_collected(Path(folder)), os.fspath(folder), top)


def summarize_files(files: OtlpFiles, folder: str = "", top: int | None = TOP_TENANTS) -> Summary:
    """:func:`summarize` over records already read (``folder`` only names them in the output)."""
    with gc_paused():
        return _summarize(files, folder, top)


def _summarize(files: OtlpFiles, folder: str, top: int | None) -> Summary:
    by_version: dict[tuple[str, str], dict[str, _Group]] = {}
    for (model, version, tenant), group in _groups(files).items():
        by_version.setdefault((model, version), {})[tenant] = group
    rows: list[SummaryRow] = []
    for (model, version), tenants in sorted(by_version.items()):
        if any(group.shown for group in tenants.values()):
            rows.extend(_version_rows(model, version, tenants, top))
    return Summary(folder, rows, _outcome_columns(rows), files.bad_lines)


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cells(row: SummaryRow, outcomes: Sequence[str]) -> list[str]:
    tenant = "(all)" if row.tenant is None else row.tenant or "-"
    return [
        row.model,
        row.version or "-",
        tenant,
        str(row.calls),
        *(str(row.outcomes.get(o, 0)) for o in outcomes),
        *(_number(row.latency_ms[q]) for q in QUANTILES),
        _number(row.score_mean, 4),
        _number(row.score_std_estimate, 4),
        str(row.non_finite),
        str(row.feature_records),
        str(row.spans),
    ]


def _header(outcomes: Sequence[str]) -> list[str]:
    latency = [f"p{round(q * 100)} ms" for q in QUANTILES]
    figures = ["score mean", "score std~", "non-finite", "features", "spans"]
    return ["model", "version", "tenant", "calls", *outcomes, *latency, *figures]


def _table(lines: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    # Text columns (model, version, tenant) align left, figures align right.
    return [
        "  ".join(
            cell.ljust(w) if i < 3 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]


def format_summary(summary: Summary) -> str:
    """Render ``summary`` as a fixed-width table with notes on the estimated columns."""
    if not summary.rows:
        lines = [f"no modeltel telemetry found in {summary.folder}"]
    else:
        table = _table([_header(summary.outcomes), *(_cells(r, summary.outcomes) for r in summary.rows)])
        lines = [*table, "", *_notes()]
    if summary.bad_lines:
        lines.append(f"skipped {summary.bad_lines} malformed line(s)")
    return "\n".join(lines)


def _notes() -> list[str]:
    return [
        "latency quantiles are estimated by interpolation within histogram buckets"
        " (error up to one bucket width)",
        "score std~ is estimated from histogram bucket midpoints; score mean is exact",
    ]
