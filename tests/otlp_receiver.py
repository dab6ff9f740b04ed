"""A real OTLP receiver (gRPC and HTTP/protobuf) and broken endpoints for end-to-end tests.

Import from tests as ``from otlp_receiver import OtlpReceiver``. Everything listens on
127.0.0.1 ephemeral ports and is shut down by the context managers.
"""

from __future__ import annotations

import contextlib
import gzip
import selectors
import socket
import threading
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc

from modeltel._export.otlp_flat import FlatRecord, flat_logs, flat_metrics, flat_spans, latest_points

__all__ = ["HungServer", "OtlpReceiver", "closed_port", "metric_total"]

_JOIN_TIMEOUT_S = 10.0
# The largest request either side accepts: gRPC servers' default (the OTel Collector's OTLP/gRPC
# receiver keeps it), applied to HTTP too, where collectors' limits are 4 MiB or more.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class _Signal:
    request_type: type[Message]
    response_type: type[Message]
    flatten: Callable[[Any], list[FlatRecord]]
    add_servicer: Callable[[Any, grpc.Server], None]
    servicer_base: type


_SIGNALS: dict[str, _Signal] = {
    "traces": _Signal(
        trace_pb.ExportTraceServiceRequest,
        trace_pb.ExportTraceServiceResponse,
        flat_spans,
        trace_grpc.add_TraceServiceServicer_to_server,
        trace_grpc.TraceServiceServicer,
    ),
    "metrics": _Signal(
        metrics_pb.ExportMetricsServiceRequest,
        metrics_pb.ExportMetricsServiceResponse,
        flat_metrics,
        metrics_grpc.add_MetricsServiceServicer_to_server,
        metrics_grpc.MetricsServiceServicer,
    ),
    "logs": _Signal(
        logs_pb.ExportLogsServiceRequest,
        logs_pb.ExportLogsServiceResponse,
        flat_logs,
        logs_grpc.add_LogsServiceServicer_to_server,
        logs_grpc.LogsServiceServicer,
    ),
}


def metric_total(points: list[FlatRecord], name: str, **attrs: Any) -> float:
    """Sum the latest cumulative values of metric ``name`` over points whose attributes include ``attrs``.

    Dotted attribute names go through a dict: ``metric_total(p, "ml.predictions", **{"ml.outcome": "ok"})``.
    """
    matching = [
        p for p in latest_points(points) if p["name"] == name and attrs.items() <= p["attributes"].items()
    ]
    return float(sum(p["value"] for p in matching))


def closed_port() -> int:
    """Return a 127.0.0.1 port that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _make_servicer(receiver: OtlpReceiver, signal: str) -> Any:
    base = _SIGNALS[signal].servicer_base

    class Servicer(base):  # type: ignore[misc,valid-type]
        def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
            return receiver.record(signal, "grpc", request)

    return Servicer()


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _OtlpHttpServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signal = self.path.removeprefix("/v1/")
        if signal not in _SIGNALS:
            self._reply(404, b"")
            return
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        if len(body) > MAX_REQUEST_BYTES:
            self.server.receiver.refuse(signal, "http")
            self._reply(413, b"")
            return
        try:
            request = _SIGNALS[signal].request_type.FromString(body)
        except DecodeError:
            self._reply(400, b"")
            return
        self._reply(200, self.server.receiver.record(signal, "http", request).SerializeToString())

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class _OtlpHttpServer(ThreadingHTTPServer):
    """Tracks open connections so close() can end keep-alive handler threads and join them."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, receiver: OtlpReceiver) -> None:
        super().__init__(("127.0.0.1", 0), _OtlpHttpHandler)
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler thread
                connection.shutdown(socket.SHUT_RDWR)


