"""``modeltel evaluate`` on what an OpenTelemetry Collector writes: every file and S3 exporter
format gives the same report as modeltel's own files of the same records.

The records are modeltel's own (predictions, feature samples, outcomes, emitted through the SDK);
the fixtures are encoded from them by the SDK's OTLP encoder and protobuf's JSON printer, framed
as the Collector's exporters frame them (see ``modeltel/loop/_collector.py``), never by
modeltel's file writer.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import zstandard
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pyarrow import fs as pafs  # type: ignore[import-untyped]

import modeltel
from modeltel._export.otlp_json import OtlpJsonFileLogExporter, from_otlp_json
from modeltel._export.records import columns_of
from modeltel.cli import main
from modeltel.cli.replay import feature_records
from modeltel.cli.summary import summarize
from modeltel.loop import EvaluateOptions, evaluate, to_jsonable
from modeltel.loop._durations import parse_instant
from modeltel.testing import capture

CALLS = 1_500


@modeltel.instrument(model="collected", version="2", tenant="tenant")
def predict(features: dict[str, float], tenant: str = "acme") -> float:
    return min(1.0, max(0.0, features["x"]))


@pytest.fixture(scope="module")
def records() -> list[Any]:
    """modeltel's log records for 1,500 predictions (5% feature sample) and their outcomes."""
    rng = random.Random(3)
    with capture(feature_sample_rate=0.05, prediction_records=1.0) as c:
        ids = []
        for i in range(CALLS):
            x = rng.random()
            predict({"x": x, "y": rng.gauss(0, 1)}, tenant=f"t{i % 3}")
            prediction = modeltel.current_prediction()
            assert prediction is not None
            ids.append((prediction.prediction_id, x))
        modeltel.record_outcomes({"prediction_id": pid, "label": int(rng.random() < x)} for pid, x in ids)
        logs = c.logs
    assert {r.log_record.event_name for r in logs} == {"ml.prediction.records", "ml.features", "ml.outcome"}
    return logs


