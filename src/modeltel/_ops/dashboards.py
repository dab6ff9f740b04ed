"""``modeltel dashboards``: a Grafana dashboard and Prometheus alert rules for one model.

The slow side of the loop: nothing here runs at prediction time. Every query is written against
the names the OpenTelemetry Prometheus exporter gives modeltel's metrics (see ``_prometheus``):
``ml_predictions_total``, ``ml_prediction_duration_seconds_bucket``, ``ml_prediction_score_bucket``,
``ml_contract_violations_total``, ``ml_prediction_cost_<CURRENCY>_total``,
``ml_predictions_in_flight`` and ``ml_cascade_calls_total``; labels are the attribute keys with
dots as underscores (``ml_model_name``, ``ml_tenant``, ``ml_outcome`` ...). The rules are in
``_alerts``; both read their thresholds from one :class:`Targets`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from modeltel._ops.alerts import Queries, Targets, alert_rules, rules_yaml

__all__ = ["Targets", "add_arguments", "dashboard", "dashboard_queries", "render", "run"]

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_LEGEND = {"displayMode": "list", "placement": "bottom"}


def _panel(title: str, desc: str, targets: list[tuple[str, str]], unit: str, **kw: Any) -> dict[str, Any]:
    """One panel; ``threshold`` draws a red line, ``kind`` picks the panel type."""
    fmt = "heatmap" if kw.get("kind") == "heatmap" else "time_series"
    defaults: dict[str, Any] = {"unit": unit, "custom": kw.get("custom", {})}
    if kw.get("threshold") is not None:
        steps = [{"color": "green", "value": None}, {"color": "red", "value": kw["threshold"]}]
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
        defaults["custom"] = {**defaults["custom"], "thresholdsStyle": {"mode": "line"}}
    return {
        "type": kw.get("kind", "timeseries"),
        "title": title,
        "description": desc,
        "datasource": _DATASOURCE,
        "targets": [
            {
                "refId": chr(65 + i),
                "expr": e,
                "legendFormat": legend,
                "format": fmt,
                "datasource": _DATASOURCE,
            }
            for i, (e, legend) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": kw.get("options", {"legend": _LEGEND}),
    }


def _traffic(t: Targets, q: Queries) -> list[dict[str, Any]]:
    by_outcome = q.rate("ml_predictions_total", by="ml_outcome")
    in_flight = f"sum by (ml_model_version)(ml_predictions_in_flight{{{q.m}}})"
    stacked = {"stacking": {"mode": "normal"}, "fillOpacity": 30}
    errors = f"Share of answered calls that raised or timed out; pages above {t.error_rate:g}."
    return [
        _panel(
            "Predictions by outcome",
            "Predictions per second (one per batch row) by outcome.",
            [(by_outcome, "{{ml_outcome}}")],
            "reqps",
            custom=stacked,
        ),
        _panel("Error ratio", errors, [(q.error_ratio(_VERSION), _V)], "percentunit", threshold=t.error_rate),
        _panel(
            "In flight", "Predictions running now, by version (no tenant label).", [(in_flight, _V)], "short"
        ),
    ]


_VERSION = "ml_model_version"
_V = "{{ml_model_version}}"


def _latency(t: Targets, q: Queries) -> list[dict[str, Any]]:
    budget = t.latency_budget_ms / 1000.0
    quantiles = [(q.latency(x), f"p{x * 100:g}") for x in (0.5, 0.95, 0.99)]
    about = f"Predict call latency; the red line is the budget, p{t.latency_quantile * 100:g} pages above it."
    by_version = [(q.latency(0.99, _VERSION), _V)]
    return [
        _panel(f"Latency vs budget ({t.latency_budget_ms:g} ms)", about, quantiles, "s", threshold=budget),
        _panel(
            "p99 latency by version", "Compare versions during a rollout.", by_version, "s", threshold=budget
        ),
    ]


def _inputs(t: Targets, q: Queries) -> list[dict[str, Any]]:
    by_feature = q.rate("ml_contract_violations_total", by="ml_feature_name,ml_violation_kind", tenant=False)
    return [
        _panel(
            "Contract violations by feature",
            "Violations per second by feature and kind (all tenants).",
            [(by_feature, "{{ml_feature_name}} {{ml_violation_kind}}")],
            "short",
        ),
        _panel(
            "Violations per prediction by feature",
            f"Pages above {t.violation_rate:g} for any feature.",
            [(q.violation_ratio(), "{{ml_feature_name}}")],
            "percentunit",
            threshold=t.violation_rate,
        ),
    ]


def _outputs(t: Targets, q: Queries) -> list[dict[str, Any]]:
    buckets = f"sum by (le)(increase(ml_prediction_score_bucket{{{q.mt}}}[{q.w}]))"
    panels = [
        _panel(
            "Score distribution",
            "Scores per bucket over time (buckets 0, 0.05, 0.1 .. 0.9, 0.95, 1).",
            [(buckets, "{{le}}")],
            "short",
            kind="heatmap",
            options={"calculate": False},
        ),
        _panel(
            "Mean score by version",
            f"Warns when the hourly mean moves more than {t.score_shift:g} against yesterday.",
            [(q.score_mean(_VERSION), _V)],
            "none",
        ),
    ]
    if t.classifier:
        by_class = q.rate("ml_predictions_total", 'ml_prediction_class!=""', "ml_prediction_class")
        about = "Predictions per second by predicted class (`__other__` past the cap)."
        panels.append(_panel("Volume by class", about, [(by_class, "{{ml_prediction_class}}")], "reqps"))
    return panels


def _tenants_and_cost(t: Targets, q: Queries) -> list[dict[str, Any]]:
    limited = q.rate("ml_predictions_total", 'ml_outcome="rate_limited"', "ml_tenant")
    over = q.rate("ml_predictions_total", 'ml_outcome="budget_exceeded"', "ml_tenant")
    return [
        _panel(
            "Rate-limited tenants",
            "Top 10 tenants by calls refused for their rate limit.",
            [(f"topk(10, {limited})", "{{ml_tenant}}")],
            "reqps",
        ),
        _panel(
            "Over-budget tenants",
            "Top 10 tenants by calls refused for their budget.",
            [(f"topk(10, {over})", "{{ml_tenant}}")],
            "reqps",
        ),
        _panel(
            f"Cost per 1K predictions ({t.currency})",
            "Actual cost per 1,000 answered predictions.",
            [(q.cost_per_1k(_VERSION), _V)],
            "none",
            threshold=t.cost_per_1k_target,
        ),
    ]


def _cascade(t: Targets, q: Queries) -> list[dict[str, Any]]:
    calls = "ml_cascade_calls_total"
    total = q.rate(calls, tenant=False)
    wanted = q.rate(calls, 'ml_cascade_escalate="true"', tenant=False)
    answered = q.rate(calls, 'ml_cascade_tier="expensive"', tenant=False)
    by_tier = q.rate(calls, by="ml_cascade_tier", tenant=False)
    tier_cost = f"1000 * {q.rate(q.cost, by=_VERSION)} / scalar({total})"
    return [
        _panel(
            "Answers by tier",
            "Which tier answered each cascade call.",
            [(by_tier, "{{ml_cascade_tier}}")],
            "reqps",
        ),
        _panel(
            "Escalation rate",
            "Share of calls escalate() sent up, and share the expensive tier answered (the gap: no budget).",
            [(f"{wanted} / {total}", "wanted"), (f"{answered} / {total}", "answered")],
            "percentunit",
        ),
        _panel(
            f"Cost per 1K cascade calls by tier ({t.currency})",
            "Each tier is its own model version.",
            [(tier_cost, _V)],
            "none",
        ),
    ]


def dashboard(t: Targets) -> dict[str, Any]:
    """The Grafana dashboard (import as JSON; pick the Prometheus data source in ``$datasource``)."""
    q = Queries(t, tenant="$tenant", window="$__rate_interval")
    rows = [("Traffic", _traffic), ("Latency", _latency), ("Inputs", _inputs), ("Outputs", _outputs)]
    rows += [("Tenants and cost", _tenants_and_cost)] + ([("Cascade", _cascade)] if t.cascade else [])
    panels: list[dict[str, Any]] = []
    y = 0
    for title, build in rows:
        panels.append({"type": "row", "title": title, "collapsed": False, "gridPos": _grid(0, y, 24, 1)})
        row = build(t, q)
        width = 24 // len(row)
        panels += [{**p, "gridPos": _grid(i * width, y + 1, width, 8)} for i, p in enumerate(row)]
        y += 9
    return {
        "title": f"modeltel: {t.model}",
        "uid": ("modeltel-" + re.sub(r"[^a-zA-Z0-9-]+", "-", t.model))[:40],
        "tags": ["modeltel", "ml"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "templating": {"list": _variables(q)},
        "annotations": {"list": []},
        "panels": [{**p, "id": i} for i, p in enumerate(panels, 1)],
    }


def _grid(x: int, y: int, w: int, h: int) -> dict[str, int]:
    return {"x": x, "y": y, "w": w, "h": h}


def _variables(q: Queries) -> list[dict[str, Any]]:
    tenants = f"label_values(ml_predictions_total{{{q.m}}}, ml_tenant)"
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
        {
            "name": "tenant",
            "label": "Tenant",
            "type": "query",
            "datasource": _DATASOURCE,
            "query": {"query": tenants, "refId": "tenants"},
            "definition": tenants,
            "refresh": 2,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
            "sort": 1,
        },
    ]


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels (not the template variables)."""
    return [tg["expr"] for p in board["panels"] for tg in p.get("targets", [])]


