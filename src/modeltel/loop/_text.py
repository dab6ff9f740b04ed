"""The terminal summaries of ``modeltel evaluate`` and ``modeltel inventory``."""

from __future__ import annotations

from collections.abc import Iterable

from modeltel.loop._durations import NS_PER_S, format_instant
from modeltel.loop._result import HOW_TO_DECLARE, Comparison, Evaluation, GroupReport, InventoryEntry

__all__ = ["fmt", "format_evaluation", "format_inventory"]

_CLASSIFICATION = ("roc_auc", "log_loss", "brier", "ece", "precision", "recall", "f1")


def fmt(value: float | None, spec: str = ".4g") -> str:
    """``value`` formatted with ``spec``, or ``n/a`` when undefined."""
    return "n/a" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _duration(ns: int) -> str:
    seconds = ns / NS_PER_S
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _header(e: Evaluation) -> list[str]:
    reference = (
        "saved profile"
        if isinstance(e.reference, str)
        else f"[{format_instant(e.reference[0])}, {format_instant(e.reference[1])})"
    )
    return [
        f"modeltel evaluate: as of {format_instant(e.as_of_ns)}, maturation {_duration(e.maturation_ns)}, "
        f"period {_duration(e.period_ns)} from {format_instant(e.period_origin_ns)}",
        f"  reference {reference}; current [{format_instant(e.current[0])}, {format_instant(e.current[1])})",
    ]


def _quality(g: GroupReport) -> list[str]:
    c = g.counts
    lines = [
        f"  predictions {c.predictions:,} | matured {c.matured:,} | labelled {c.labelled:,} "
        f"(coverage {_pct(c.label_coverage)}) | non-finite scores {c.nonfinite_scores:,} "
        f"| unscored {c.unscored:,}"
    ]
    if g.classification is not None:
        m = g.classification
        values = "  ".join(f"{name} {fmt(getattr(m, name))}" for name in _CLASSIFICATION)
        lines.append(f"  {values}  (threshold {m.threshold:g}, n {m.n:,})")
        lines.append(f"  base rate {fmt(m.base_rate)} vs mean score {fmt(m.mean_score)}")
    if g.regression is not None:
        r = g.regression
        lines.append(f"  mae {fmt(r.mae)}  rmse {fmt(r.rmse)}  r2 {fmt(r.r2)}  (n {r.n:,})")
    return lines


def _estimated(g: GroupReport) -> list[str]:
    """The latest period's quality estimated from its scores, beside the realized value."""
    latest = next((p for p in reversed(g.periods) if p.estimated_quality is not None), None)
    if latest is None:
        return []
    realized = "not yet labelled" if latest.quality is None else f"realized {fmt(latest.quality)}"
    caveat = "  UNRELIABLE: calibration moved" if latest.estimate_off else ""
    return [
        f"  latest period {format_instant(latest.start_ns)}: {g.primary_metric} estimated from scores "
        f"{fmt(latest.estimated_quality)} ({realized}){caveat}"
    ]


def _drift(g: GroupReport) -> list[str]:
    if not g.drift:
        return ["  drift: no reference or current data"]
    lines = ["  statistical drift (current vs reference; effect KS, or TV for categories; p after n):"]
    for s in g.drift:
        effect = f"{'KS' if s.kind == 'numeric' else 'TV'} {fmt(s.effect, '.3f')}"
        p = "" if s.p_value is None else f" p {s.p_value:.2g}"
        n = f"n {s.n_reference:,}/{s.n_current:,}"
        state = s.state.upper() if s.flagged else s.state
        lines.append(f"    {s.signal}: {state}  {effect}{p}  PSI {fmt(s.psi, '.3f')}  {n}")
    return lines


def _operational(g: GroupReport) -> list[str]:
    ops = g.operational
    if ops is None:
        return []
    ref, cur = ops.windows.get("reference"), ops.windows.get("current")
    now, before = _pct(cur.error_rate if cur else None), _pct(ref.error_rate if ref else None)
    line = f"  operational: error rate {now} (reference {before})"
    if cur is not None and cur.violation_rates:
        line += "; violations in sampled records " + ", ".join(
            f"{k} {_pct(v)}" for k, v in cur.violation_rates.items()
        )
    if ops.violation_totals:
        line += "; counter totals " + ", ".join(f"{k} {v:,}" for k, v in ops.violation_totals.items())
    return [line]


def _cost(g: GroupReport) -> list[str]:
    c = g.cost
    if c is None:
        return []
    target = f" (target {c.cost_per_1k_target:g})" if c.cost_per_1k_target is not None else ""
    budget = f" (budget {c.latency_budget_ms:g} ms)" if c.latency_budget_ms is not None else ""
    return [
        f"  cost/1K {fmt(c.cost_per_1k)}{target} | latency p50 {fmt(c.p50_ms, '.3g')} ms "
        f"p95 {fmt(c.p95_ms, '.3g')} ms p99 {fmt(c.p99_ms, '.3g')} ms{budget}"
    ]


def _backtest(g: GroupReport) -> list[str]:
    if not g.backtest:
        return []
    parts = [
        f"{t.signal} {t.verdict} (rho {fmt(t.correlation, '.2f')}, {t.periods} periods)"
        for t in g.backtest[:6]
    ]
    return ["  backtest: " + "; ".join(parts)]


def _group(g: GroupReport) -> list[str]:
    title = f"{g.label}  {g.task}" + (f" (primary: {g.primary_metric})" if g.primary_metric else "")
    lines = [title, *_quality(g), *_estimated(g), *_drift(g), *_operational(g), *_cost(g), *_backtest(g)]
    lines.extend(f"  WARNING {w}" for w in g.warnings)
    return lines


def _comparison(c: Comparison) -> str:
    per_point = f", {fmt(c.cost_per_1pct_lift)} per 1% lift" if c.cost_per_1pct_lift is not None else ""
    return (
        f"  {c.model} {c.version} vs {c.baseline}: {c.metric} {fmt(c.value)} vs {fmt(c.baseline_value)}, "
        f"lift {fmt(c.lift, '+.4g')} ({fmt(c.relative_lift_pct, '+.2f')}%), "
        f"cost/1K {fmt(c.cost_per_1k_delta, '+.4g')}{per_point}"
    )


def format_evaluation(e: Evaluation) -> str:
    """The evaluation as a terminal summary."""
    lines = _header(e)
    for g in e.groups:
        lines.extend(["", *_group(g)])
    if e.comparisons:
        lines.extend(["", "versions:", *(_comparison(c) for c in e.comparisons)])
    return "\n".join(lines)


def _entry(entry: InventoryEntry) -> Iterable[str]:
    yield f"{entry.model}@{entry.version}  {entry.predictions:,} predictions"
    for key, value in entry.truth.items():
        if value in (None, ""):
            yield f"  {key:<20} MISSING: declare it with @modeltel.instrument(..., {HOW_TO_DECLARE[key]})"
        else:
            yield f"  {key:<20} {value}"
    if entry.cost is not None:
        yield (
            f"  {'observed':<20} p95 {fmt(entry.cost.p95_ms, '.3g')} ms, "
            f"cost/1K {fmt(entry.cost.cost_per_1k)}"
        )
    for missed in entry.missed:
        yield f"  MISSED {missed}"


def format_inventory(entries: Iterable[InventoryEntry]) -> str:
    """The inventory as a terminal listing, one block per model/version."""
    blocks = ["\n".join(_entry(e)) for e in entries]
    return "\n\n".join(blocks) if blocks else "no models found"
