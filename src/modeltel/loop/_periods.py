"""Per-period series (quality, coverage, score, errors, cost, latency, drift), bands and warnings.

Each series is checked against its trailing band: the mean +- 3 sample standard deviations of
the previous ``band_periods`` periods (at least 3). A value outside is a warning, which names
the signals that drifted most in that period so the reader sees what changed with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from modeltel.loop._backtest import backtest
from modeltel.loop._cost import cost_latency
from modeltel.loop._dialect import dialect, finite
from modeltel.loop._drift import NOT_ENOUGH_DATA, Sample, compare, score_samples, window_samples
from modeltel.loop._durations import format_instant
from modeltel.loop._estimate import ESTIMABLE, MAX_REFERENCE_ECE, estimate, gap_is_large
from modeltel.loop._metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Key,
    classification,
    counts,
    regression,
)
from modeltel.loop._operational import operational
from modeltel.loop._result import GroupReport, PeriodPoint
from modeltel.loop._stats import trailing_band

__all__ = ["BANDED", "add_periods", "apply_bands", "check_estimates", "run_backtest"]

BANDED: Final = (
    "quality",
    "label_coverage",
    "mean_score",
    "error_rate",
    "cost_per_1k",
    "p95_ms",
    "psi:score",
)


def _mean_scores(con: Any, keys: Sequence[str]) -> dict[Key, float | None]:
    k = ", ".join(keys)
    rows = con.execute(
        f"SELECT {k}, avg(score) FILTER (WHERE {finite('score')}) FROM joined GROUP BY ALL"
    ).fetchall()
    return {tuple(r[:-1]): r[-1] for r in rows}


def _quality(
    con: Any, keys: Sequence[str], groups: dict[Key, GroupReport], threshold: float
) -> dict[Key, tuple[float | None, dict[str, float | None]]]:
    """Per group and period: the primary metric, and every metric (classification or regression)."""
    tasks: dict[str, list[str]] = {"classification": [], "regression": []}
    for report in groups.values():
        if report.task in tasks and report.model not in tasks[report.task]:
            tasks[report.task].append(report.model)
    found: dict[Key, Any] = {}
    found.update(classification(con, keys, tasks["classification"], threshold))
    found.update(regression(con, keys, tasks["regression"]))
    result: dict[Key, tuple[float | None, dict[str, float | None]]] = {}
    for key, metrics in found.items():
        metric = groups[key[:-1]].primary_metric if key[:-1] in groups else None
        every = {
            f: getattr(metrics, f)
            for f in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
            if hasattr(metrics, f)
        }
        value = every.get(metric or "")
        result[key] = (value if isinstance(value, float) else None, every)
    return result


def add_periods(
    con: Any,
    keys: Sequence[str],
    groups: dict[Key, GroupReport],
    *,
    period: int,
    origin: int = 0,
    threshold: float,
    reference: Sample | dict[Key, Sample],
    drift_from: int,
    signals: Sequence[str] | None,
) -> None:
    """Fill every report's ``periods`` with one :class:`PeriodPoint` per period holding data;
    those from ``drift_from`` (a period boundary) on carry their drift against ``reference``."""
    by_period = [*keys, "period"]
    quality = _quality(con, by_period, groups, threshold)
    scores = _mean_scores(con, by_period)
    costs = cost_latency(con, by_period)
    index = dialect(con).div(f"ts - {origin}", period)  # a number: cheaper than its text per row
    window = f"CASE WHEN ts >= {drift_from} THEN {index} END"
    every_period = score_samples(con, keys, index)
    # The drift windows are the whole periods from drift_from on: every_period holds their
    # score samples already (the same rows), so only their features are drawn again.
    drifting = {kw: s for kw, s in every_period.items() if origin + int(kw[1]) * period >= drift_from}
    samples = window_samples(con, keys, window, scores=drifting)
    health = operational(con, keys, window)
    for key, c in sorted(counts(con, by_period).items(), key=lambda item: item[0][-1]):
        report = groups.get(key[:-1])
        if report is None:
            continue
        cost = costs.get(key)
        primary, every = quality.get(key, (None, {}))
        point = PeriodPoint(
            start_ns=origin + int(key[-1]) * period,
            predictions=c.predictions,
            labelled=c.labelled,
            label_coverage=c.label_coverage,
            quality=primary,
            mean_score=scores.get(key),
            error_rate=c.error_rate,
            cost_per_1k=cost.cost_per_1k if cost else None,
            p95_ms=cost.p95_ms if cost else None,
        )
        point.metrics, point.matured = every, c.matured
        if report.task == "classification" and report.primary_metric in ESTIMABLE:
            period_scores = every_period.get((key[:-1], str(key[-1])))
            if period_scores is not None:
                point.estimated_quality = estimate(report.primary_metric, period_scores, threshold)
        ref = reference if isinstance(reference, Sample) else reference.get(key[:-1])
        current = samples.get((key[:-1], str(key[-1])))
        if ref is not None and current is not None:
            for signal in compare(ref, current, signals):
                if signal.state == NOT_ENOUGH_DATA:  # no value rather than noise, in plots and backtest
                    continue
                point.drift[f"psi:{signal.signal}"] = signal.psi
                point.drift[f"ks:{signal.signal}"] = signal.ks
                point.drift[f"drift:{signal.signal}"] = 1.0 if signal.flagged else 0.0
        ops = health.get(key[:-1])
        window_health = ops.windows.get(str(key[-1])) if ops else None
        if window_health is not None:
            for violation, rate in window_health.violation_rates.items():
                point.drift[f"violations:{violation}"] = rate
        report.periods.append(point)


def check_estimates(report: GroupReport, reference_ece: float | None = None, labelled: int = 0) -> None:
    """Mark the periods from which scores stopped predicting quality, and warn once.

    The estimates assume calibrated scores: if the reference window's calibration error was
    already beyond :data:`MAX_REFERENCE_ECE` (plus its sampling noise), every estimate is marked
    off. Otherwise, on each period with matured labels the estimate meets the realized value;
    from the first where they part (beyond the labels' own noise), the model's calibration moved
    and every later estimate is marked off, labelled or not.
    """
    if not any(p.estimated_quality is not None for p in report.periods):
        return
    if reference_ece is not None and labelled > 0 and reference_ece > MAX_REFERENCE_ECE + 1 / labelled**0.5:
        for point in report.periods:
            point.estimate_off = True
        report.warnings.append(
            f"scores were not calibrated in the reference window (calibration error {reference_ece:.3g}): "
            "quality estimated from them is unreliable"
        )
        return
    off_since: PeriodPoint | None = None
    for point in report.periods:
        estimated, realized = point.estimated_quality, point.quality
        if (
            estimated is not None
            and realized is not None
            and gap_is_large(estimated, realized, point.labelled)
        ):
            off_since = off_since or point
        point.estimate_off = off_since is not None
    if off_since is not None:
        report.warnings.append(
            f"{format_instant(off_since.start_ns)}: {report.primary_metric} estimated from the scores "
            f"{off_since.estimated_quality:.4g} but realized {off_since.quality:.4g}: the model's "
            "calibration moved, so estimates for unlabelled periods are unreliable from then on"
        )


def _top_drift(point: PeriodPoint, count: int = 3) -> str:
    psis = [(v, k[4:]) for k, v in point.drift.items() if k.startswith("psi:") and v is not None]
    top = sorted(psis, reverse=True)[:count]
    return ", ".join(f"{name} PSI {value:.3f}" for value, name in top) or "no drift data"


def apply_bands(report: GroupReport, band_periods: int) -> None:
    """Set each period's bands and ``outside_band``; warn when a series' latest value is outside.

    Every period is checked (the report's plots and JSON mark each excursion), but only the
    latest value of each series becomes a warning: that is the one still actionable.
    """
    for name in BANDED:
        latest: str | None = None
        for i, point in enumerate(report.periods):
            value = point.series(name)
            history = [p.series(name) for p in report.periods[max(0, i - band_periods) : i]]
            band = trailing_band([h for h in history if h is not None])
            if value is None:
                continue
            latest = None
            if band is None:
                continue
            point.bands[name] = (band.low, band.high)
            if not band.contains(value):
                point.outside_band.append(name)
                latest = (
                    f"{format_instant(point.start_ns)}: {name} {value:.4g} outside its band "
                    f"[{band.low:.4g}, {band.high:.4g}]; largest drift then: {_top_drift(point)}"
                )
        if latest is not None:
            report.warnings.append(latest)


def run_backtest(report: GroupReport, reference_quality: float | None, drift_from: int) -> None:
    """Rank the report's drift signals by how well they tracked quality changes."""
    points = [p for p in report.periods if p.start_ns >= drift_from]
    if reference_quality is None or not points:
        return
    change = [None if p.quality is None else abs(p.quality - reference_quality) for p in points]
    names = sorted({name for p in points for name in p.drift})
    series = {name: [p.drift.get(name) for p in points] for name in names}
    series["error_rate"] = [p.error_rate for p in points]
    report.backtest = backtest(series, change)
