"""Compact per-call prediction records, so evaluation can use 100% of predictions, not a sample.

The hot path appends one tuple to a list (GIL-atomic, no lock). A daemon thread drains the lists
every second (sooner when one passes ``FLUSH_AT`` rows) into one columnar OTel log record
``ml.prediction.records`` per model/version, through the same log pipeline as sampled features.
Memory is bounded: past ``MAX_PENDING`` rows a buffer drops and counts.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from opentelemetry import _logs
from opentelemetry._logs import SeverityNumber

from modeltel import _forksafe
from modeltel import _names as n
from modeltel._internal import handle_internal_errors

FLUSH_AT = 2048
MAX_PENDING = 200_000
INTERVAL_S = 1.0

COLUMNS = (
    "prediction_id",
    "payload_hash",
    "tenant",
    "score",
    "decision",
    "outcome",
    "time_unix_nano",
    "duration_s",
    "cost",
)


class RecordBuffer:
    """Rows of one model/version waiting to be emitted."""

    __slots__ = ("attributes", "chunk_rows", "chunks", "dropped", "rows", "sink")

    def __init__(self, sink: RecordSink, attributes: dict[str, Any]) -> None:
        self.sink = sink
        self.attributes = attributes
        self.rows: list[tuple[Any, ...]] = []
        self.chunks: list[Chunk] = []
        self.chunk_rows = 0
        self.dropped = 0

    def add(self, row: tuple[Any, ...]) -> None:
        """One single-row prediction."""
        rows = self.rows
        if len(rows) + self.chunk_rows >= MAX_PENDING:
            self.dropped += 1
            return
        rows.append(row)
        if len(rows) == FLUSH_AT:
            self.sink.wake.set()

    def add_chunk(self, chunk: Chunk) -> None:
        """A batch call's rows, expanded into columns later on the flusher thread."""
        n = len(chunk.hashes)
        if len(self.rows) + self.chunk_rows + n > MAX_PENDING:
            self.dropped += n
            return
        self.chunks.append(chunk)
        self.chunk_rows += n
        if self.chunk_rows >= FLUSH_AT:
            self.sink.wake.set()

    def take(self) -> tuple[list[tuple[Any, ...]], list[Chunk]]:
        # Swapping the lists is atomic under the GIL; appends racing with it land in either.
        rows, self.rows = self.rows, []
        chunks, self.chunks = self.chunks, []
        self.chunk_rows = 0
        return rows, chunks


class Chunk:
    """One batch call: per-row hashes, scores and decisions; the rest shared by every row."""

    __slots__ = (
        "cost",
        "decision",
        "decisions",
        "duration",
        "hashes",
        "outcome",
        "prediction_id",
        "scores",
        "tenant",
        "time",
    )

    def __init__(
        self,
        prediction_id: str,
        hashes: list[str],
        scores: list[Any],
        shared: tuple[Any, ...],
        decisions: list[str | None] | None = None,
    ) -> None:
        self.prediction_id, self.hashes, self.scores, self.decisions = (
            prediction_id,
            hashes,
            scores,
            decisions,
        )
        self.tenant, self.decision, self.outcome, self.time, self.duration, self.cost = shared

    def columns(self) -> list[list[Any]]:
        n = len(self.hashes)
        ids = [f"{self.prediction_id}/{i}" for i in range(n)]
        decisions = self.decisions if self.decisions is not None else [self.decision] * n
        shared = (self.outcome, self.time, self.duration, self.cost)
        return [ids, self.hashes, [self.tenant] * n, self.scores, decisions, *([v] * n for v in shared)]


class RecordSink:
    """All record buffers of one runtime, and the thread that emits them."""

    def __init__(self, otel_logger: _logs.Logger) -> None:
        self.otel_logger = otel_logger
        self.buffers: dict[tuple[Any, ...], RecordBuffer] = {}
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread: threading.Thread | None = None
        _forksafe.register(self)

    def buffer_for(self, model: str, version: str, targets: dict[str, Any]) -> RecordBuffer:
        """The buffer of one model/version (created once, at bind time)."""
        key = (model, version, tuple(sorted(targets.items())))
        with self._lock:
            buffer = self.buffers.get(key)
            if buffer is None:
                attrs = {n.MODEL_NAME: model, n.MODEL_VERSION: version}
                attrs.update({f"ml.model.{k}": v for k, v in targets.items() if v is not None})
                buffer = self.buffers[key] = RecordBuffer(self, attrs)
            self._start()
            return buffer

    def _start(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="modeltel-records", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self.wake.wait(INTERVAL_S)
            self.wake.clear()
            self.flush()

    def flush(self) -> None:
        """Emit every pending row now."""
        with self._lock:
            buffers = list(self.buffers.values())
        for buffer in buffers:
            rows, chunks = buffer.take()
            if rows or chunks:
                with handle_internal_errors("records.emit"):
                    self._emit(buffer, rows, chunks)

    def _emit(self, buffer: RecordBuffer, rows: list[tuple[Any, ...]], chunks: list[Chunk]) -> None:
        columns: list[list[Any]] = (
            [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in COLUMNS]
        )
        for chunk in chunks:
            for column, values in zip(columns, chunk.columns(), strict=True):
                column.extend(values)
        body = dict(zip(COLUMNS, columns, strict=True))
        self.otel_logger.emit(
            event_name=n.EVENT_RECORDS,
            body=body,
            attributes=buffer.attributes,
            severity_number=SeverityNumber.INFO,
            timestamp=time.time_ns(),
        )

    def stop(self) -> None:
        """Emit what is pending and stop the thread."""
        self._stopped = True
        self.wake.set()
        self.flush()

    def _after_fork(self) -> None:
        # The parent's rows are the parent's; the child's runtime builds its own sink.
        self.buffers = {}
        self._lock = threading.Lock()
        self.wake = threading.Event()
        self._stopped = True