def _requests(records: Sequence[Any], parts: int = 4) -> list[Any]:
    """The records as several OTLP ExportLogsServiceRequests (protobuf messages)."""
    size = -(-len(records) // parts)
    return [encode_logs(records[i : i + size]) for i in range(0, len(records), size)]


def _json(request: Any, event_name_attribute: bool = False) -> bytes:
    """One request as OTLP-JSON, the way the Collector's JSON marshaler writes it (one object)."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    if event_name_attribute:  # older SDKs and Collectors: the name is an attribute, not a field
        for resource in document["resourceLogs"]:
            for scope in resource["scopeLogs"]:
                for record in scope["logRecords"]:
                    name = record.pop("eventName")
                    record.setdefault("attributes", []).append(
                        {"key": "event.name", "value": {"stringValue": name}}
                    )
    return json.dumps(_hex_ids(document), separators=(",", ":")).encode()


def _hex_ids(node: Any) -> Any:
    """OTLP-JSON's one departure from protobuf's JSON mapping: trace and span ids are hex, not
    base64 (the Collector's marshaler writes them so)."""
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: base64.b64decode(value).hex()
        if key in ("traceId", "spanId", "parentSpanId")
        else _hex_ids(value)
        for key, value in node.items()
    }


def _framed(payloads: Sequence[bytes]) -> bytes:
    """The file exporter's framing for protobuf or compressed output: 4-byte big-endian lengths."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in payloads)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


Writer = Callable[[Path, list[Any]], None]


def _json_lines_rotated(folder: Path, requests: list[Any]) -> None:
    (folder / "otel-logs-2026-12-01T05-02-14.173.json").write_bytes(
        b"\n".join(_json(r) for r in requests[:2]) + b"\n"
    )
    (folder / "otel-logs.json").write_bytes(b"\n".join(_json(r) for r in requests[2:]) + b"\n")


def _json_zstd_per_message(folder: Path, requests: list[Any]) -> None:
    (folder / "otel-logs.json").write_bytes(_framed([_zstd(_json(r)) for r in requests]))


def _proto(folder: Path, requests: list[Any]) -> None:
    (folder / "otel-logs.pb").write_bytes(_framed([r.SerializeToString() for r in requests]))


def _proto_zstd_per_message(folder: Path, requests: list[Any]) -> None:
    (folder / "otel-logs.pb").write_bytes(_framed([_zstd(r.SerializeToString()) for r in requests]))


def _json_lines_in_a_zstd_stream(folder: Path, requests: list[Any]) -> None:
    (folder / "otel-logs.json.zst").write_bytes(_zstd(b"\n".join(_json(r) for r in requests) + b"\n"))


def _proto_in_a_zstd_stream(folder: Path, requests: list[Any]) -> None:
    (folder / "otel-logs.pb.zst").write_bytes(_zstd(_framed([r.SerializeToString() for r in requests])))


def _s3_layout(folder: Path, requests: list[Any]) -> None:
    """The S3 exporter: prefix/year=/month=/day=/hour=/minute=/ objects, one request each,
    otlp_json and otlp_proto marshalers, gzip and not."""
    for i, request in enumerate(requests):
        partition = folder / "logs" / "year=2026" / "month=12" / "day=01" / "hour=05" / f"minute=0{i}"
        partition.mkdir(parents=True)
        if i % 2:
            (partition / f"logs_{i}.binpb.gz").write_bytes(gzip.compress(request.SerializeToString()))
        else:
            (partition / f"logs_{i}.json").write_bytes(_json(request))


def _event_name_as_attribute(folder: Path, requests: list[Any]) -> None:
    (folder / "otel-logs.json").write_bytes(b"\n".join(_json(r, event_name_attribute=True) for r in requests))


FORMATS: dict[str, Writer] = {
    "file exporter json, rotated": _json_lines_rotated,
    "file exporter json + zstd (per message)": _json_zstd_per_message,
    "file exporter proto": _proto,
    "file exporter proto + zstd (per message)": _proto_zstd_per_message,
    "file exporter json, native zstd stream": _json_lines_in_a_zstd_stream,
    "file exporter proto, native zstd stream": _proto_in_a_zstd_stream,
    "s3 exporter layout, otlp_json and otlp_proto+gzip": _s3_layout,
    "event.name attribute": _event_name_as_attribute,
}


def _report(folder: Path) -> dict[str, Any]:
    result = evaluate(folder, EvaluateOptions(period="1d", maturation="0s"))
    document = to_jsonable(result)
    return {"groups": document["groups"], "labels": document["labels_matched"]}


@pytest.fixture(scope="module")
def reference(records: list[Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("plain")
    OtlpJsonFileLogExporter(folder).export(records)
    report = _report(folder)
    (group,) = report["groups"]
    assert group["counts"]["predictions"] == CALLS and report["labels"] == CALLS
    return report


@pytest.mark.parametrize("name", list(FORMATS))
def test_collector_output_evaluates_as_the_plain_folder(
    name: str, records: list[Any], reference: dict[str, Any], tmp_path: Path
) -> None:
    FORMATS[name](tmp_path, _requests(records))
    (tmp_path / "otel-traces.pb").write_bytes(_framed([b"\x0a\x02\x0a\x00"]))  # not logs: ignored
    assert _report(tmp_path) == reference


def test_a_folder_without_prediction_records_says_so_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unrecognised format used to print an empty report and exit 0."""
    (tmp_path / "export.bin").write_bytes(b"\x00\x01garbage that is no telemetry")
    assert main(["evaluate", str(tmp_path), "--quiet"]) == 1
    assert "no prediction records in" in capsys.readouterr().err


@pytest.mark.parametrize("source", ["labels file", "recorded outcomes", "tables folder"])
def test_labels_that_match_no_prediction_say_so_and_fail(
    records: list[Any], source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outcomes for other predictions, from ``--labels``, recorded in the telemetry, or landed in
    a tables folder's ``outcomes/`` (a tables folder used to report no outcomes and exit 0)."""
    telemetry, argv = tmp_path / "telemetry", []
    exporter = OtlpJsonFileLogExporter(telemetry)
    exporter.export([r for r in records if r.log_record.event_name != "ml.outcome"])
    others = [{"prediction_id": f"other-{i}", "label": 1} for i in range(20)]
    if source == "recorded outcomes":
        with capture() as c:
            modeltel.record_outcomes(others)
        exporter.export(c.logs)
    else:
        labels = tmp_path / "labels.jsonl"
        labels.write_text("".join(json.dumps(o) + "\n" for o in others))
        argv = ["--labels", str(labels)]
    if source == "tables folder":
        assert main(["tables", str(telemetry), str(tmp_path / "tables"), *argv]) == 0
        telemetry, argv = tmp_path / "tables", []

    assert main(["evaluate", str(telemetry), *argv, "--quiet"]) == 1
    assert "none of the 20 labels matched a prediction" in capsys.readouterr().err


def _three_partitions(records: list[Any], write: Callable[[str, bytes], None]) -> datetime:
    """The requests, as the S3 exporter writes them, in the minute they were made and again ten
    days before and after; returns that minute."""
    stamps = [r.log_record.timestamp or r.log_record.observed_timestamp for r in records]
    made = datetime.fromtimestamp(min(stamps) / 1e9, timezone.utc)
    for shift, label in ((timedelta(0), "now"), (timedelta(days=-10), "old"), (timedelta(days=10), "new")):
        partition = (made + shift).strftime("logs/year=%Y/month=%m/day=%d/hour=%H/minute=%M")
        for i, request in enumerate(_requests(records)):
            write(f"{partition}/{label}-{i}.binpb.gz", gzip.compress(request.SerializeToString()))
    return made


def _window(records: list[Any], made: datetime) -> tuple[str, str]:
    """--since a day before the records, --as-of a day after them."""
    last = max(r.log_record.timestamp or r.log_record.observed_timestamp for r in records)
    after = datetime.fromtimestamp(last / 1e9, timezone.utc) + timedelta(days=1)
    return (made - timedelta(days=1)).isoformat(), after.isoformat()


def _predictions(path: str | Path, *window: str) -> int:
    options = EvaluateOptions(maturation="0s", **dict(zip(("since", "as_of"), window, strict=False)))
    return sum(g.counts.predictions for g in evaluate(path, options).groups)


def test_partitions_outside_since_and_as_of_are_not_read(records: list[Any], tmp_path: Path) -> None:
    """With --since and --as-of around the minute the records were made only its partition is
    read; without, all three are."""

    def write(relative: str, data: bytes) -> None:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)

    since, as_of = _window(records, _three_partitions(records, write))
    assert _predictions(tmp_path) == 3 * CALLS
    assert _predictions(tmp_path, since, as_of) == CALLS
    # --since also leaves out predictions made before it, wherever they were stored.
    times = sorted(
        t
        for r in records
        if r.log_record.event_name == "ml.prediction.records"
        for t in columns_of(r.log_record.body)["time_unix_nano"]
    )
    later = datetime.fromtimestamp(times[CALLS // 2] / 1e9, timezone.utc).isoformat()
    assert _predictions(tmp_path, later, as_of) == sum(t >= parse_instant(later) for t in times)


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A bucket on a real S3 server on localhost (moto's), reached as users configure the AWS
    SDK: credentials and endpoint from the environment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "moto server did not start"
                time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port}"
        for name, value in (
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ACCESS_KEY_ID", "modeltel"),
            ("AWS_SECRET_ACCESS_KEY", "modeltel"),
            ("AWS_REGION", "us-east-1"),
        ):
            monkeypatch.setenv(name, value)
        bucket = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
        bucket.create_dir("telemetry")
        yield bucket
    finally:
        server.terminate()
        server.wait()


def test_an_s3_url_reads_as_the_local_folder_with_partitions_pruned(
    records: list[Any], reference: dict[str, Any], s3: Any
) -> None:
    """s3://bucket/prefix over the S3 wire: partitions outside --since/--as-of are not read, and
    the minute the records were made reports as the plain folder."""

    def write(relative: str, data: bytes) -> None:
        with s3.open_output_stream(f"telemetry/otel/{relative}", compression=None) as sink:
            sink.write(data)

    since, as_of = _window(records, _three_partitions(records, write))
    assert _predictions("s3://telemetry/otel", since, as_of) == CALLS
    assert _predictions("s3://telemetry/otel") == 3 * CALLS
    for name in ("old", "new"):
        listing = s3.get_file_info(pafs.FileSelector("telemetry/otel", recursive=True))
        for found in [i.path for i in listing if f"/{name}-" in i.path]:
            s3.delete_file(found)
    assert _report("s3://telemetry/otel") == reference


def test_a_tables_folder_at_an_s3_url_evaluates_as_the_local_one(
    records: list[Any], reference: dict[str, Any], s3: Any, tmp_path: Path
) -> None:
    """modeltel tables, uploaded under s3://bucket/prefix, reads back on DuckDB as it was written."""
    OtlpJsonFileLogExporter(tmp_path / "telemetry").export(records)
    assert main(["tables", str(tmp_path / "telemetry"), str(tmp_path / "tables")]) == 0
    for path in (tmp_path / "tables").rglob("*.parquet"):
        with s3.open_output_stream(f"telemetry/{path.relative_to(tmp_path)}", compression=None) as sink:
            sink.write(path.read_bytes())
    assert _report("s3://telemetry/tables") == reference


def test_tables_lands_at_an_s3_url_where_a_cluster_reads_it(
    records: list[Any], reference: dict[str, Any], s3: Any, tmp_path: Path
) -> None:
    """``modeltel tables TELEMETRY s3://...`` writes the tables folder over the S3 wire, from a
    local folder or from telemetry in the bucket; landing again replaces it rather than adding."""
    OtlpJsonFileLogExporter(tmp_path / "telemetry").export(records)
    for _ in range(2):
        assert main(["tables", str(tmp_path / "telemetry"), "s3://telemetry/landed"]) == 0
    assert _report("s3://telemetry/landed") == reference

    for path in (tmp_path / "telemetry").iterdir():
        with s3.open_output_stream(f"telemetry/otel/{path.name}", compression=None) as sink:
            sink.write(path.read_bytes())
    assert main(["tables", "s3://telemetry/otel", "s3://telemetry/landed"]) == 0
    assert _report("s3://telemetry/landed") == reference


def test_tables_to_a_bucket_that_does_not_exist_says_so_in_one_line(
    records: list[Any], s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    OtlpJsonFileLogExporter(tmp_path / "telemetry").export(records)
    assert main(["tables", str(tmp_path / "telemetry"), "s3://no-such-bucket/tables"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("modeltel tables: s3://no-such-bucket/tables: ")
    assert "bucket does not exist" in line


class _Refusing(BaseHTTPRequestHandler):
    """An S3 endpoint that refuses every request, as a bucket policy without this reader does."""

    def _refuse(self) -> None:
        body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _refuse

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "someone-else")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", ["evaluate", "inventory", "tables"])
def test_a_store_that_refuses_the_reader_is_one_line(
    command: str, refusing_s3: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = [str(tmp_path / "tables")] if command == "tables" else []
    assert main([command, "s3://telemetry/otel", *out, *(["--quiet"] if command == "evaluate" else [])]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"modeltel {command}: s3://telemetry/otel: ")
    assert "ACCESS_DENIED" in line.upper().replace(" ", "_")


def test_a_bucket_that_does_not_exist_is_named(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Named on a line of its own, after the stage it stopped."""
    assert main(["evaluate", "s3://no-such-bucket/otel"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "[1/8] loading telemetry ... failed",
        "modeltel evaluate: s3://no-such-bucket/otel: nothing there (no such bucket, folder or prefix)",
    ]


def test_tables_lands_only_the_partitions_inside_since_and_as_of(records: list[Any], s3: Any) -> None:
    """A bucket holding other days' partitions lands only the window's, as evaluate reads it."""

    def write(relative: str, data: bytes) -> None:
        with s3.open_output_stream(f"telemetry/otel/{relative}", compression=None) as sink:
            sink.write(data)

    since, as_of = _window(records, _three_partitions(records, write))
    command = ["tables", "s3://telemetry/otel", "s3://telemetry/landed"]
    assert main([*command, "--since", since, "--as-of", as_of]) == 0
    assert _predictions("s3://telemetry/landed") == CALLS
    assert main(command) == 0
    assert _predictions("s3://telemetry/landed") == 3 * CALLS


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the demo writes: spans, metrics and logs in modeltel's own files."""
    out = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    command = [sys.executable, "-m", "modeltel.cli", "demo", "--output", str(out), "--calls", "400"]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return out


def _collector_copy(plain: Path, out: Path) -> None:
    """The demo's three signals as a Collector writes them: S3 objects named by signal (traces
    as otlp_proto + gzip, metrics as otlp_json, logs as otlp_proto), and one file exporter
    JSON-lines file holding requests of all three signals."""
    signals = {
        "traces": ExportTraceServiceRequest,
        "metrics": ExportMetricsServiceRequest,
        "logs": ExportLogsServiceRequest,
    }
    mixed: list[bytes] = []
    for signal, message_type in signals.items():
        lines = (plain / f"{signal}.jsonl").read_bytes().splitlines()
        requests = [from_otlp_json(json.loads(line), message_type) for line in lines if line.strip()]
        half = len(requests) // 2
        partition = out / "otel" / "year=2026" / "month=12" / "day=01" / "hour=05" / "minute=00"
        partition.mkdir(parents=True, exist_ok=True)
        for i, request in enumerate(requests[:half]):
            if signal == "metrics":
                (partition / f"metrics_{i}.json").write_bytes(_json(request))
            elif signal == "traces":
                (partition / f"traces_{i}.binpb.gz").write_bytes(gzip.compress(request.SerializeToString()))
            else:
                (partition / f"logs_{i}.binpb").write_bytes(request.SerializeToString())
        mixed += [_json(request) for request in requests[half:]]
    (out / "otel-export.json").write_bytes(b"\n".join(mixed) + b"\n")


def test_summary_and_replay_read_what_a_collector_wrote(demo_folder: Path, tmp_path: Path) -> None:
    _collector_copy(demo_folder, tmp_path)
    plain, collected = summarize(demo_folder), summarize(tmp_path)
    assert plain.rows and [r for r in collected.rows] == plain.rows
    assert collected.bad_lines == 0
    model = plain.rows[0].model
    assert list(feature_records(tmp_path, model)) == list(feature_records(demo_folder, model))
