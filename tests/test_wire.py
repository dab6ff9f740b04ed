"""End to end over the real OTLP wire: a subprocess configured by env vars only, a receiver here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from modeltel._export.otlp_flat import latest_points
from modeltel._export.records import COLUMNS, columns_of, record_rows
from otlp_receiver import MAX_REQUEST_BYTES, HungServer, OtlpReceiver, closed_port, metric_total

pytestmark = pytest.mark.wire

APP = str(Path(__file__).with_name("wire_app.py"))
CALLS = 30
ERRORS = 3  # i = 0, 10, 20 raise


def _env(endpoint: str, protocol: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_SERVICE_NAME="wire-test",
        MODELTEL_FEATURE_SAMPLE_RATE="0",
        **extra,
    )
    return env


def _run(env: dict[str, str], timeout: float = 60) -> tuple[dict[str, Any], float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, APP, str(CALLS)], env=env, capture_output=True, text=True, timeout=timeout
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), elapsed


def _features(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rec for rec in logs if rec["event_name"] == "ml.features"]


def _records(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rec for rec in logs if rec["event_name"] == "ml.prediction.records"]


def _record_rows(logs: list[dict[str, Any]]) -> int:
    return sum(len(columns_of(rec["body"]).get("prediction_id", ())) for rec in _records(logs))


def _received_everything(r: OtlpReceiver) -> bool:
    spans = len(r.spans()) >= CALLS
    logs = len(_features(r.logs())) >= ERRORS and _record_rows(r.logs()) >= CALLS
    return spans and logs and metric_total(r.metrics(), "ml.predictions") >= CALLS


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_metrics_and_logs_arrive_over_the_wire(protocol: str) -> None:
    """Every call arrives as a span, exact metric counts by outcome, and the error calls' feature records."""
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        _run(_env(endpoint, protocol))
        assert receiver.wait_until(_received_everything, timeout=30)
        spans, metrics, logs = receiver.spans(), receiver.metrics(), receiver.logs()

    assert len(spans) == CALLS
    span = next(s for s in spans if s["attributes"]["ml.outcome"] == "ok")
    assert span["name"] == "predict wire"
    assert span["resource"]["service.name"] == "wire-test"
    assert {
        "ml.model.name",
        "ml.model.version",
        "ml.tenant",
        "ml.prediction.id",
        "ml.payload.hash",
        "ml.prediction.score",
        "ml.outcome",
        "ml.decision",
        "ml.features.sampled",
    } <= set(span["attributes"])
    assert len(span["attributes"]["ml.payload.hash"]) == 16

    by = {"ml.model.name": "wire", "ml.model.version": "2.0.0"}
    assert metric_total(metrics, "ml.predictions", **by, **{"ml.outcome": "ok"}) == CALLS - ERRORS
    assert metric_total(metrics, "ml.predictions", **by, **{"ml.outcome": "error"}) == ERRORS
    assert metric_total(metrics, "ml.predictions", **{"ml.tenant": "acme"}) == CALLS / 3
    durations = [p for p in latest_points(metrics) if p["name"] == "ml.prediction.duration"]
    assert sum(p["count"] for p in durations) == CALLS and durations[0]["unit"] == "s"

    features = _features(logs)
    assert len(features) == ERRORS  # rate 0: only the calls that raised are sampled
    assert {rec["attributes"]["ml.outcome"] for rec in features} == {"error"}
    assert features[0]["body"] == {"features": {"x": -1}}
    assert _record_rows(logs) == CALLS  # one compact record per call

    # The records' body crossed the wire as one OTLP string value holding the JSON object.
    records = _records(logs)
    assert all(isinstance(rec["body"], str) for rec in records)
    rows = [row for rec in records for row in record_rows(rec["body"])]
    assert all(list(row) == list(COLUMNS) for row in rows)
    ok = [row for row in rows if row["outcome"] == "ok"]
    assert len(ok) == CALLS - ERRORS and len({row["prediction_id"] for row in rows}) == CALLS
    assert sorted(row["score"] for row in ok) == sorted(i / CALLS for i in range(CALLS) if i % 10)
    assert {row["decision"] for row in ok} == {"yes", "no"}
    assert [row["score"] for row in rows if row["outcome"] == "error"] == [None] * ERRORS
    assert {row["tenant"] for row in rows} == {"acme", "globex", "initech"}
    assert all(len(row["payload_hash"]) == 16 and row["time_unix_nano"] > 0 for row in rows)
    assert {rec["attributes"]["ml.model.version"] for rec in records} == {"2.0.0"}


def _fail_open_env(endpoint: str, protocol: str) -> dict[str, str]:
    return _env(endpoint, protocol, OTEL_EXPORTER_OTLP_TIMEOUT="1", MODELTEL_SHUTDOWN_TIMEOUT="2")


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_port_closed(protocol: str) -> None:
    """Nothing listening: every result is returned, and the process exits in bounded time."""
    out, elapsed = _run(_fail_open_env(f"http://127.0.0.1:{closed_port()}", protocol))
    assert len(out["results"]) == CALLS and out["results"].count("error") == ERRORS
    assert out["slowest_call_s"] < 0.5
    assert elapsed < 20


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_accepts_and_never_answers(protocol: str) -> None:
    """A hung collector: calls are not slowed, and shutdown gives up at its deadline."""
    with HungServer() as hung:
        out, elapsed = _run(_fail_open_env(hung.endpoint, protocol))
    assert len(out["results"]) == CALLS
    assert out["slowest_call_s"] < 0.5
    assert elapsed < 20


# ---------------------------------------------------------------- request size

