"""An application that installed its own TracerProvider and MeterProvider keeps modeltel's fast
paths: metrics aggregated locally and exported exactly through the application's exporters,
unsampled calls with no span at all. Checked over the real OTLP wire against the plain SDK's own
instruments in the same process (tests/app_fast_path_app.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modeltel._export.otlp_flat import TEMPORALITY_DELTA, FlatRecord, latest_points
from otlp_receiver import OtlpReceiver
from serving_support import otel_env

pytestmark = pytest.mark.wire

APP = str(Path(__file__).with_name("app_fast_path_app.py"))
CALLS = 2000
_TEMPORALITY = {"cumulative": 2, "delta": TEMPORALITY_DELTA}


def _run(reader: str, **env: str) -> tuple[dict[str, Any], list[FlatRecord], list[FlatRecord], str]:
    """Run the app against a fresh receiver: its report, the spans and metric points received, and
    its stderr."""
    with OtlpReceiver() as receiver:
        environ = otel_env(receiver.http_endpoint, **env)
        done = subprocess.run(
            [sys.executable, APP, str(CALLS), reader],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        return report, receiver.spans(), receiver.metrics(), done.stderr


def _histogram(points: list[FlatRecord], name: str) -> tuple[int, float, list[int]]:
    """Count, sum and bucket counts of histogram ``name``, added over its latest/delta points."""
    mine = [p for p in latest_points(points) if p["name"] == name]
    assert mine, name
    buckets = [sum(b) for b in zip(*(p["bucket_counts"] for p in mine), strict=True)]
    return sum(p["count"] for p in mine), sum(p["sum"] for p in mine), buckets


def _same_histogram(ours: tuple[int, float, list[int]], sdk: tuple[int, float, list[int]]) -> None:
    """Counts and bucket counts equal; sums equal but for float rounding: the SDK's cumulative
    sum adds its per-collection sums, modeltel's adds every value to one running total."""
    assert (ours[0], ours[2]) == (sdk[0], sdk[2])
    assert ours[1] == pytest.approx(sdk[1], rel=1e-12)


