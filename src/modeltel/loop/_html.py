"""The self-contained HTML report: inline CSS and SVG only, no scripts, no external requests.

Each group gets five plots with stable ids (``{kind}-{n}``, n = the group's position):
``score-distribution``, ``calibration``, ``metrics-over-time``, ``drift``, ``cost-latency``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Final

from modeltel.loop._drift import KS_EFFECT, TV_EFFECT, DriftSignal
from modeltel.loop._durations import NS_PER_S, format_instant
from modeltel.loop._result import HOW_TO_DECLARE, Evaluation, GroupReport, InventoryEntry
from modeltel.loop._svg import Bar, Series, bar_chart, line_chart
from modeltel.loop._text import fmt, format_evaluation

__all__ = ["PLOTS", "render_html"]

PLOTS: Final = ("score-distribution", "calibration", "metrics-over-time", "drift", "cost-latency")

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
.plots{display:flex;flex-wrap:wrap;gap:12px}svg{background:#fafafa;border:1px solid #e4e4e4}
.t{font-size:13px;font-weight:600}text.l{font-size:11px;fill:#333}.a{stroke:#777}.g{stroke:#e8e8e8}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}.warn{color:#b00}
pre{background:#f6f6f6;padding:8px;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere}
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _score_plot(g: GroupReport, n: int) -> str:
    h = g.histogram
    if h is None:
        return line_chart(f"score-distribution-{n}", "score distribution (no scores)", [])
    centers = [(a + b) / 2 for a, b in zip(h.edges, h.edges[1:], strict=False)]
    series = [Series("reference", centers, list(h.reference)), Series("current", centers, list(h.current))]
    return line_chart(f"score-distribution-{n}", "score distribution: share per bin", series)


def _calibration_plot(g: GroupReport, n: int) -> str:
    chart_id, title = f"calibration-{n}", "calibration: observed positive rate vs mean score"
    diagonal = Series("perfect", [0.0, 1.0], [0.0, 1.0], dashed=True)
    if g.classification is None:
        return line_chart(chart_id, title + " (classification only)", [diagonal], y_range=(0.0, 1.0))
    bins = g.classification.reliability
    curve = Series("model", [b.mean_score for b in bins], [b.positive_rate for b in bins])
    return line_chart(chart_id, title, [curve, diagonal], y_range=(0.0, 1.0))


def _over_time_plot(g: GroupReport, n: int, period_ns: int) -> str:
    name = "quality" if any(p.quality is not None for p in g.periods) else "mean_score"
    points = g.periods
    xs = [p.start_ns / NS_PER_S for p in points]
    ys = [p.series(name) for p in points]
    label = g.primary_metric if name == "quality" and g.primary_metric else name
    series = [Series(label, xs, ys, markers=[name in p.outside_band for p in points])]
    if name == "quality" and any(p.estimated_quality is not None for p in points):
        estimated = [p.estimated_quality for p in points]
        series.append(Series(f"{label} estimated from scores", xs, estimated, dashed=True))
    band = [p.bands.get(name) for p in points]
    step = max(1, math.ceil(len(xs) / 6))
    return line_chart(
        f"metrics-over-time-{n}",
        f"{label} per period (start, UTC), trailing band",
        series,
        band=band,
        x_format=_time_format(period_ns),
        x_ticks=xs[::step],
    )


def _time_format(period_ns: int) -> Callable[[float], str]:
    """Period starts as dates, or with the time of day where periods are shorter than a day."""
    pattern = "%Y-%m-%d" if period_ns >= 86_400 * NS_PER_S else "%m-%d %H:%M"
    if period_ns < 60 * NS_PER_S:
        pattern = "%H:%M:%S"

    def formatted(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime(pattern)

    return formatted


def _drift_plot(g: GroupReport, n: int) -> str:
    bars = [Bar(s.signal, s.effect or 0.0, _effect_floor(s), s.flagged) for s in g.drift]
    title = "drift effect vs reference (KS; TV for categories; tick: floor)"
    return bar_chart(f"drift-{n}", title, bars)


def _effect_floor(s: DriftSignal) -> float:
    return KS_EFFECT if s.kind == "numeric" else TV_EFFECT


def _cost_plot(g: GroupReport, n: int) -> str:
    c = g.cost
    if c is None:
        return bar_chart(f"cost-latency-{n}", "cost and latency (no data)", [])
    bars = [
        Bar(
            f"latency {name}",
            value or 0.0,
            c.latency_budget_ms,
            bool(name == "p95" and c.latency_missed),
            "ms",
        )
        for name, value in (("p50", c.p50_ms), ("p95", c.p95_ms), ("p99", c.p99_ms))
    ]
    bars.append(
        Bar("cost per 1K predictions", c.cost_per_1k or 0.0, c.cost_per_1k_target, c.cost_missed, "/1K")
    )
    return bar_chart(f"cost-latency-{n}", "latency and cost vs targets: one scale per unit", bars)


def _group_section(g: GroupReport, n: int, period_ns: int) -> str:
    plots = [
        _score_plot(g, n),
        _calibration_plot(g, n),
        _over_time_plot(g, n, period_ns),
        _drift_plot(g, n),
        _cost_plot(g, n),
    ]
    drift_rows = [
        [
            s.signal,
            f"{s.n_reference:,} / {s.n_current:,}",
            f"{'KS' if s.kind == 'numeric' else 'TV'} {fmt(s.effect, '.3f')}",
            "" if s.p_value is None else f"{s.p_value:.2g}",
            fmt(s.psi, ".3f"),
            s.state,
        ]
        for s in g.drift
    ]
    trust_rows = [[t.signal, fmt(t.correlation, ".2f"), str(t.periods), t.verdict] for t in g.backtest]
    warnings = "".join(f'<li class="warn">{escape(w)}</li>' for w in g.warnings)
    return "\n".join(
        [
            f"<h2>{escape(g.label)} <small>{escape(g.task)}</small></h2>",
            f'<div class="plots">{"".join(plots)}</div>',
            "<h3>Per period</h3>",
            _periods_table(g, period_ns),
            "<h3>Statistical drift</h3>",
            _table(["signal", "n reference / current", "effect", "p-value", "PSI", "state"], drift_rows),
            "<h3>Backtest: did this signal move with quality?</h3>",
            _table(["signal", "rank correlation", "periods", "verdict"], trust_rows),
            f"<h3>Warnings</h3><ul>{warnings or '<li>none</li>'}</ul>",
        ]
    )


def _periods_table(g: GroupReport, period_ns: int) -> str:
    """Every period's counts and every quality metric (matured, labelled predictions), with the
    estimate from scores beside the primary one."""
    names = [m for m in dict.fromkeys(k for p in g.periods for k in p.metrics)]
    header = ["period start (UTC)", "predictions", "matured", "labelled", "coverage", *names]
    header.append(f"{g.primary_metric} estimated" if g.primary_metric else "estimated")
    start = _time_format(period_ns)
    rows = [
        [
            start(p.start_ns / NS_PER_S),
            f"{p.predictions:,}",
            f"{p.matured:,}",
            f"{p.labelled:,}",
            fmt(p.label_coverage, ".1%"),
            *(fmt(p.metrics.get(m)) for m in names),
            fmt(p.estimated_quality) + (" (off)" if p.estimate_off else ""),
        ]
        for p in g.periods
    ]
    return _table(header, rows)


def _inventory_rows(entries: Sequence[InventoryEntry]) -> list[list[str]]:
    return [
        [
            f"{e.model}@{e.version}",
            *(
                str(v) if v not in (None, "") else f"MISSING ({HOW_TO_DECLARE[k]})"
                for k, v in e.truth.items()
            ),
            "; ".join(e.missed) or "-",
        ]
        for e in entries
    ]


def render_html(evaluation: Evaluation) -> str:
    """The evaluation as one self-contained HTML document."""
    sections = [_group_section(g, n, evaluation.period_ns) for n, g in enumerate(evaluation.groups)]
    truth_keys = list(evaluation.inventory[0].truth) if evaluation.inventory else []
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8"><title>modeltel evaluation</title>',
            f"<style>{_STYLE}</style></head><body>",
            f"<h1>modeltel evaluation, as of {escape(format_instant(evaluation.as_of_ns))}</h1>",
            f"<pre>{escape(format_evaluation(evaluation))}</pre>",
            *sections,
            "<h2>Inventory</h2>",
            _table(["model", *truth_keys, "missed targets"], _inventory_rows(evaluation.inventory)),
            "</body></html>",
        ]
    )