BATCH_APP = str(Path(__file__).with_name("wire_batch_app.py"))
BATCH_CALLS, BATCH_ROWS = 12, 10_000  # about 5 MB of prediction records, more than one request holds


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_big_batches_arrive_in_requests_a_collector_accepts(protocol: str) -> None:
    """Records of 120,000 batch rows, flushed at once, reach a receiver that refuses requests over
    4 MiB (the OTLP/gRPC default): every row, each under its call's id, none refused."""
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        env = _env(endpoint, protocol, OTEL_TRACES_SAMPLER="always_off")
        proc = subprocess.run(
            [sys.executable, BATCH_APP, str(BATCH_CALLS), str(BATCH_ROWS)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        logs = receiver.logs()
        largest, refused = receiver.largest_request["logs"], dict(receiver.refused)

    assert out["flushed"] is True
    assert "RESOURCE_EXHAUSTED" not in proc.stderr and not refused
    assert 0 < largest <= MAX_REQUEST_BYTES
    ids = [i for rec in _records(logs) for i in columns_of(rec["body"])["prediction_id"]]
    expected = [f"{call}/{row}" for call in out["prediction_ids"] for row in range(BATCH_ROWS)]
    assert sorted(ids) == sorted(expected)


# ---------------------------------------------------------------- self-telemetry


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_self_telemetry_reaches_the_collector(protocol: str) -> None:
    """modeltel's own counters (internal errors, failed exports) are exported beside ml.* metrics:
    with the log endpoint down, the receiver learns how many log records were lost."""
    dead = f"http://127.0.0.1:{closed_port()}"
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        logs = dead if protocol == "grpc" else f"{dead}/v1/logs"
        env = _env(
            endpoint,
            protocol,
            OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=logs,
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
            WIRE_FAULTS="4",
        )
        env.pop("MODELTEL_STRICT", None)  # the app swallows its score extractor's bug, as in production
        _run(env)
        assert receiver.wait_until(lambda r: metric_total(r.metrics(), "ml.predictions") >= CALLS, 30)
        metrics = receiver.metrics()

    assert metric_total(metrics, "modeltel.internal_errors") == 4
    # Every call left a prediction record, the error calls a feature record: none reached the
    # dead endpoint, and all of them are counted.
    assert metric_total(metrics, "modeltel.export.failures", signal="logs") >= 1 + ERRORS
    assert metric_total(metrics, "ml.predictions", **{"ml.model.name": "wire"}) == CALLS


# ---------------------------------------------------------------- span queues


def _traces_endpoint(endpoint: str, protocol: str) -> str:
    return endpoint if protocol == "grpc" else f"{endpoint}/v1/traces"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_a_full_queue_drops_are_counted(protocol: str) -> None:
    """A span collector that hangs fills the span queue: every span it drops is counted in
    modeltel.export.failures{signal="traces"}, which reaches the (healthy) metrics collector."""
    calls, queue, batch = 2_000, 64, 16
    with OtlpReceiver() as receiver, HungServer() as hung:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        env = _env(
            endpoint,
            protocol,
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=_traces_endpoint(hung.endpoint, protocol),
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
            OTEL_BSP_MAX_QUEUE_SIZE=str(queue),
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE=str(batch),
            MODELTEL_SHUTDOWN_TIMEOUT="3",
        )
        proc = subprocess.run(
            [sys.executable, APP, str(calls)], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert receiver.wait_until(lambda r: metric_total(r.metrics(), "ml.predictions") >= calls, 30)
        metrics = receiver.metrics()

    lost = metric_total(metrics, "modeltel.export.failures", signal="traces")
    # At most one queue and the batch in the exporter's hands were still pending at exit.
    assert calls - queue - batch <= lost <= calls
    assert "Queue full" not in proc.stderr  # the SDK's queue never had to drop one itself


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_burst_of_traced_calls_loses_no_span_at_the_defaults(protocol: str) -> None:
    """5,000 calls as fast as they come, every one traced (the SDK's default sampling), over
    OTLP with no queue settings: every span arrives and none is counted lost."""
    calls = 5_000
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        env = _env(endpoint, protocol, MODELTEL_SHUTDOWN_TIMEOUT="30")
        proc = subprocess.run(
            [sys.executable, APP, str(calls)], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert receiver.wait_until(lambda r: len(r.spans()) >= calls, 30)
        assert receiver.wait_until(lambda r: metric_total(r.metrics(), "ml.predictions") >= calls, 30)
        spans, metrics = receiver.spans(), receiver.metrics()

    assert len({s["attributes"]["ml.prediction.id"] for s in spans}) == calls
    assert metric_total(metrics, "modeltel.export.failures", signal="traces") == 0
    assert "Queue full" not in proc.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_an_error_storm_arrives_in_requests_a_collector_accepts(protocol: str) -> None:
    """600 failing calls whose spans each carry ~20 KB of (bounded) exception text: one SDK batch
    of 512 would be ~10 MB, over the receiver's 4 MiB; sent in smaller requests, every span arrives."""
    storm = 600
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        env = _env(endpoint, protocol, WIRE_STORM=str(storm), MODELTEL_SHUTDOWN_TIMEOUT="30")
        _run(env, timeout=120)
        assert receiver.wait_until(lambda r: len(r.spans()) >= storm + CALLS, 30)
        spans, refused = receiver.spans(), dict(receiver.refused)
        largest = receiver.largest_request["traces"]

    assert sum(1 for s in spans if s["name"] == "predict storm") == storm
    assert not refused and 0 < largest <= MAX_REQUEST_BYTES