def _total(points: list[FlatRecord], name: str) -> float:
    return float(sum(p["value"] for p in latest_points(points) if p["name"] == name))


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_app_meter_provider_exports_local_aggregates_exactly(temporality: str) -> None:
    """Through the application's periodic OTLP reader (cumulative or delta), modeltel's counts,
    sums and bucket counts equal the plain SDK's for the same calls, in the application's
    temporality, while the application's SDK records no measurement of modeltel's."""
    report, _, points, _ = _run("periodic", OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=temporality)

    assert all(report["flushed"])
    assert report["measurements"] == 0  # main: 5 per call (predictions, duration, score, cost, in-flight x2)
    total_calls = CALLS + 2 * (CALLS // 10)
    assert _total(points, "ml.predictions") == _total(points, "ref.predictions") == total_calls
    assert _total(points, "ml.prediction.cost") == pytest.approx(_total(points, "ref.cost"), abs=1e-9)
    _same_histogram(_histogram(points, "ml.prediction.score"), _histogram(points, "ref.score"))
    assert _histogram(points, "ml.prediction.duration")[0] == total_calls
    ours = [p for p in points if p["name"] in ("ml.predictions", "ml.prediction.score")]
    assert {p["temporality"] for p in ours} == {_TEMPORALITY[temporality]}
    if temporality == "delta":  # one export per flush, each with only its own calls
        counts = [p["value"] for p in points if p["name"] == "ml.predictions"]
        assert counts == [CALLS // 2, CALLS // 2, 2 * (CALLS // 10)]
    [in_flight] = latest_points(p for p in points if p["name"] == "ml.predictions.in_flight")
    assert in_flight["value"] == 0 and in_flight["temporality"] == _TEMPORALITY["cumulative"]
    assert _total(points, "ref.after") == 1  # modeltel's shutdown left the shared exporter running


def test_api_path_is_opt_in_and_still_exact() -> None:
    """MODELTEL_METRICS_PATH=api records every measurement through the application's SDK."""
    report, _, points, _ = _run("periodic", MODELTEL_METRICS_PATH="api")

    total_calls = CALLS + 2 * (CALLS // 10)
    assert report["measurements"] >= 4 * total_calls
    assert _total(points, "ml.predictions") == total_calls
    _same_histogram(_histogram(points, "ml.prediction.score"), _histogram(points, "ref.score"))


def test_pull_reader_falls_back_to_the_api_path() -> None:
    """An InMemoryMetricReader is read on demand: modeltel records through the API, exactly, and
    says why once."""
    report, _, _, stderr = _run("memory")

    total_calls = CALLS + 2 * (CALLS // 10)
    assert report["measurements"] >= 4 * total_calls
    got = report["points"]
    assert sum(got["ml.predictions"]) == sum(got["ref.predictions"]) == total_calls
    [ours], [ref] = got["ml.prediction.score"], got["ref.score"]
    assert ours == ref
    assert stderr.count("InMemoryMetricReader collects on demand") == 1


def test_app_view_on_modeltel_metrics_still_applies() -> None:
    """A View selecting one of modeltel's instruments sees every measurement: modeltel records
    through the API, and says why once."""
    report, _, points, stderr = _run("periodic", APP_VIEW="1")

    assert report["measurements"] >= 4 * (CALLS + 2 * (CALLS // 10))
    scores = [p for p in latest_points(points) if p["name"] == "ml.prediction.score"]
    assert scores and {tuple(p["explicit_bounds"]) for p in scores} == {(0.5,)}
    assert stderr.count("Views see measurements") == 1


def test_app_sampler_predicted_no_span_for_unsampled_calls() -> None:
    """At 1% (parent-based, from OTEL_TRACES_SAMPLER*), modeltel creates a span only for the calls
    the application's sampler keeps: roots at 1% (not 1% of 1%), every call under a sampled parent,
    none under an unsampled one; the application's spans inside predict follow their parents (none
    is exported without its predict span)."""
    report, spans, _, _ = _run(
        "periodic", OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0.01"
    )

    predicts = [s for s in spans if s["name"] == "predict fast"]
    assert report["modeltel_spans_created"] == len(predicts)  # main: one per call, 2400
    by_id = {s["span_id"]: s for s in spans}
    sampled_parent = report["sampled_parent"]
    under_sampled = [s for s in predicts if s["parent_span_id"] == sampled_parent["span_id"]]
    assert len(under_sampled) == CALLS // 10
    assert {s["trace_id"] for s in under_sampled} == {sampled_parent["trace_id"]}
    assert not [s for s in spans if s["trace_id"] == report["unsampled_parent"]["trace_id"]]
    # Under the SDK's own unsampled span each dropped call is a trace of its own: so it stays.
    dropped_roots = CALLS - len([s for s in predicts if not s["parent_span_id"]])
    assert report["unsampled_inner_traces"] == dropped_roots + 1  # + the unsampled remote parent's
    roots = [s for s in predicts if not s["parent_span_id"]]
    assert 1 <= len(roots) <= 60  # 20 expected of 2000 at 1%; 1% of 1% would be 0.2
    inner = [s for s in spans if s["name"] == "inside predict"]
    assert len(inner) == len(predicts)
    for s in inner:
        parent = by_id[s["parent_span_id"]]
        assert parent["name"] == "predict fast" and parent["trace_id"] == s["trace_id"]


def test_app_sampler_of_its_own_keeps_the_sdk_path() -> None:
    """A sampler modeltel cannot predict decides each call itself, as before: a span is created
    for every call and none is exported."""
    report, spans, _, _ = _run("periodic", APP_SAMPLER="own")

    assert report["modeltel_spans_created"] == CALLS + 2 * (CALLS // 10)
    assert not [s for s in spans if s["name"] == "predict fast"]
