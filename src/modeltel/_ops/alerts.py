"""Prometheus alert rules for one model, and the PromQL both the rules and the dashboard use.

Two severities and nothing else: ``page`` when the service is broken for its callers (errors and
timeouts, contract violations, latency over budget, a collapse in volume, scores outside their
declared range), ``warn`` when the numbers moved but nothing is broken (mean score, class mix,
cost). Statistical rules compare an hour against the same hour a day earlier, so they stay quiet
for a model's first day and through daily seasonality.

The YAML is written by hand (PromQL in literal blocks, every other string JSON-quoted, which YAML
reads as a double-quoted scalar) so the SDK needs no YAML library.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

__all__ = ["Queries", "Rule", "Targets", "alert_rules", "rules_yaml"]

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_UNIT_JUNK = re.compile(r"[^a-zA-Z0-9:]+")

# Outcomes that never reached the model: they do not dilute error ratios or cost per prediction.
NOT_SERVED = "rate_limited|budget_exceeded|contract_violation"
FAILED = "error|timeout"


@dataclass(frozen=True)
class Targets:
    """One model's declared targets; every threshold of the dashboard and the rules comes from here."""

    model: str
    latency_budget_ms: float = 200.0
    latency_quantile: float = 0.99
    """The latency quantile held to the budget (page when over)."""
    error_rate: float = 0.01
    """Share of answered calls that raised or timed out, and of scores out of range (page when over)."""
    violation_rate: float = 0.01
    """Contract violations of one feature per prediction (page when over)."""
    volume_ratio: float = 0.3
    """Page when the request rate falls below this share of its rate in the hour before."""
    score_shift: float = 0.1
    """Warn when the hourly mean score moves by more than this against the same hour a day earlier."""
    class_shift: float = 2.0
    """Warn when a class's share of volume grows or shrinks by more than this factor in a day."""
    cost_per_1k_target: float | None = None
    """Warn when the cost per 1,000 answered predictions passes it (no rule when not given)."""
    currency: str = "USD"
    """``MODELTEL_CURRENCY``: the unit in the cost metric's name."""
    window: str = "5m"
    """Rate window of the operational rules."""
    for_page: str = "5m"
    for_warn: str = "30m"
    classifier: bool = False
    """Class-volume panel and rule (needs ``ml.prediction.class``)."""
    cascade: bool = False
    """Cascade panels (``modeltel.cascade``)."""

    def __post_init__(self) -> None:
        problems = [
            text
            for bad, text in (
                (not self.model, "--model must not be empty"),
                (not self.latency_budget_ms > 0, "--latency-budget-ms must be > 0"),
                (not 0 < self.latency_quantile < 1, "--latency-quantile must be between 0 and 1"),
                (not 0 < self.error_rate < 1, "--error-rate must be between 0 and 1"),
                (not self.violation_rate > 0, "--violation-rate must be > 0"),
                (not 0 < self.volume_ratio < 1, "--volume-ratio must be between 0 and 1"),
                (not self.score_shift > 0, "--score-shift must be > 0"),
                (not self.class_shift > 1, "--class-shift must be > 1"),
                (not _UNIT_JUNK.sub("", self.currency), "--currency must contain a letter or digit"),
            )
            if bad
        ]
        for flag, value in (
            ("--window", self.window),
            ("--for-page", self.for_page),
            ("--for-warn", self.for_warn),
        ):
            if not _DURATION.match(value):
                problems.append(f"{flag} {value!r} is not a Prometheus duration such as 5m or 1h")
        if problems:
            raise ValueError("; ".join(problems))


class Queries:
    """PromQL for one model; ``tenant`` is a label regex (``$tenant`` in the dashboard)."""

    def __init__(self, t: Targets, tenant: str | None = None, window: str | None = None) -> None:
        self.t = t
        self.w = window or t.window
        self.m = f'ml_model_name="{_escape(t.model)}"'
        self.mt = self.m if tenant is None else f'{self.m},ml_tenant=~"{tenant}"'
        self.cost = f"ml_prediction_cost_{_UNIT_JUNK.sub('_', t.currency).strip('_')}_total"

    def rate(
        self,
        metric: str,
        matchers: str = "",
        by: str = "",
        tenant: bool = True,
        w: str = "",
        offset: str = "",
    ) -> str:
        """``sum by (by)(rate(metric{model, tenant, matchers}[w] offset offset))``."""
        sel = self.mt if tenant else self.m
        sel = f"{sel},{matchers}" if matchers else sel
        shift = f" offset {offset}" if offset else ""
        return f"sum{_by(by)}(rate({metric}{{{sel}}}[{w or self.w}]{shift}))"

    def error_ratio(self, by: str = "") -> str:
        failed = self.rate("ml_predictions_total", f'ml_outcome=~"{FAILED}"', by)
        served = self.rate("ml_predictions_total", f'ml_outcome!~"{NOT_SERVED}"', by)
        # A model that never failed has no failed series: show 0, not "no data".
        return f"({failed} or 0 * {served}) / {served}"

    def outcome_ratio(self, outcome: str, by: str = "") -> str:
        part = self.rate("ml_predictions_total", f'ml_outcome="{outcome}"', by)
        return f"{part} / {self.rate('ml_predictions_total', by=by)}"

    def latency(self, q: float, by: str = "") -> str:
        buckets = self.rate("ml_prediction_duration_seconds_bucket", by=_join("le", by))
        return f"histogram_quantile({q}, {buckets})"

    def violation_ratio(self) -> str:
        num = self.rate("ml_contract_violations_total", by="ml_model_name,ml_feature_name", tenant=False)
        den = self.rate("ml_predictions_total", by="ml_model_name", tenant=False)
        return f"{num} / on (ml_model_name) group_left() {den}"

    def score_mean(self, by: str = "", w: str = "", offset: str = "") -> str:
        total, count = (
            self.rate(f"ml_prediction_score_{part}", by=by, w=w, offset=offset) for part in ("sum", "count")
        )
        return f"{total} / {count}"

    def cost_per_1k(self, by: str = "") -> str:
        served = self.rate("ml_predictions_total", f'ml_outcome!~"{NOT_SERVED}"', by)
        return f"1000 * {self.rate(self.cost, by=by)} / {served}"

    def class_share(self, w: str, offset: str = "") -> str:
        sel = 'ml_prediction_class!=""'
        part = self.rate("ml_predictions_total", sel, "ml_model_name,ml_prediction_class", False, w, offset)
        total = self.rate("ml_predictions_total", sel, "ml_model_name", False, w, offset)
        return f"({part} / on (ml_model_name) group_left() {total})"


