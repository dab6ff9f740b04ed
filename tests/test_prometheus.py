"""Prometheus exposition, and the generated rules and dashboard against a real Prometheus server.

The exposition tests scrape ``start_prometheus``'s endpoint directly and pin the names the
OpenTelemetry exporter gives modeltel's metrics. The server tests start Debian's ``prometheus``
on 127.0.0.1 (scrape and rule evaluation every second, the generated rules with ``for: 0s``),
scraping this test process while it runs instrumented predictions; they run in file order: the
healthy load first, the error burst last. Without the binary they skip, unless ``CI=true``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

import modeltel
from modeltel._cascade import cascade
from modeltel._export.prometheus import ModeltelPrometheusReader, start_prometheus
from modeltel._ops.alerts import Queries, Targets, alert_rules
from modeltel._ops.dashboards import dashboard, dashboard_queries, render
from modeltel.testing import Capture, capture

PROMETHEUS = shutil.which("prometheus")
TARGETS = Targets(model="fraud", window="1m", for_page="0s", for_warn="0s", classifier=True, cascade=True)


class Features(BaseModel):
    amount: float = Field(ge=0)
    explode: float = 0.0


def _predict(cost: float = 0.0, **limits: Any) -> Callable[..., float]:
    @modeltel.instrument(model="fraud", version="1", tenant="tenant", contract=Features, cost=cost, **limits)
    def predict(features: dict[str, float], tenant: str = "acme") -> float:
        if features.get("explode"):
            raise RuntimeError("model failure")
        return 0.3

    return predict


# -- exposition -------------------------------------------------------------------------------------


@pytest.fixture
def served(cap: Capture) -> Iterator[ModeltelPrometheusReader]:
    """A reader serving ``cap``'s aggregates on a free port, on a provider with no instrument of its own."""
    reader = start_prometheus(0, cap.runtime.recorder.aggregator, Resource.create({}), host="127.0.0.1")
    provider = MeterProvider(metric_readers=[reader])
    yield reader
    provider.shutdown()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels without otel_scope_*): value}`` of one scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset((k, v) for k, v in s.labels.items() if not k.startswith("otel_scope_"))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(
        {"ml_model_name": "fraud", "ml_model_version": "1", "ml_tenant": "acme", **labels}.items()
    )


def _run_some(predict: Callable[..., float]) -> None:
    for _ in range(3):
        predict({"amount": 1.0})
    predict({"amount": -1.0})
    with pytest.raises(RuntimeError):
        predict({"amount": 1.0, "explode": 1.0})


def test_counter_is_exposed_with_total_suffix(served: ModeltelPrometheusReader) -> None:
    """ml.predictions becomes ml_predictions_total, attribute keys become underscore labels."""
    _run_some(_predict())
    samples = scrape(served.port)
    assert samples["ml_predictions_total", _labels(ml_outcome="ok")] == 4
    assert samples["ml_predictions_total", _labels(ml_outcome="error")] == 1


def test_duration_histogram_gets_seconds_suffix(served: ModeltelPrometheusReader) -> None:
    """ml.prediction.duration (unit s) becomes ml_prediction_duration_seconds_{bucket,sum,count}."""
    _run_some(_predict())
    samples = scrape(served.port)
    ok = _labels(ml_outcome="ok")
    assert samples["ml_prediction_duration_seconds_count", ok] == 4
    assert samples["ml_prediction_duration_seconds_bucket", ok | {("le", "+Inf")}] == 4
    assert 0 < samples["ml_prediction_duration_seconds_sum", ok] < 1


def test_score_histogram_has_no_unit_suffix(served: ModeltelPrometheusReader) -> None:
    """ml.prediction.score (unit 1) becomes ml_prediction_score_bucket with inclusive upper bounds."""
    _run_some(_predict())
    samples = scrape(served.port)
    ok = _labels(ml_outcome="ok")
    assert samples["ml_prediction_score_bucket", ok | {("le", "0.2")}] == 0
    assert samples["ml_prediction_score_bucket", ok | {("le", "0.3")}] == 4


def test_cost_carries_the_currency(served: ModeltelPrometheusReader) -> None:
    """ml.prediction.cost (unit USD) becomes ml_prediction_cost_USD_total."""
    _run_some(_predict(cost=0.5))
    assert scrape(served.port)["ml_prediction_cost_USD_total", _labels(ml_outcome="ok")] == 2.0


def test_violations_keep_feature_and_kind(served: ModeltelPrometheusReader) -> None:
    """ml.contract.violations becomes ml_contract_violations_total by feature and kind."""
    _run_some(_predict())
    labels = {"ml_model_name": "fraud", "ml_model_version": "1", "ml_feature_name": "amount"}
    key = frozenset({**labels, "ml_violation_kind": "range"}.items())
    assert scrape(served.port)["ml_contract_violations_total", key] == 1


