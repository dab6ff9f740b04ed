"""Exporter wrappers for the pipeline modeltel installs: fork-aware, failures counted, never raising.

* **Fork.** A forked child inherits the parent's exporters and their connections. Span and log
  exporters rebind to a fresh inner exporter in the child (the SDK's batch processors already drop
  the queue they inherited, so nothing is sent twice): the application's own spans, through a
  global provider modeltel installed before the fork, keep flowing from gunicorn workers.
  modeltel's own metrics exporter goes inert in a child instead; the child builds its own.
* **Fork during export.** gRPC skips its fork handlers when another thread is inside a call, and
  a child then can hang on its channel. Exports pass :data:`gate`; a fork waits (bounded) for
  those in flight.
* **Failures.** An exporter that raises (older HTTP exporters raise on a read timeout) counts as
  a failed export, like one that returns FAILURE.
* **Request size.** The SDK hands an exporter up to 512 spans or log records at once, and
  collectors refuse big requests: the OTLP/gRPC receiver's default limit is 4 MiB, and a refused
  request is lost whole. Batches are sent as requests of at most :data:`MAX_REQUEST_BYTES`, as
  estimated from log record bodies and from spans' exception events.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from modeltel import _forksafe
from modeltel._export.span_encoding import EncodedSpans, accept_encoded, lean_and_other
from modeltel._internal import logger, report_internal_error
from modeltel._lean_span import LeanSpan

FORK_WAIT_S = 1.0  # the longest a fork waits for an export in flight
# Record bodies per log request. Far below the OTLP/gRPC receiver's default 4 MiB limit, and small
# enough that the protobuf encoder's buffers are reused from the heap instead of mapped fresh and
# faulted in page by page: 10,000-row batch calls measured ~100 ns/row less CPU than at 3 MiB.
MAX_REQUEST_BYTES = 512 * 1024
_RECORD_BYTES = 256  # a log record's encoded size besides its body: attributes, times, ids
_SPAN_BYTES = 1024  # a prediction span's encoded size besides its events: ids, times, attributes
_T = TypeVar("_T")


class _Gate:
    """Exports pass side by side; a fork waits (bounded) until none is in flight, and new ones
    wait for the fork. Exports never wait for each other: a slow span export must not hold the
    metric export back at exit."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._forking = False

    @contextmanager
    def export(self) -> Iterator[None]:
        with self._cond:
            while self._forking:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def before_fork(self) -> None:
        with self._cond:
            self._forking = True
            self._cond.wait_for(lambda: self._active == 0, FORK_WAIT_S)

    def after_fork_in_parent(self) -> None:
        with self._cond:
            self._forking = False
            self._cond.notify_all()

    def after_fork_in_child(self) -> None:
        self._reset()


gate = _Gate()
os.register_at_fork(
    before=gate.before_fork,
    after_in_parent=gate.after_fork_in_parent,
    after_in_child=gate.after_fork_in_child,
)


class ExportFailures:
    """Failed or dropped exports per signal, for the ``modeltel.export.failures`` counter."""

    __slots__ = ("__weakref__", "_lock", "by_signal")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_signal: dict[str, int] = {}
        _forksafe.register(self)

    def add(self, signal: str, n: int = 1) -> None:
        with self._lock:
            self.by_signal[signal] = self.by_signal.get(signal, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.by_signal)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self.by_signal = {}


export_failures = ExportFailures()


def _report(signal: str, exc: Exception) -> None:
    logger.warning(
        "modeltel: %s exporter raised %s: %s (counted as a failed export)", signal, type(exc).__name__, exc
    )


def _ignore(n: int) -> None:
    pass


_E = TypeVar("_E", SpanExporter, LogRecordExporter)


