"""Exporter wrappers for the pipeline modeltel installs: inert in a forked child, failures counted.

A child inherits the parent's exporters, their connections and possibly a lock held mid-export;
it must neither send through them nor re-send the parent's data. The child builds its own
pipeline (see ``_runtime``), and these wrappers make the inherited one drop everything.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from modeltel import _forksafe


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


class GuardedSpanExporter(SpanExporter):
    """Delegates to ``inner`` in the process that created it; drops everything in a fork."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._pid = os.getpid()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if os.getpid() != self._pid:
            return SpanExportResult.SUCCESS
        result = self._inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            export_failures.add("traces", len(spans))
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return os.getpid() != self._pid or self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if os.getpid() == self._pid:
            self._inner.shutdown()


class GuardedLogExporter(LogRecordExporter):
    """The log-record counterpart of :class:`GuardedSpanExporter`."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self._inner = inner
        self._pid = os.getpid()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if os.getpid() != self._pid:
            return LogRecordExportResult.SUCCESS
        result = self._inner.export(batch)
        if result is not LogRecordExportResult.SUCCESS:
            export_failures.add("logs", len(batch))
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return os.getpid() != self._pid or bool(self._inner.force_flush(timeout_millis))

    def shutdown(self) -> None:
        if os.getpid() == self._pid:
            self._inner.shutdown()  # type: ignore[no-untyped-call]