def test_force_flush_between_scrapes_serves_each_series_once(cap: Capture) -> None:
    """A provider flush (modeltel.force_flush() does one) does not duplicate the next scrape's series."""
    reader = start_prometheus(0, cap.runtime.recorder.aggregator, Resource.create({}), "127.0.0.1")
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("test").create_counter("app.requests").add(1)
    _predict()({"amount": 1.0})
    provider.force_flush()
    with urllib.request.urlopen(f"http://127.0.0.1:{reader.port}/metrics", timeout=10) as response:
        text = response.read().decode()
    provider.shutdown()
    assert text.count("\nml_predictions_total{") == 1
    assert text.count("\napp_requests_total{") == 1


def test_restart_on_the_same_port_takes_over(served: ModeltelPrometheusReader) -> None:
    """A second reader on the port serves its own aggregates; the old one's shutdown leaves it up."""
    _run_some(_predict())
    with capture() as second:
        newer = start_prometheus(
            served.port, second.runtime.recorder.aggregator, Resource.create({}), "127.0.0.1"
        )
        provider = MeterProvider(metric_readers=[newer])
        _predict()({"amount": 1.0})
        served.shutdown()
        assert scrape(served.port)["ml_predictions_total", _labels(ml_outcome="ok")] == 1
        provider.shutdown()
    with pytest.raises(urllib.error.URLError):
        scrape(served.port)


# -- a real Prometheus ------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_prometheus() -> str:
    """The prometheus binary; skip without it, fail under CI=true."""
    if PROMETHEUS:
        return PROMETHEUS
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("prometheus not on PATH but CI=true: apt-get install -y prometheus")
    pytest.skip("prometheus not on PATH (apt-get install -y prometheus)")


