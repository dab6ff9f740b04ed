"""The FastAPI example under uvicorn, over real HTTP from a separate load-generator process."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from modeltel._export.records import columns_of
from otlp_receiver import HungServer, OtlpReceiver, closed_port, metric_total
from serving_support import EXAMPLES, Server, otel_env, run_load, serve, served, total_predictions

pytestmark = pytest.mark.wire

APP_DIR = EXAMPLES / "fastapi_service"
EXIT_DEADLINE_S = 10.0
SPAN_KIND_SERVER = 2


def _uvicorn(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "app:app", f"--app-dir={APP_DIR}",
        "--host=127.0.0.1", f"--port={port}", "--no-access-log",
    ]  # fmt: skip


def _stop(server: Server) -> None:
    """SIGTERM and a bounded exit; uvicorn re-raises SIGTERM after its graceful shutdown."""
    server.terminate(EXIT_DEADLINE_S)
    assert server.proc.returncode in (0, -signal.SIGTERM), server.output()


def _start(tmp_path: Path, name: str, env: dict[str, str]) -> AbstractContextManager[Server]:
    port = closed_port()
    return serve(_uvicorn(port), env, tmp_path / f"{name}.log", port)


def test_every_request_served_is_counted_exactly(tmp_path: Path) -> None:
    """Each request the endpoint answered is one received ml.predictions, after SIGTERM's flush."""
    with OtlpReceiver() as receiver:
        with _start(tmp_path, "uvicorn", otel_env(receiver.http_endpoint)) as server:
            load = run_load(server.base_url + "/predict", requests=2000, concurrency=8, bad_every=20)
            _stop(server)
        metrics = receiver.metrics()
        assert total_predictions(receiver) == served(load) == 2000
    assert metric_total(metrics, "ml.predictions", **{"ml.outcome": "fallback"}) == 100


def test_app_owned_otel_loses_nothing_at_sigterm(tmp_path: Path) -> None:
    """The application installed its own OTel providers (modeltel records through them) and its
    lifespan runs modeltel.shutdown() then its own: after load and SIGTERM the receiver holds a
    span, a record row and a count for every request served."""
    requests = 1000
    with OtlpReceiver() as receiver:
        env = otel_env(
            receiver.http_endpoint, FRAUD_API_APP_OTEL="true", OTEL_METRIC_EXPORT_INTERVAL="600000"
        )
        with _start(tmp_path, "app-otel", env) as server:
            load = run_load(server.base_url + "/predict", requests=requests, concurrency=8, bad_every=20)
            _stop(server)
        spans, logs = receiver.spans(), receiver.logs()
        assert total_predictions(receiver) == served(load) == requests
    assert (
        len({s["attributes"]["ml.prediction.id"] for s in spans if s["name"] == "predict fraud"}) == requests
    )
    records = [r for r in logs if r["event_name"] == "ml.prediction.records"]
    assert len({i for r in records for i in columns_of(r["body"])["prediction_id"]}) == requests


# The setups of the Deploying table in docs/deploying.md, each against MODELTEL_DISABLED=true.
LATENCY_SETUPS = {
    "off": {"MODELTEL_DISABLED": "true"},
    "on, defaults": {},
    "on, spans 1%": {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "on, spans 1%, no records": {
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
        "MODELTEL_PREDICTION_RECORDS": "0",
    },
}


def test_added_latency_on_vs_off(tmp_path: Path) -> None:
    """Benchmark (printed, not asserted): p50/p99 latency with modeltel on vs MODELTEL_DISABLED=true."""
    results: dict[str, dict[int, Any]] = {}
    with OtlpReceiver() as receiver:
        for i, (setup, extra) in enumerate(LATENCY_SETUPS.items()):
            with _start(tmp_path, f"setup{i}", otel_env(receiver.http_endpoint, **extra)) as server:
                url = server.base_url + "/predict"
                # Valid payloads only: with MODELTEL_DISABLED there is no contract and no fallback.
                run_load(url, requests=300, concurrency=4, bad_every=0)  # warm-up
                results[setup] = {c: run_load(url, 3000, concurrency=c, bad_every=0) for c in (1, 8)}
                _stop(server)
    off = results["off"]
    print()
    for setup, by_c in results.items():
        assert all(served(load) == 3000 for load in by_c.values())
        cells = [
            f"c={c}: p50 {by_c[c]['p50_ms']:.2f} (+{by_c[c]['p50_ms'] - off[c]['p50_ms']:.2f}) "
            f"p99 {by_c[c]['p99_ms']:.2f} (+{by_c[c]['p99_ms'] - off[c]['p99_ms']:.2f}) ms, "
            f"{3000 / by_c[c]['elapsed_s']:.0f} req/s"
            for c in (1, 8)
        ]
        print(f"{setup:26} | " + " | ".join(cells))


def _request_with_traceparent(base_url: str, trace_id: str, parent_id: str) -> None:
    headers = {"traceparent": f"00-{trace_id}-{parent_id}-01", "X-Tenant": "acme"}
    body = {"amount": 10.0, "country": "DE", "account_age_days": 3}
    response = httpx.post(base_url + "/predict", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def test_client_traceparent_is_the_prediction_spans_ancestor(tmp_path: Path) -> None:
    """With FastAPI instrumentation, predict's span is the request span's child in the client trace."""
    trace_id, client_span = os.urandom(16).hex(), os.urandom(8).hex()
    env = otel_env("", FRAUD_API_HTTP_SPANS="true")
    with OtlpReceiver() as receiver:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.http_endpoint
        with _start(tmp_path, "traced", env) as server:
            _request_with_traceparent(server.base_url, trace_id, client_span)
            _stop(server)
        spans = [s for s in receiver.spans() if s["trace_id"] == trace_id]
    by_name = {s["name"]: s for s in spans}
    predict, request = by_name["predict fraud"], by_name["POST /predict"]
    assert request["kind"] == SPAN_KIND_SERVER and request["parent_span_id"] == client_span
    assert predict["parent_span_id"] == request["span_id"]


# Paced at about a third of what one worker serves here: the lag then shows what blocks the loop,
# not requests queueing behind each other as they do at saturation.
PACED_RPS = 250.0


@pytest.mark.parametrize("pace", [0.0, PACED_RPS], ids=["saturating", "paced"])
@pytest.mark.parametrize("modeltel_on", [True, False], ids=["modeltel-on", "modeltel-off"])
def test_event_loop_lag_under_load_with_collector_hung(
    tmp_path: Path, modeltel_on: bool, pace: float
) -> None:
    """The loop-lag probe's p99 stays small under load while the collector never answers."""
    with HungServer() as hung:
        extra = {"FRAUD_API_LOOP_PROBE": "true", **({} if modeltel_on else {"MODELTEL_DISABLED": "true"})}
        with _start(tmp_path, "probe", otel_env(hung.endpoint, **extra)) as server:
            load = run_load(
                server.base_url + "/predict", requests=3000, concurrency=8, bad_every=0, rate=pace
            )
            lag = httpx.get(server.base_url + "/debug/loop-lag", timeout=10).json()
            _stop(server)
    state = "on" if modeltel_on else "off"
    print(f"\nloop lag (modeltel {state}, {pace or 'unpaced'} rps, collector hung): {lag}; load {load}")
    assert served(load) == 3000
    assert lag["count"] > 100 and lag["p99_ms"] < 50