def render(t: Targets) -> tuple[str, str]:
    """The dashboard as JSON text and the alert rules as YAML text."""
    return json.dumps(dashboard(t), indent=2) + "\n", rules_yaml(alert_rules(t), t)


# -- the command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``modeltel dashboards`` options; defaults are :class:`Targets`'."""
    d = {f.name: f.default for f in fields(Targets)}
    parser.add_argument("--model", required=True, help="the model name (ml.model.name)")
    parser.add_argument("--out", metavar="DIR", help="write both files into DIR instead of printing one")
    parser.add_argument("--kind", choices=["dashboard", "rules"], default="dashboard", help="what to print")
    for flag, kind, default, text in (
        ("--latency-budget-ms", float, d["latency_budget_ms"], "latency budget in ms"),
        ("--latency-quantile", float, d["latency_quantile"], "the quantile held to the budget"),
        ("--error-rate", float, d["error_rate"], "page when this share of calls fails"),
        (
            "--violation-rate",
            float,
            d["violation_rate"],
            "page when a feature breaks the contract this often",
        ),
        (
            "--volume-ratio",
            float,
            d["volume_ratio"],
            "page when volume falls below this share of an hour ago",
        ),
        ("--score-shift", float, d["score_shift"], "warn when the mean score moves this much in a day"),
        ("--class-shift", float, d["class_shift"], "warn when a class's share changes by this factor"),
        ("--cost-per-1k-target", float, None, "warn when cost per 1K predictions passes this"),
        ("--currency", str, d["currency"], "MODELTEL_CURRENCY of the service"),
        ("--window", str, d["window"], "rate window of the rules"),
        ("--for-page", str, d["for_page"], "how long a page condition must hold"),
        ("--for-warn", str, d["for_warn"], "how long a warn condition must hold"),
    ):
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default: {default})")
    parser.add_argument("--classifier", action="store_true", help="add class-volume panels and rule")
    parser.add_argument("--cascade", action="store_true", help="add the modeltel.cascade panels")


def run(args: argparse.Namespace) -> int:
    """Print the dashboard or the rules, or write both into ``--out``; returns the exit code."""
    options = {k: v for k, v in vars(args).items() if k in Targets.__dataclass_fields__}
    try:
        targets = Targets(**options)
    except ValueError as exc:
        print(f"modeltel dashboards: {exc}", file=sys.stderr)
        return 2
    board, rules = render(targets)
    if args.out is None:
        sys.stdout.write(board if args.kind == "dashboard" else rules)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "-", targets.model)
    for name, text in ((f"grafana-dashboard-{slug}.json", board), (f"prometheus-rules-{slug}.yaml", rules)):
        (out / name).write_text(text, encoding="utf-8")
        print(out / name)
    return 0
