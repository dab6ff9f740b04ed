"""Tiny inline-SVG charts (lines with optional band, horizontal bars): no JS, no external assets.

Every chart has labelled ticks on its axes and a legend whose swatches carry their series'
colour. The palette (Okabe-Ito hues) is safe for the common colour-vision deficiencies, and its
first colours differ in lightness, so they stay apart in greyscale too; the second series of a
chart is also drawn dashed when the caller asks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Final

__all__ = ["Bar", "Series", "bar_chart", "line_chart", "nice_ticks"]

WIDTH: Final = 560
HEIGHT: Final = 260
_PAD: Final = (56, 16, 28, 62)  # left, right, top, bottom (x tick labels, then the legend)
# Dark blue, orange, bluish green, reddish purple, sky blue, vermillion: lightness ~27, 73, 57, 51, 70, 55.
PALETTE: Final = ("#1d3f8f", "#e69f00", "#009e73", "#b0508c", "#56b4e9", "#d55e00")
ALERT: Final = "#d55e00"
_TARGET: Final = 'stroke="#000" stroke-width="2"'
NORMAL: Final = "#1d3f8f"

Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """A named polyline; ``None`` values break the line. ``dashed`` draws it dashed."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    dashed: bool = False
    markers: Sequence[bool] = field(default_factory=tuple)


@dataclass(frozen=True)
class Bar:
    """One horizontal bar, with an optional target tick; bars of one ``unit`` share a scale."""

    label: str
    value: float
    target: float | None = None
    alert: bool = False
    unit: str = ""


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values from ``lo`` to ``hi`` (at most about ``count``), 1-2-5 steps."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _number(value: float) -> str:
    return f"{value:.3g}"