def _by(labels: str) -> str:
    return f" by ({labels}) " if labels else " "


def _join(*labels: str) -> str:
    return ",".join(x for x in labels if x)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class Rule:
    """One alerting rule."""

    alert: str
    expr: str
    severity: str
    summary: str
    description: str


def alert_rules(t: Targets) -> list[Rule]:
    """The page rules, then the warn rules, for ``t.model``."""
    return _page_rules(t, Queries(t)) + _warn_rules(t, Queries(t))


_BY_MODEL = "ml_model_name"
_PCT = "{{ $value | humanizePercentage }}"


def _page_rules(t: Targets, q: Queries) -> list[Rule]:
    budget_s = t.latency_budget_ms / 1000
    quantile = f"p{t.latency_quantile * 100:g}"
    now = q.rate("ml_predictions_total", by=_BY_MODEL)
    before = q.rate("ml_predictions_total", by=_BY_MODEL, w="1h", offset="1h")
    out_of_range = q.outcome_ratio("score_out_of_range", _BY_MODEL)
    return [
        Rule(
            "ModelErrorRateHigh",
            f"{q.error_ratio(_BY_MODEL)} > {t.error_rate:g}",
            "page",
            f"{t.model}: {_PCT} of calls fail",
            f"More than {t.error_rate:g} of answered calls raised or timed out.",
        ),
        Rule(
            "ModelContractViolations",
            f"{q.violation_ratio()} > {t.violation_rate:g}",
            "page",
            f"{t.model}: feature {{{{ $labels.ml_feature_name }}}} breaks the contract",
            f"Violations per prediction above {t.violation_rate:g}: an upstream feature pipeline changed.",
        ),
        Rule(
            "ModelLatencyOverBudget",
            f"{q.latency(t.latency_quantile, _BY_MODEL)} > {budget_s:g}",
            "page",
            f"{t.model}: {quantile} latency {{{{ $value | humanizeDuration }}}}",
            f"The {quantile} latency is over the {t.latency_budget_ms:g} ms budget.",
        ),
        Rule(
            "ModelVolumeCollapse",
            f"{now} < {t.volume_ratio:g} * {before}",
            "page",
            f"{t.model}: request volume collapsed",
            f"Fewer than {t.volume_ratio:g} of the previous hour's requests per second.",
        ),
        Rule(
            "ModelScoresOutOfRange",
            f"{out_of_range} > {t.error_rate:g}",
            "page",
            f"{t.model}: {_PCT} of scores outside the declared range",
            "The model answers with scores it cannot produce when healthy.",
        ),
    ]


def _warn_rules(t: Targets, q: Queries) -> list[Rule]:
    mean_now, mean_then = q.score_mean(_BY_MODEL, "1h"), q.score_mean(_BY_MODEL, "1h", "1d")
    rules = [
        Rule(
            "ModelScoreMeanShift",
            f"abs({mean_now} - {mean_then}) > {t.score_shift:g}",
            "warn",
            f"{t.model}: mean score moved by more than {t.score_shift:g} in a day",
            "The hourly mean score differs from the same hour yesterday.",
        )
    ]
    if t.classifier:
        now, then = q.class_share("1h"), q.class_share("1h", "1d")
        rules.append(
            Rule(
                "ModelClassVolumeShift",
                f"abs(ln({now} / {then})) > {math.log(t.class_shift):.6g}",
                "warn",
                f"{t.model}: class {{{{ $labels.ml_prediction_class }}}} share moved",
                f"A class's share of volume changed by more than {t.class_shift:g}x against yesterday.",
            )
        )
    if t.cost_per_1k_target is not None:
        rules.append(
            Rule(
                "ModelCostOverTarget",
                f"{q.cost_per_1k(_BY_MODEL)} > {t.cost_per_1k_target:g}",
                "warn",
                f"{t.model}: cost per 1K predictions above {t.cost_per_1k_target:g} {t.currency}",
                "Actual cost per 1,000 answered predictions is over the model's target.",
            )
        )
    return rules


def rules_yaml(rules: list[Rule], t: Targets) -> str:
    """A Prometheus rule file: one group named after the model."""
    labels = {"page": {"severity": "page"}, "warn": {"severity": "warn"}}
    lines = [
        f"# Generated by `modeltel dashboards --model {t.model}`; thresholds are the model's targets.",
        "groups:",
        f"  - name: {_quote('modeltel-' + t.model)}",
        "    rules:",
    ]
    for r in rules:
        lines += [
            f"      - alert: {r.alert}",
            "        expr: |-",
            f"          {r.expr}",
            f"        for: {t.for_page if r.severity == 'page' else t.for_warn}",
            "        labels:",
            *(f"          {k}: {_quote(v)}" for k, v in labels[r.severity].items()),
            "        annotations:",
            f"          summary: {_quote(r.summary)}",
            f"          description: {_quote(r.description)}",
        ]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
