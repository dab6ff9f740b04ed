"""A local telemetry sink for the benchmark matrix, run as its own process so its CPU is not counted.

    python benchmarks/sink.py            # prints "port N" once listening on 127.0.0.1

It answers what a collector or a Datadog agent answers, and nothing more:

- OTLP/HTTP ``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs``: 200 with an empty protobuf body
  (an empty ``Export*ServiceResponse``, i.e. full success);
- the Datadog trace agent's ``PUT``/``POST /v0.4/traces`` and ``/v0.5/traces``: 200 with
  ``{"rate_by_service":{}}``;
- ``GET /stats``: what it received so far, as JSON (requests, bytes and items per signal), read
  by the harness between cells so a figure whose telemetry never arrived is caught.

Spans and log records are counted by decoding the OTLP requests only when ``/stats`` is asked
for, between cells, never while a cell is being timed. Datadog traces are counted from the
agent protocol's ``X-Datadog-Trace-Count`` header.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import threading
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OTLP_PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
DATADOG_PATHS = {"/v0.4/traces": "datadog", "/v0.5/traces": "datadog"}
DATADOG_BODY = b'{"rate_by_service":{}}'


def count_spans(body: bytes) -> int:
    """Spans in one OTLP ExportTraceServiceRequest."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)


def count_log_records(body: bytes) -> int:
    """Log records in one OTLP ExportLogsServiceRequest."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest.FromString(body)
    return sum(len(scope.log_records) for rl in request.resource_logs for scope in rl.scope_logs)


def count_data_points(body: bytes) -> int:
    """Metric data points in one OTLP ExportMetricsServiceRequest."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    request = ExportMetricsServiceRequest.FromString(body)
    points = 0
    for rm in request.resource_metrics:
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                points += len(getattr(metric, kind).data_points) if kind else 0
    return points


COUNTERS: dict[str, Callable[[bytes], int]] = {
    "traces": count_spans,
    "metrics": count_data_points,
    "logs": count_log_records,
}


class Tally:
    """What arrived, per signal. OTLP bodies wait undecoded until ``snapshot()``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)
        self.items: dict[str, int] = defaultdict(int)
        self.pending: list[tuple[str, bytes]] = []

    def add(self, signal: str, body: bytes, items: int | None = None) -> None:
        with self.lock:
            self.requests[signal] += 1
            self.bytes[signal] += len(body)
            if items is None:
                self.pending.append((signal, body))
            else:
                self.items[signal] += items

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Decode what is pending, then totals per signal."""
        with self.lock:
            pending, self.pending = self.pending, []
        decoded = [(signal, COUNTERS[signal](body)) for signal, body in pending]
        with self.lock:
            for signal, items in decoded:
                self.items[signal] += items
            signals = set(self.requests) | {"traces", "metrics", "logs", "datadog"}
            return {
                s: {"requests": self.requests[s], "bytes": self.bytes[s], "items": self.items[s]}
                for s in sorted(signals)
            }


class Handler(BaseHTTPRequestHandler):
    """One keep-alive connection from an exporter (HTTP/1.1, Content-Length on every answer)."""

    protocol_version = "HTTP/1.1"
    tally: Tally  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:
        return None  # no line per request

    def body(self) -> bytes:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw

    def answer(self, status: int, body: bytes = b"", content_type: str = "application/x-protobuf") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.body()
        if self.path in OTLP_PATHS:
            self.tally.add(OTLP_PATHS[self.path], body)
            self.answer(200)
        elif self.path in DATADOG_PATHS:
            self.tally.add("datadog", body, int(self.headers.get("X-Datadog-Trace-Count") or 0))
            self.answer(200, DATADOG_BODY, "application/json")
        else:  # the agent's /info, telemetry, remote config...: not an agent with those features
            self.answer(404)

    do_PUT = do_POST

    def do_GET(self) -> None:
        if self.path == "/stats":
            self.answer(200, json.dumps(self.tally.snapshot()).encode(), "application/json")
        else:
            self.answer(404)


def serve(port: int = 0) -> ThreadingHTTPServer:
    """A sink listening on 127.0.0.1 (``port`` 0: a free one); call ``serve_forever()`` on it."""
    Handler.tally = Tally()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


# ---------------------------------------------------------------- the harness's side


@dataclass
class Sink:
    """A running sink process, as the harness sees it."""

    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, dict[str, int]]:
        """Totals received so far, per signal (``traces``, ``metrics``, ``logs``, ``datadog``)."""
        with urllib.request.urlopen(self.url + "/stats", timeout=60) as response:
            return dict(json.load(response))


def received(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, int]:
    """Items (spans, data points, log records, Datadog traces) received between two ``stats()``."""
    return {signal: after[signal]["items"] - before[signal]["items"] for signal in after}


@contextmanager
def running(python: str = sys.executable) -> Iterator[Sink]:
    """Start the sink in its own process, and stop it (by its pid) whatever happens."""
    proc = subprocess.Popen(
        [python, str(Path(__file__).resolve())], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until it listens, or EOF if it died
        if not line.startswith("port "):
            raise RuntimeError(f"the sink did not start (exit code {proc.wait(timeout=10)})")
        yield Sink(proc, int(line.split()[1]))
    finally:
        proc.kill()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    server = serve(parser.parse_args().port)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
