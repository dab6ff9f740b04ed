"""``modeltel dashboards``: the generated Grafana dashboard and Prometheus rules, without a server.

The rules running in a real Prometheus are tested in ``test_prometheus.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeltel._ops.alerts import Targets, alert_rules
from modeltel._ops.dashboards import dashboard, dashboard_queries, render
from modeltel.cli import main

PROMTOOL = shutil.which("promtool")

PAGE = {
    "ModelErrorRateHigh",
    "ModelContractViolations",
    "ModelLatencyOverBudget",
    "ModelVolumeCollapse",
    "ModelScoresOutOfRange",
}


def require_promtool() -> str:
    """promtool's path; skip without it, fail under CI=true."""
    if PROMTOOL:
        return PROMTOOL
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("promtool not on PATH but CI=true: apt-get install -y prometheus")
    pytest.skip("promtool not on PATH (apt-get install -y prometheus)")


def _rules(**targets: Any) -> dict[str, Any]:
    return {r["alert"]: r for r in yaml.safe_load(render(Targets(**targets))[1])["groups"][0]["rules"]}


def test_cli_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--out writes the dashboard and the rules under names carrying the model."""
    assert main(["dashboards", "--model", "fraud", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "grafana-dashboard-fraud.json",
        "prometheus-rules-fraud.yaml",
    ]
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / "grafana-dashboard-fraud.json"),
        str(tmp_path / "prometheus-rules-fraud.yaml"),
    ]


def test_cli_prints_the_chosen_document(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out, --kind rules prints exactly the rules file."""
    assert main(["dashboards", "--model", "fraud", "--kind", "rules"]) == 0
    assert capsys.readouterr().out == render(Targets(model="fraud"))[1]


def test_cli_rejects_a_bad_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    """A nonsensical target exits 2 with a message naming the option."""
    assert main(["dashboards", "--model", "fraud", "--error-rate", "1.5", "--for-page", "soon"]) == 2
    err = capsys.readouterr().err
    assert "--error-rate must be between 0 and 1" in err
    assert "--for-page 'soon' is not a Prometheus duration" in err


def test_generated_rules_pass_promtool(tmp_path: Path) -> None:
    """promtool check rules accepts the rules with every optional rule switched on."""
    promtool = require_promtool()
    path = tmp_path / "rules.yaml"
    path.write_text(render(Targets(model='fr"aud', classifier=True, cost_per_1k_target=0.5))[1])
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_operational_rules_page_and_statistical_rules_warn() -> None:
    """Errors, violations, latency, volume and out-of-range scores page; score, class and cost warn."""
    rules = _rules(model="fraud", classifier=True, cost_per_1k_target=0.5)
    severities = {name: r["labels"]["severity"] for name, r in rules.items()}
    assert severities == {
        **dict.fromkeys(PAGE, "page"),
        "ModelScoreMeanShift": "warn",
        "ModelClassVolumeShift": "warn",
        "ModelCostOverTarget": "warn",
    }


def test_optional_rules_only_when_asked() -> None:
    """Without --classifier and a cost target there is no class or cost rule."""
    assert set(_rules(model="fraud")) == PAGE | {"ModelScoreMeanShift"}


def test_thresholds_come_from_the_targets() -> None:
    """Each declared target is the threshold of its rule, and --for-* its pending time."""
    rules = _rules(model="fraud", latency_budget_ms=150, error_rate=0.05, for_page="2m", for_warn="1h")
    assert rules["ModelErrorRateHigh"]["expr"].endswith(" > 0.05")
    assert rules["ModelLatencyOverBudget"]["expr"].startswith("histogram_quantile(0.99, ")
    assert rules["ModelLatencyOverBudget"]["expr"].endswith(" > 0.15")
    assert rules["ModelErrorRateHigh"]["for"] == "2m"
    assert rules["ModelScoreMeanShift"]["for"] == "1h"


def test_rules_select_only_their_model() -> None:
    """Every selector in every rule is restricted to the model's name (quotes escaped)."""
    for rule in alert_rules(Targets(model='a"b', classifier=True)):
        selectors = rule.expr.count("{")
        assert rule.expr.count('{ml_model_name="a\\"b"') == selectors


def test_cost_metric_name_follows_the_currency() -> None:
    """The cost queries use the exporter's name for the configured currency."""
    board = dashboard(Targets(model="fraud", currency="EUR"))
    cost = [q for q in dashboard_queries(board) if "cost" in q]
    assert cost and all("ml_prediction_cost_EUR_total{" in q for q in cost)


def test_dashboard_is_importable_shape() -> None:
    """schemaVersion, a $tenant variable over ml_tenant, unique ids and a grid position per panel."""
    board = json.loads(render(Targets(model="fraud"))[0])
    assert board["schemaVersion"] == 39
    tenant = next(v for v in board["templating"]["list"] if v["name"] == "tenant")
    assert tenant["definition"] == 'label_values(ml_predictions_total{ml_model_name="fraud"}, ml_tenant)'
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert all(set(p["gridPos"]) == {"x", "y", "w", "h"} for p in board["panels"])


def test_tenant_panels_follow_the_variable() -> None:
    """Prediction queries filter on $tenant, except violations per prediction (no tenant on violations)."""
    for query in dashboard_queries(dashboard(Targets(model="fraud"))):
        if "ml_contract_violations_total" in query:
            continue
        for part in query.split("ml_predictions_total{")[1:]:
            assert part.startswith('ml_model_name="fraud",ml_tenant=~"$tenant"'), query


def test_class_and_cascade_panels_only_when_asked() -> None:
    """Class and cascade metrics appear in the dashboard only with --classifier / --cascade."""
    plain = " ".join(dashboard_queries(dashboard(Targets(model="fraud"))))
    full = " ".join(dashboard_queries(dashboard(Targets(model="fraud", classifier=True, cascade=True))))
    assert "ml_prediction_class" not in plain and "ml_cascade_calls_total" not in plain
    assert "ml_prediction_class" in full and "ml_cascade_calls_total" in full