class Stack:
    """This process serving instrumented predictions, scraped by a Prometheus loaded with the rules."""

    def __init__(self, cap: Capture, tmp: Path) -> None:
        aggregator = cap.runtime.recorder.aggregator
        self.reader = start_prometheus(
            0, aggregator, Resource.create({"service.name": "fraud-api"}), "127.0.0.1"
        )
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.predict = _predict(
            cost=0.0004,
            rate_limits={"spammy": "1/s"},
            budgets={"broke": "0.001/day"},
            predicted_class=lambda score: "review" if score > 0.5 else "approve",
        )
        self.cascade = cascade(
            lambda x, tenant="acme": x["amount"] / 10,
            lambda x, tenant="acme": 0.9,
            model="fraud",
            version="1",
            tenant="tenant",
            cost_cheap=0.0001,
            cost_expensive=0.001,
        )
        self.predict({"amount": 1.0})
        self._emit_in_flight_unless_recorded(aggregator)
        self.port = free_port()
        self._start(tmp)

    def _emit_in_flight_unless_recorded(self, aggregator: Any) -> None:
        # ml.predictions.in_flight comes from the core pipeline once it records it; until then the
        # test process emits an idle gauge under the same name so the panel's query has a series.
        if any(m.name == "ml.predictions.in_flight" for m in aggregator.metrics()):
            return

        def idle(_: CallbackOptions) -> list[Observation]:
            return [Observation(0, {"ml.model.name": "fraud", "ml.model.version": "1"})]

        meter = self.provider.get_meter("test")
        meter.create_observable_up_down_counter(
            "ml.predictions.in_flight", callbacks=[idle], unit="{prediction}"
        )

    def _start(self, tmp: Path) -> None:
        (tmp / "rules.yaml").write_text(render(TARGETS)[1])
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp / "rules.yaml")],
            "scrape_configs": [
                {"job_name": "modeltel", "static_configs": [{"targets": [f"127.0.0.1:{self.reader.port}"]}]}
            ],
        }
        (tmp / "prometheus.yml").write_text(json.dumps(config))
        args = [require_prometheus(), f"--config.file={tmp / 'prometheus.yml'}"]
        args += [f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"]
        self.log = tmp / "prometheus.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        self.until(self._ready, "Prometheus to be ready", load=self._exited_within_50ms)

    def _exited_within_50ms(self) -> None:
        # Paces the readiness poll; an exit during start-up fails with Prometheus's own log.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=0.05)
        assert self.proc.poll() is None, self.log.read_text()[-2000:]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def has_data(self, query: str) -> bool:
        return bool(self.api("query", query=query)["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def healthy_round(self) -> None:
        """Traffic with ordinary noise: 0.5% errors and violations, refused tenants, cascade calls."""
        for i in range(200):
            self.predict({"amount": 1.0}, tenant="acme" if i % 2 else "beta")
        self._raise(RuntimeError, {"amount": 1.0, "explode": 1.0})
        self.predict({"amount": -1.0})
        for tenant in ("spammy", "spammy", "broke", "broke", "broke"):
            self._raise((modeltel.RateLimited, modeltel.BudgetExceeded), {"amount": 1.0}, tenant, allow=True)
        for amount in (1.0, 5.0, 2.0, 5.0):
            self.cascade({"amount": amount})

    def error_burst(self) -> None:
        """Half the calls raise."""
        for _ in range(50):
            self.predict({"amount": 1.0})
            self._raise(RuntimeError, {"amount": 1.0, "explode": 1.0})

    def _raise(
        self, errors: Any, features: dict[str, float], tenant: str = "acme", allow: bool = False
    ) -> None:
        try:
            self.predict(features, tenant=tenant)
        except errors:
            return
        assert allow, "expected the call to raise"

    def until(
        self, condition: Callable[[], bool], what: str, load: Callable[[], None], limit_s: float = 30
    ) -> None:
        """Run ``load`` until ``condition`` holds; fail after ``limit_s`` seconds."""
        deadline = time.monotonic() + limit_s
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            load()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.provider.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_prometheus()
    with capture() as cap:
        s = Stack(cap, tmp_path_factory.mktemp("prometheus"))
        try:
            yield s
        finally:
            s.close()


def _concrete(query: str) -> str:
    """A dashboard query with Grafana's variables replaced as Grafana would (all tenants, 1m)."""
    return query.replace("$tenant", ".*").replace("$__rate_interval", "1m")


DASHBOARD_QUERIES = [_concrete(q) for q in dashboard_queries(dashboard(TARGETS))]


def _all_have_data(stack: Stack) -> bool:
    return all(stack.has_data(q) for q in DASHBOARD_QUERIES)


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    """After a short healthy load, each panel query of the dashboard has at least one series."""
    stack.until(lambda: _all_have_data(stack), "every dashboard query to return data", stack.healthy_round)
    empty = [q for q in DASHBOARD_QUERIES if not stack.has_data(q)]
    assert empty == []


def test_tenant_variable_lists_the_tenants(stack: Stack) -> None:
    """The $tenant variable's label_values query finds the tenants that called."""
    stack.until(lambda: stack.has_data("ml_predictions_total"), "a scrape", stack.healthy_round)
    match = 'ml_predictions_total{ml_model_name="fraud"}'
    assert {"acme", "beta", "spammy", "broke"} <= set(
        stack.api("label/ml_tenant/values", **{"match[]": match})
    )


def test_rules_load_healthy(stack: Stack) -> None:
    """Prometheus loaded every generated rule and evaluates each without error."""
    assert sorted(r["name"] for r in _loaded_rules(stack)) == sorted(r.alert for r in alert_rules(TARGETS))
    stack.until(
        lambda: all(r["health"] == "ok" and r["lastEvaluation"] for r in _loaded_rules(stack)),
        "every rule to be evaluated",
        stack.healthy_round,
    )


def _loaded_rules(stack: Stack) -> list[dict[str, Any]]:
    return [r for g in stack.api("rules")["groups"] for r in g["rules"]]


def test_quiet_run_fires_nothing(stack: Stack) -> None:
    """Healthy traffic with 0.5% noise (below every threshold) leaves every rule quiet."""
    error_ratio = Queries(TARGETS).error_ratio("ml_model_name")
    stack.until(lambda: _all_have_data(stack), "data", stack.healthy_round)
    seen_at = time.time()
    stack.until(
        lambda: _evaluated_after(stack, seen_at), "a rule evaluation over the data", stack.healthy_round
    )
    value = float(stack.api("query", query=error_ratio)["result"][0]["value"][1])
    assert 0 < value < TARGETS.error_rate
    assert stack.alerts() == []


def _evaluated_after(stack: Stack, moment: float) -> bool:
    groups = stack.api("rules")["groups"]
    return all(_unix(g["lastEvaluation"]) > moment for g in groups)


def _unix(rfc3339: str) -> float:
    """Prometheus's RFC 3339 time (nanoseconds, ``Z`` or an offset) as unix seconds."""
    match = re.fullmatch(r"(.+T[0-9:]{8})(\.[0-9]+)?(Z|[+-][0-9:]+)", rfc3339)
    assert match, rfc3339
    zone = "+00:00" if match[3] == "Z" else match[3]
    whole = datetime.fromisoformat(match[1] + zone).timestamp()
    return whole + float("0" + (match[2] or ".0"))


def test_error_burst_fires_the_error_rate_page(stack: Stack) -> None:
    """A burst of failing calls fires ModelErrorRateHigh with severity page, and nothing else."""

    def firing() -> set[str]:
        return {a["labels"]["alertname"] for a in stack.alerts() if a["state"] == "firing"}

    stack.until(lambda: "ModelErrorRateHigh" in firing(), "the error-rate alert", stack.error_burst)
    alert = next(a for a in stack.alerts() if a["labels"]["alertname"] == "ModelErrorRateHigh")
    assert alert["labels"] == {
        "alertname": "ModelErrorRateHigh",
        "severity": "page",
        "ml_model_name": "fraud",
    }
    assert firing() == {"ModelErrorRateHigh"}
