"""Sampled feature records over the real OTLP wire: a hostile value loses only its own record,
and undeclared features leave the process only as the policy says.

A subprocess (``wire_features_app.py``) configured by env vars only, ``MODELTEL_STRICT=1`` so any
internal error fails it, exports to the receiver here over gRPC or HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import modeltel
from modeltel._export.records import columns_of
from modeltel._features import feature_rows
from otlp_receiver import OtlpReceiver, metric_total
from wire_features_app import (
    BATCH_ROWS,
    CANARY,
    HOSTILE,
    HOSTILE_ROW,
    ORDINARY_CALLS,
    SINGLE_CALLS,
    nested_list,
    nested_map,
)

pytestmark = pytest.mark.wire

APP = str(Path(__file__).with_name("wire_features_app.py"))
PROTOCOLS = ["grpc", "http/protobuf"]
RECEIVE_TIMEOUT_S = 30.0


@dataclass
class Received:
    spans: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    metrics: list[dict[str, Any]]

    def feature_rows(self, model: str) -> list[dict[str, Any]]:
        """Every sampled prediction of ``model`` that arrived, single call or batch row."""
        return [
            row
            for rec in self.logs
            if rec["event_name"] == "ml.features" and rec["attributes"]["ml.model.name"] == model
            for row in feature_rows(rec["attributes"], rec["body"])
        ]

    def record_rows(self, model: str) -> int:
        """How many predictions of ``model`` arrived in ``ml.prediction.records``."""
        return sum(
            len(columns_of(rec["body"]).get("prediction_id", ()))
            for rec in self.logs
            if rec["event_name"] == "ml.prediction.records" and rec["attributes"]["ml.model.name"] == model
        )

    def counter(self, name: str, **attrs: Any) -> float:
        return metric_total(self.metrics, name, **attrs)


def _run(scenario: str, protocol: str, calls: int, **env: str) -> Received:
    """Run the app's ``scenario``; what the receiver got once all ``calls`` predictions are counted."""
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
        environ.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            MODELTEL_FEATURE_SAMPLE_RATE="1",
            MODELTEL_STRICT="1",
            **env,
        )
        proc = subprocess.run(
            [sys.executable, APP, scenario], env=environ, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        counted = receiver.wait_until(
            lambda r: metric_total(r.metrics(), "ml.predictions") >= calls, RECEIVE_TIMEOUT_S
        )
        assert counted, f"predictions counted: {metric_total(receiver.metrics(), 'ml.predictions')}"
        return Received(receiver.spans(), receiver.logs(), receiver.metrics())


# ---------------------------------------------------------------- one deep payload


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_one_deep_payload_loses_only_its_own_record(protocol: str) -> None:
    """A list nested 50 deep in one call and one batch row: every other record arrives, the two
    left out are counted as dropped and not as sampled."""
    got = _run("mixed", protocol, SINGLE_CALLS + BATCH_ROWS)

    rows = got.feature_rows("mixed")
    singles = sorted(r["features"]["x"] for r in rows if r["row"] is None)
    assert singles == [float(i) for i in range(SINGLE_CALLS) if i != SINGLE_CALLS // 2]
    batch_rows = [r["row"] for r in rows if r["row"] is not None]
    assert batch_rows == [i for i in range(BATCH_ROWS) if i != HOSTILE_ROW]
    assert got.record_rows("mixed") == SINGLE_CALLS + BATCH_ROWS  # the compact records too

    by = {"ml.model.name": "mixed"}
    assert got.counter("modeltel.features.dropped", **by, reason="too_deep") == 2
    assert got.counter("ml.features.sampled", **by) == len(rows) == SINGLE_CALLS + BATCH_ROWS - 2
    unsampled = [s for s in got.spans if s["attributes"]["ml.features.sampled"] is False]
    assert len(got.spans) == SINGLE_CALLS + 1 and len(unsampled) == 1


# ---------------------------------------------------------------- hostile values

# What a kept hostile value reads as once it crossed the wire; the others are dropped as too deep.
LOGGED_AS: dict[str, Any] = {
    "list_16_deep": nested_list(16),
    "map_16_deep": nested_map(16),
    "int_past_64_bits": float(2**70),
    "int_past_float": "-Infinity",
    "lone_surrogate": "a\\udc80b",
    "surrogate_key": {"\\udc80": 1.0},
    "non_string_keys": {"1": "one", "(2, 3)": "pair", "None": 0},
    "bytes": "00ff6d6f64656c",
    "non_finite": ["NaN", "Infinity", "-Infinity"],
    "numpy": [[1.5, "NaN"], [2.0, 3.0]],
}
TOO_DEEP = {"list_50_deep", "map_50_deep", "list_17_deep"}
SINGLE = ORDINARY_CALLS + 1  # single-row calls per model, the middle one hostile


@pytest.fixture(scope="module", params=PROTOCOLS)
def hostile(request: pytest.FixtureRequest) -> Received:
    """One run of every hostile value, each under its own model, over one protocol."""
    return _run("hostile", request.param, len(HOSTILE) * (SINGLE + BATCH_ROWS))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_value_is_logged_safely_or_dropped_alone(hostile: Received, name: str) -> None:
    """Each hostile value is written so the encoder and receiver take it, or (too deep) its
    prediction alone is left out and counted; the ordinary records around it all arrive."""
    model = f"h-{name}"
    rows = hostile.feature_rows(model)
    singles = {r["features"]["x"]: r["features"] for r in rows if r["row"] is None}
    batch = {r["row"]: r["features"] for r in rows if r["row"] is not None}
    ordinary = [float(i) for i in range(SINGLE) if i != SINGLE // 2]
    by = {"ml.model.name": model}
    if name in TOO_DEEP:
        assert sorted(singles) == ordinary
        assert sorted(batch) == [i for i in range(BATCH_ROWS) if i != HOSTILE_ROW]
        assert hostile.counter("modeltel.features.dropped", **by, reason="too_deep") == 2
    else:
        assert sorted(singles) == sorted([*ordinary, float(SINGLE // 2)])
        assert singles[float(SINGLE // 2)]["v"] == LOGGED_AS[name]
        assert sorted(batch) == list(range(BATCH_ROWS))
        assert batch[HOSTILE_ROW]["v"] == LOGGED_AS[name]
        assert hostile.counter("modeltel.features.dropped", **by) == 0
    assert hostile.counter("ml.features.sampled", **by) == len(rows)
    assert hostile.record_rows(model) == SINGLE + BATCH_ROWS


# ---------------------------------------------------------------- undeclared features

CANARY_MODELS = ("canary-forbid", "canary-ignore")
CANARY_CALLS = len(CANARY_MODELS) * (ORDINARY_CALLS + 1 + BATCH_ROWS)


def _everything(got: Received) -> str:
    return json.dumps([got.spans, got.logs, got.metrics], default=repr)


def _canary_values(got: Received, model: str) -> list[Any]:
    """``patient_name`` in each of ``model``'s sampled predictions that have it."""
    rows = got.feature_rows(model)
    assert len(rows) == ORDINARY_CALLS + 1 + BATCH_ROWS  # every prediction sampled and arrived
    return [r["features"]["patient_name"] for r in rows if r["features"].get("patient_name") is not None]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_undeclared_feature_never_leaves_by_default(protocol: str) -> None:
    """Contracts with extra="forbid" or "ignore": the undeclared canary is in no span, record
    or metric; the declared features of the same calls are logged."""
    got = _run("canary", protocol, CANARY_CALLS)
    assert CANARY not in _everything(got)
    for model in CANARY_MODELS:
        assert _canary_values(got, model) == []
        assert {"income": 99.5, "age": 30} in [r["features"] for r in got.feature_rows(model)]


def test_undeclared_feature_is_kept_when_asked() -> None:
    got = _run("canary", "grpc", CANARY_CALLS, MODELTEL_UNDECLARED_FEATURES="keep")
    for model in CANARY_MODELS:
        assert _canary_values(got, model) == [CANARY, CANARY]


def test_undeclared_feature_is_hashed_when_asked() -> None:
    """``hash`` logs the value's payload hash, so equal values can be counted and joined."""
    got = _run("canary", "grpc", CANARY_CALLS, MODELTEL_UNDECLARED_FEATURES="hash")
    assert CANARY not in _everything(got)
    for model in CANARY_MODELS:
        assert _canary_values(got, model) == [modeltel.payload_hash(CANARY)] * 2