class OtlpReceiver:
    """OTLP gRPC and HTTP/protobuf receiver on 127.0.0.1 that stores every export request.

    ``requests_received[(signal, transport)]`` counts requests, e.g. ``("traces", "grpc")``;
    ``largest_request[signal]`` is the biggest accepted request's size in bytes. A request over
    :data:`MAX_REQUEST_BYTES` is refused (gRPC RESOURCE_EXHAUSTED, HTTP 413) and counted in
    ``refused[(signal, transport)]``; gRPC refuses it before the servicer sees it, so only HTTP
    refusals are counted.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._requests: dict[str, list[Message]] = {signal: [] for signal in _SIGNALS}
        self.requests_received: Counter[tuple[str, str]] = Counter()
        self.largest_request: Counter[str] = Counter()
        self.refused: Counter[tuple[str, str]] = Counter()
        self._executor = futures.ThreadPoolExecutor(max_workers=4)
        limit = [("grpc.max_receive_message_length", MAX_REQUEST_BYTES)]
        self._grpc = grpc.server(self._executor, options=limit)
        self._http = _OtlpHttpServer(self)
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="otlp-http", daemon=True
        )
        self.grpc_endpoint = ""
        self.http_endpoint = f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> OtlpReceiver:
        for signal in _SIGNALS:
            _SIGNALS[signal].add_servicer(_make_servicer(self, signal), self._grpc)
        self.grpc_endpoint = f"http://127.0.0.1:{self._grpc.add_insecure_port('127.0.0.1:0')}"
        self._grpc.start()
        self._http_thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop both servers and release their sockets and threads."""
        self._grpc.stop(grace=0).wait(_JOIN_TIMEOUT_S)
        self._executor.shutdown(wait=True)
        self._http.shutdown()
        self._http.drop_connections()
        self._http.server_close()
        self._http_thread.join(_JOIN_TIMEOUT_S)

    def record(self, signal: str, transport: str, request: Message) -> Message:
        """Store one export request, wake waiters and return the response to send."""
        size = request.ByteSize()
        with self._changed:
            self._requests[signal].append(request)
            self.requests_received[(signal, transport)] += 1
            self.largest_request[signal] = max(self.largest_request[signal], size)
            self._changed.notify_all()
        return _SIGNALS[signal].response_type()

    def refuse(self, signal: str, transport: str) -> None:
        """Count a request refused for its size."""
        with self._changed:
            self.refused[(signal, transport)] += 1
            self._changed.notify_all()

    def _flat(self, signal: str) -> list[FlatRecord]:
        with self._changed:
            requests = list(self._requests[signal])
        flatten = _SIGNALS[signal].flatten
        return [record for request in requests for record in flatten(request)]

    def spans(self) -> list[FlatRecord]:
        """Every span received so far, flattened (see ``modeltel._export.otlp_flat.flat_spans``)."""
        return self._flat("traces")

    def metrics(self) -> list[FlatRecord]:
        """Every metric data point received so far, flattened."""
        return self._flat("metrics")

    def logs(self) -> list[FlatRecord]:
        """Every log record received so far, flattened."""
        return self._flat("logs")

    def wait_until(self, predicate: Callable[[OtlpReceiver], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds, re-checking on every request; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)


class HungServer:
    """A TCP listener on 127.0.0.1 that accepts connections, discards input and never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="hung-server", daemon=True)

    def __enter__(self) -> HungServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_reader:
                        return
                    if key.fileobj is self._listener:
                        self._accept(selector)
                    else:
                        self._discard(selector, key.fileobj)  # type: ignore[arg-type]

    def _accept(self, selector: selectors.BaseSelector) -> None:
        connection, _ = self._listener.accept()
        self._connections.append(connection)
        selector.register(connection, selectors.EVENT_READ)

    def _discard(self, selector: selectors.BaseSelector, connection: socket.socket) -> None:
        try:
            data = connection.recv(65536)
        except OSError:
            data = b""
        if not data:
            # The peer went away; keep the socket itself open until close().
            selector.unregister(connection)

    def close(self) -> None:
        """Stop the accept loop and close every socket."""
        self._wake_writer.send(b"x")
        self._thread.join(_JOIN_TIMEOUT_S)
        for sock in [*self._connections, self._listener, self._wake_reader, self._wake_writer]:
            sock.close()