class _Forwarder(Generic[_E]):
    """What both guarded exporters do: find the inner exporter of this process, send a batch as
    requests a collector accepts, count what fails. ``send`` is the inner exporter's call."""

    def __init__(self, inner: _E, remake: Callable[[], _E] | None, signal: str, label: str) -> None:
        self._inner: _E | None = inner
        self._remake: Callable[[], _E] | None = remake
        self._pid = os.getpid()
        self.signal, self.label = signal, label
        self.on_taken: Callable[[int], None] = _ignore

    def current(self) -> _E | None:
        if os.getpid() != self._pid:
            self._inner = self._remake() if self._remake is not None else None
            self._pid = os.getpid()
        return self._inner

    def send_all(
        self, batch: Sequence[_T], size_of: Callable[[_T], int], send: Callable[[_E, Sequence[_T]], object]
    ) -> bool:
        """Whether every part of ``batch`` was sent (True too in a child with nowhere to send)."""
        self.on_taken(len(batch))
        inner = self.current()
        if inner is None:
            return True
        sent = [self._send_part(inner, part, send) for part in request_parts(batch, size_of)]
        return all(sent)

    def _send_part(self, inner: _E, part: Sequence[_T], send: Callable[[_E, Sequence[_T]], object]) -> bool:
        try:
            with gate.export():
                ok = send(inner, part) in (SpanExportResult.SUCCESS, LogRecordExportResult.SUCCESS)
        except Exception as exc:
            _report(self.label, exc)
            ok = False
        if not ok:
            export_failures.add(self.signal, len(part))
        return ok


class GuardedSpanExporter(_Forwarder[SpanExporter], SpanExporter):
    """Sends through ``inner``; in a forked child through ``remake()`` (or nowhere without one).

    ``on_taken(n)`` is told of each batch as it arrives (a queue's backlog counts with it).
    """

    def __init__(self, inner: SpanExporter, remake: Callable[[], SpanExporter] | None = None) -> None:
        super().__init__(inner, remake, "traces", "span")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lean, other = lean_and_other(spans)
        ok = True
        if other:
            ok = self.send_all(other, span_size, lambda inner, part: inner.export(part))
        if lean:
            ok = self.send_all(lean, span_size, _export_lean) and ok
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        inner = self.current()
        return inner is None or inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        inner = self.current()
        if inner is not None:
            inner.shutdown()


def _export_lean(inner: SpanExporter, part: Sequence[LeanSpan]) -> SpanExportResult:
    """modeltel's own spans, encoded here where ``inner`` sends an encoded request (the OTLP
    exporters, the file exporter), else handed over as the ReadableSpans they also are."""
    if accept_encoded(inner):
        try:
            batch = EncodedSpans.of(part)
        except Exception as exc:  # a bug of ours must not lose the spans: the SDK encodes them
            report_internal_error("spans.encode", exc)
        else:
            return inner.export(batch)
    return inner.export(part)


class GuardedLogExporter(_Forwarder[LogRecordExporter], LogRecordExporter):
    """The log-record counterpart of :class:`GuardedSpanExporter`."""

    def __init__(
        self, inner: LogRecordExporter, remake: Callable[[], LogRecordExporter] | None = None
    ) -> None:
        super().__init__(inner, remake, "logs", "log")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        ok = self.send_all(batch, log_record_size, lambda inner, part: inner.export(part))
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        inner = self.current()
        return inner is None or bool(inner.force_flush(timeout_millis))

    def shutdown(self) -> None:
        inner = self.current()
        if inner is not None:
            inner.shutdown()  # type: ignore[no-untyped-call]


def request_parts(batch: Sequence[_T], size_of: Callable[[_T], int]) -> list[Sequence[_T]]:
    """``batch`` cut, in order, into parts of at most :data:`MAX_REQUEST_BYTES` (as ``size_of``
    estimates each item; an item bigger than that alone goes in a part of its own)."""
    parts: list[Sequence[_T]] = []
    start, used = 0, 0
    for i, item in enumerate(batch):
        size = size_of(item)
        if used + size > MAX_REQUEST_BYTES and i > start:
            parts.append(batch[start:i])
            start, used = i, 0
        used += size
    if start < len(batch):
        parts.append(batch[start:] if start else batch)
    return parts


def log_record_size(record: ReadableLogRecord) -> int:
    """A log record's encoded size, estimated from its body."""
    return _encoded_size(record.log_record.body)


def span_size(span: ReadableSpan) -> int:
    """A span's encoded size, estimated from what can make one large: exception events (their
    text is bounded, at ~20 KB, but 512 of them are more than a collector takes) and status."""
    size = _SPAN_BYTES
    for event in span.events:
        for value in (event.attributes or {}).values():
            size += len(value) if isinstance(value, str) else 16
    description = span.status.description
    return size + len(description) if description else size


def _encoded_size(body: object) -> int:
    if isinstance(body, str):  # UTF-8 takes at most 4 bytes per code point
        return _RECORD_BYTES + (len(body) if body.isascii() else 4 * len(body))
    if isinstance(body, bytes):
        return _RECORD_BYTES + len(body)
    return _RECORD_BYTES + (len(repr(body)) if isinstance(body, (dict, list, tuple)) else 64)
