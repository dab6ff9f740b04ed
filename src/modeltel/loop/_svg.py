"""Tiny inline-SVG charts (lines with optional band, horizontal bars): no JS, no external assets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Final

__all__ = ["Bar", "Series", "bar_chart", "line_chart"]

WIDTH: Final = 560
HEIGHT: Final = 240
_PAD: Final = (48, 16, 28, 36)  # left, right, top, bottom
PALETTE: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


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
    """One horizontal bar, with an optional target tick."""

    label: str
    value: float
    target: float | None = None
    alert: bool = False


def _bounds(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    margin = (hi - lo) * 0.05
    return lo - margin, hi + margin


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


def _open(chart_id: str, title: str) -> list[str]:
    return [
        f'<svg id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" class="t">{escape(title)}</text>',
    ]


def _axes(f: _Frame, x_labels: tuple[str, str] | None) -> list[str]:
    lo, hi = f.yr
    parts = [
        f'<line x1="{f.x0}" y1="{f.y0}" x2="{f.x1}" y2="{f.y0}" class="a"/>',
        f'<line x1="{f.x0}" y1="{f.y0}" x2="{f.x0}" y2="{f.y1}" class="a"/>',
        f'<text x="{f.x0 - 4}" y="{f.y0}" text-anchor="end" class="l">{lo:.3g}</text>',
        f'<text x="{f.x0 - 4}" y="{f.y1 + 8}" text-anchor="end" class="l">{hi:.3g}</text>',
    ]
    if x_labels:
        parts.append(f'<text x="{f.x0}" y="{HEIGHT - 18}" class="l">{escape(x_labels[0])}</text>')
        parts.append(
            f'<text x="{f.x1}" y="{HEIGHT - 18}" text-anchor="end" class="l">{escape(x_labels[1])}</text>'
        )
    return parts


def _polyline(f: _Frame, s: Series, color: str) -> list[str]:
    segments: list[list[str]] = [[]]
    for x, y in zip(s.xs, s.ys, strict=True):
        if y is None or not math.isfinite(y):
            segments.append([])
        else:
            segments[-1].append(f"{f.x(x):.1f},{f.y(y):.1f}")
    dash = ' stroke-dasharray="4 3"' if s.dashed else ""
    parts = [
        f'<polyline points="{" ".join(seg)}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>'
        for seg in segments
        if seg
    ]
    for x, y, marked in zip(s.xs, s.ys, s.markers, strict=False):
        if marked and y is not None:
            parts.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="4" fill="#d62728"/>')
    return parts


def _band(f: _Frame, xs: Sequence[float], band: Sequence[tuple[float, float] | None]) -> str:
    points = [(x, b) for x, b in zip(xs, band, strict=False) if b is not None]
    if not points:
        return ""
    upper = [f"{f.x(x):.1f},{f.y(b[1]):.1f}" for x, b in points]
    lower = [f"{f.x(x):.1f},{f.y(b[0]):.1f}" for x, b in reversed(points)]
    return f'<polygon points="{" ".join(upper + lower)}" fill="#1f77b4" fill-opacity="0.12"/>'


def _legend(names: Sequence[str]) -> list[str]:
    return [
        f'<text x="{_PAD[0] + 8 + 130 * i}" y="{HEIGHT - 4}" fill="{PALETTE[i % len(PALETTE)]}" class="l">'
        f"&#9632; {escape(name)}</text>"
        for i, name in enumerate(names)
    ]


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    *,
    band: Sequence[tuple[float, float] | None] = (),
    x_labels: tuple[str, str] | None = None,
    y_range: tuple[float, float] | None = None,
) -> str:
    """An SVG line chart; ``band`` (low, high) per x of the first series is shaded."""
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys if y is not None] + [v for b in band if b for v in b]
    f = _Frame(_bounds(xs), y_range or _bounds(ys))
    parts = _open(chart_id, title)
    if series and band:
        parts.append(_band(f, series[0].xs, band))
    parts.extend(_axes(f, x_labels))
    for i, s in enumerate(series):
        parts.extend(_polyline(f, s, PALETTE[i % len(PALETTE)]))
    parts.extend(_legend([s.name for s in series]))
    parts.append("</svg>")
    return "\n".join(p for p in parts if p)


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], unit: str = "") -> str:
    """An SVG horizontal bar chart; targets are black ticks, alerting bars are red."""
    row = 22
    height = max(HEIGHT // 2, 36 + row * len(bars))
    top = max([b.value for b in bars] + [b.target or 0.0 for b in bars] + [1e-12])
    parts = [
        f'<svg id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" class="t">{escape(title)}</text>',
    ]
    left, span = 170, WIDTH - 170 - 70
    for i, bar in enumerate(bars):
        y = 28 + i * row
        width = max(bar.value, 0.0) / top * span
        color = "#d62728" if bar.alert else "#1f77b4"
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" class="l">{escape(bar.label)}</text>'
        )
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{width:.1f}" height="{row - 6}" fill="{color}"/>')
        parts.append(
            f'<text x="{left + width + 4:.1f}" y="{y + 13}" class="l">{bar.value:.3g}{escape(unit)}</text>'
        )
        if bar.target is not None:
            tx = left + bar.target / top * span
            parts.append(
                f'<line x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + row - 2}" '
                'stroke="#000" stroke-width="2"/>'
            )
    parts.append("</svg>")
    return "\n".join(parts)