def _bounds(values: Sequence[float]) -> tuple[float, float]:
    """Values' range with a 5% margin; never below 0 for values that are all >= 0."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    margin = (hi - lo) * 0.05
    low = lo - margin
    return (0.0 if lo >= 0 > low else low), hi + margin


class _Frame:
    def __init__(self, xr: tuple[float, float], yr: tuple[float, float]) -> None:
        self.xr, self.yr = xr, yr
        left, right, top, bottom = _PAD
        self.x0, self.x1, self.y0, self.y1 = left, WIDTH - right, HEIGHT - bottom, top

    def x(self, value: float) -> float:
        lo, hi = self.xr
        return self.x0 + (value - lo) / (hi - lo) * (self.x1 - self.x0)

    def y(self, value: float) -> float:
        lo, hi = self.yr
        return self.y0 - (value - lo) / (hi - lo) * (self.y0 - self.y1)


def _open(chart_id: str, title: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" class="t">{escape(title)}</text>',
    ]


def _axes(f: _Frame, x_format: Format, x_ticks: Sequence[float] | None) -> list[str]:
    parts = [
        f'<line x1="{f.x0}" y1="{f.y0}" x2="{f.x1}" y2="{f.y0}" class="a"/>',
        f'<line x1="{f.x0}" y1="{f.y0}" x2="{f.x0}" y2="{f.y1}" class="a"/>',
    ]
    for value in nice_ticks(*f.yr):
        y = f.y(value)
        parts.append(f'<line x1="{f.x0}" y1="{y:.1f}" x2="{f.x1}" y2="{y:.1f}" class="g"/>')
        parts.append(
            f'<text x="{f.x0 - 5}" y="{y + 4:.1f}" text-anchor="end" class="l">{_number(value)}</text>'
        )
    for value in nice_ticks(*f.xr) if x_ticks is None else x_ticks:
        x = f.x(value)
        parts.append(f'<line x1="{x:.1f}" y1="{f.y0}" x2="{x:.1f}" y2="{f.y0 + 4}" class="a"/>')
        label = escape(x_format(value))
        parts.append(f'<text x="{x:.1f}" y="{f.y0 + 16}" text-anchor="middle" class="l">{label}</text>')
    return parts


def _polyline(f: _Frame, s: Series, color: str) -> list[str]:
    segments: list[list[str]] = [[]]
    for x, y in zip(s.xs, s.ys, strict=True):
        if y is None or not math.isfinite(y):
            segments.append([])
        else:
            segments[-1].append(f"{f.x(x):.1f},{f.y(y):.1f}")
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    parts = [
        f'<polyline points="{" ".join(seg)}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
        for seg in segments
        if seg
    ]
    for x, y, marked in zip(s.xs, s.ys, s.markers, strict=False):
        if marked and y is not None:
            parts.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="4" fill="{ALERT}"/>')
    return parts


def _band(f: _Frame, xs: Sequence[float], band: Sequence[tuple[float, float] | None]) -> str:
    points = [(x, b) for x, b in zip(xs, band, strict=False) if b is not None]
    if not points:
        return ""
    upper = [f"{f.x(x):.1f},{f.y(b[1]):.1f}" for x, b in points]
    lower = [f"{f.x(x):.1f},{f.y(b[0]):.1f}" for x, b in reversed(points)]
    return f'<polygon points="{" ".join(upper + lower)}" fill="{PALETTE[0]}" fill-opacity="0.12"/>'


def _legend(entries: Sequence[tuple[str, str]], y: float) -> list[str]:
    """One swatch (a filled square in the entry's colour) and its name per entry."""
    parts = []
    x = float(_PAD[0])
    for name, color in entries:
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{color}" class="sw"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{y:.1f}" class="l">{escape(name)}</text>')
        x += 24 + 6.5 * len(name)
    return parts


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    *,
    band: Sequence[tuple[float, float] | None] = (),
    y_range: tuple[float, float] | None = None,
    x_format: Format = _number,
    x_ticks: Sequence[float] | None = None,
) -> str:
    """An SVG line chart; ``band`` (low, high) per x of the first series is shaded."""
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys if y is not None] + [v for b in band if b for v in b]
    f = _Frame(_bounds(xs), y_range or _bounds(ys))
    parts = _open(chart_id, title)
    if series and band:
        parts.append(_band(f, series[0].xs, band))
    parts.extend(_axes(f, x_format, x_ticks))
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    for s, color in zip(series, colors, strict=True):
        parts.extend(_polyline(f, s, color))
    entries = [(s.name, color) for s, color in zip(series, colors, strict=True)]
    if band and any(band):
        entries.append(("trailing band", "#c8cfe3"))
    parts.extend(_legend(entries, HEIGHT - 10))
    parts.append("</svg>")
    return "\n".join(p for p in parts if p)


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], unit: str = "") -> str:
    """An SVG horizontal bar chart: bars of one unit share a scale and an axis of their own;
    targets are black ticks, alerting bars are in the alert colour."""
    groups: dict[str, list[Bar]] = {}
    for bar in bars:
        groups.setdefault(bar.unit or unit, []).append(bar)
    row, left, span = 22, 170, WIDTH - 170 - 80
    height = 40 + sum(row * len(g) + 30 for g in groups.values()) + 24
    parts = _open(chart_id, title, max(height, HEIGHT // 2))
    y = 28.0
    for group_unit, members in groups.items():
        top = max([b.value for b in members] + [b.target or 0.0 for b in members] + [1e-12])
        ticks = nice_ticks(0.0, top, 4)
        top = max(top, ticks[-1])
        for bar in members:
            width = max(bar.value, 0.0) / top * span
            color = ALERT if bar.alert else NORMAL
            parts.append(
                f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" class="l">{escape(bar.label)}</text>'
            )
            parts.append(
                f'<rect x="{left}" y="{y + 2}" width="{width:.1f}" height="{row - 6}" fill="{color}"/>'
            )
            value = f"{bar.value:.3g}{' ' + group_unit if group_unit else ''}"
            parts.append(f'<text x="{left + width + 4:.1f}" y="{y + 13}" class="l">{escape(value)}</text>')
            if bar.target is not None:
                tx = left + bar.target / top * span
                parts.append(f'<line x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + row - 2}" {_TARGET}/>')
            y += row
        parts.append(f'<line x1="{left}" y1="{y + 2}" x2="{left + span}" y2="{y + 2}" class="a"/>')
        for tick in ticks:
            tx = left + tick / top * span
            label = f"{_number(tick)}{' ' + group_unit if group_unit else ''}"
            parts.append(f'<line x1="{tx:.1f}" y1="{y + 2}" x2="{tx:.1f}" y2="{y + 6}" class="a"/>')
            parts.append(
                f'<text x="{tx:.1f}" y="{y + 17}" text-anchor="middle" class="l">{escape(label)}</text>'
            )
        y += 30
    legend = [("within", NORMAL), ("alert", ALERT)]
    parts.extend(_legend(legend, y + 12))
    parts.append(f'<line x1="{WIDTH - 120}" y1="{y + 2}" x2="{WIDTH - 120}" y2="{y + 14}" {_TARGET}/>')
    parts.append(f'<text x="{WIDTH - 114}" y="{y + 12}" class="l">target</text>')
    parts.append("</svg>")
    return "\n".join(parts)
