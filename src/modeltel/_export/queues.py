"""Batch queues that count what they drop, where modeltel builds the batch processors.

The SDK's batch processors drop a span or log record when their queue is full, and say so only
in a log line. A :class:`Backlog` in front of the SDK's queue refuses what the queue has no room
for and counts it in ``modeltel.export.failures``, so the SDK is never handed an item it would drop
silently. It counts items admitted and items the exporter has taken; the exporter counts a batch
as soon as the SDK pops it, so admitted minus taken is never below the SDK queue's length.

Outcomes are the loop's ground truth and come in bursts (a job labelling yesterday's predictions),
so before one is emitted :meth:`Backlog.wait_for_room` waits, bounded, for the exporter to take a
batch; so does the prediction records thread, which a burst of outcomes would otherwise crowd
out. After one wait ran out (a collector down or stalled) the backlog counts as stalled: later
waits give up at once until the exporter takes a batch again, so a loop of outcomes during an
outage costs one wait per export attempt, not one per outcome.
"""

from __future__ import annotations

import os
import threading
import time

from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from modeltel import _forksafe
from modeltel._errors import ConfigurationError
from modeltel._export.guarded import export_failures
from modeltel._internal import logger
from modeltel._names import M_EXPORT_FAILURES

# Span queue unless OTEL_BSP_MAX_QUEUE_SIZE sets one. A span costs the export thread ~100 us (OTLP)
# to ~140 us (JSON files), so a burst of traced calls outruns it; the SDK's 2,048 dropped spans in
# a burst of 3,000. 16,384 spans are at most ~40 MB.
SPAN_QUEUE = 16_384
LOG_QUEUE = 2_048  # the SDK's default; log records are few (records are columnar, features sampled)


class Backlog:
    """Items admitted to one batch queue and not yet taken by its exporter."""

    __slots__ = (
        "__weakref__",
        "_lock",
        "_room",
        "admitted",
        "capacity",
        "closed",
        "signal",
        "stalled",
        "taken",
    )

    def __init__(self, signal: str, capacity: int) -> None:
        self.signal = signal
        self.capacity = capacity
        self._reset()
        _forksafe.register(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified as the exporter takes a batch
        self.admitted = self.taken = 0
        self.closed = self.stalled = False

    def admit(self) -> bool:
        """Whether the queue has room for one more; a refusal is counted as a failed export."""
        with self._lock:
            if not self.closed and self.admitted - self.taken < self.capacity:
                self.admitted += 1
                return True
        export_failures.add(self.signal)
        return False

    def take(self, n: int) -> None:
        with self._lock:
            self.taken += n
            self.stalled = False
            self._room.notify_all()

    def wait_for_room(self, timeout_s: float) -> bool:
        """Whether the queue has room for one more, waiting at most ``timeout_s`` for the exporter
        to take a batch (not at all while stalled: an earlier wait ran out and nothing was taken
        since). Counts nothing: the caller decides what a False costs."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not self.closed and self.admitted - self.taken >= self.capacity:
                remaining = deadline - time.monotonic()
                if self.stalled or remaining <= 0:
                    if not self.stalled:
                        self.stalled = True
                        logger.warning(
                            "modeltel: the %s queue stayed full for %.1fs; outcomes and prediction records "
                            'are dropped and counted in %s{signal="%s"} until the exporter takes a batch',
                            self.signal, timeout_s, M_EXPORT_FAILURES, self.signal,
                        )  # fmt: skip
                    return False
                self._room.wait(remaining)
            return True

    def pending(self) -> int:
        with self._lock:
            return self.admitted - self.taken

    def close(self) -> None:
        """Refuse (and count) everything from now on; what is still queued is counted lost."""
        with self._lock:
            self.closed, lost = True, self.admitted - self.taken
            self.taken = self.admitted
            self._room.notify_all()
        if lost:
            export_failures.add(self.signal, lost)

    def _after_fork(self) -> None:
        self._reset()  # the SDK empties its queue in a forked child too


class CountingSpanProcessor(BatchSpanProcessor):
    """The SDK's batch span processor behind a :class:`Backlog`."""

    def __init__(self, exporter: SpanExporter, backlog: Backlog) -> None:
        super().__init__(exporter, max_queue_size=backlog.capacity)
        self.backlog = backlog

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is not None and context.trace_flags.sampled and self.backlog.admit():
            super().on_end(span)

    def shutdown(self) -> None:
        super().shutdown()  # type: ignore[no-untyped-call]
        self.backlog.close()


class CountingLogRecordProcessor(BatchLogRecordProcessor):
    """The SDK's batch log record processor behind a :class:`Backlog`."""

    def __init__(self, exporter: LogRecordExporter, backlog: Backlog) -> None:
        super().__init__(exporter, max_queue_size=backlog.capacity)
        self.backlog = backlog

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if self.backlog.admit():
            super().on_emit(log_record)

    def shutdown(self) -> None:
        super().shutdown()  # type: ignore[no-untyped-call]
        self.backlog.close()


def queue_size(variable: str, default: int) -> int:
    """``variable`` as a queue size, ``default`` when unset; anything else fails naming it."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigurationError(f"{variable}={raw!r} is invalid: expected a whole number >= 1")
    return size
