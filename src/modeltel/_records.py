"""Compact per-call prediction records, so evaluation can use 100% of predictions, not a sample.

The hot path appends one tuple to a list (GIL-atomic, no lock). A daemon thread drains the lists
every second (sooner when one passes ``FLUSH_AT`` rows) into one columnar OTel log record
``ml.prediction.records`` per model/version, through the same log pipeline as sampled features.
Memory is bounded: past ``MAX_PENDING`` rows a buffer drops and counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from itertools import chain, islice, repeat
from operator import add
from typing import Any

import numpy as np
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
        n = chunk.size
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
    """One batch call's rows: per-row hashes, scores and decisions; the rest shared by every row.

    Expanded into columns on the records thread, so the call itself only hands over references.
    """

    __slots__ = (
        "cost",
        "decision",
        "decisions",
        "duration",
        "hashes",
        "outcome",
        "prediction_id",
        "rows",
        "scores",
        "size",
        "tenant",
        "time",
    )

    def __init__(
        self,
        prediction_id: str,
        hashes: list[str],
        scores: np.ndarray[Any, Any] | None,
        shared: tuple[Any, ...],
        decisions: list[str | None] | None = None,
        rows: np.ndarray[Any, Any] | None = None,
    ) -> None:
        """``rows``: the batch rows kept (indices into the per-row lists), None for all of them."""
        self.prediction_id, self.hashes, self.scores, self.decisions, self.rows = (
            prediction_id,
            hashes,
            scores,
            decisions,
            rows,
        )
        self.size = len(hashes) if rows is None else len(rows)
        self.tenant, self.decision, self.outcome, self.time, self.duration, self.cost = shared

    def columns(self) -> list[list[Any]]:
        """The rows as the ``COLUMNS`` of the records body."""
        n, rows = self.size, self.rows
        keep = None if rows is None else rows.tolist()
        hashes = self.hashes if keep is None else list(map(self.hashes.__getitem__, keep))
        scores = self.scores
        if scores is None:
            score_column: list[Any] = [None] * n
        else:
            score_column = (scores if rows is None else scores[rows]).tolist()
        decisions: list[Any] | None = self.decisions
        if decisions is None:
            decisions = [self.decision] * n
        elif keep is not None:
            decisions = list(map(decisions.__getitem__, keep))
        shared = (self.outcome, self.time, self.duration, self.cost)
        ids = row_ids(self.prediction_id, n if keep is None else keep)
        return [ids, hashes, [self.tenant] * n, score_column, decisions, *([v] * n for v in shared)]


# Row suffixes "/0", "/1", ... made once, so a batch row's id costs one concatenation. Grown by
# swapping in a longer list: a thread still holding the old one reads a correct (shorter) list.
_suffixes: list[str] = []
_MAX_SUFFIXES = 65_536


def row_ids(prediction_id: str, rows: int | list[int]) -> list[str]:
    """``<prediction_id>/<row>`` for rows 0..rows-1, or for the rows listed."""
    count = rows if isinstance(rows, int) else (max(rows) + 1 if rows else 0)
    suffixes = _row_suffixes(count)
    if count > len(suffixes):  # past the cache: made one by one
        picked: Iterable[str] = (f"/{i}" for i in (range(rows) if isinstance(rows, int) else rows))
    elif isinstance(rows, int):
        picked = islice(suffixes, rows)
    else:
        picked = map(suffixes.__getitem__, rows)
    # operator.add is called without building an argument tuple, unlike a bound __add__.
    return list(map(add, repeat(prediction_id), picked))


def _row_suffixes(count: int) -> list[str]:
    global _suffixes
    suffixes = _suffixes
    if len(suffixes) < min(count, _MAX_SUFFIXES):
        size = min(max(count, 2 * len(suffixes)), _MAX_SUFFIXES)
        suffixes = suffixes + [f"/{i}" for i in range(len(suffixes), size)]
        _suffixes = suffixes
    return suffixes


class RecordSink:
    """All record buffers of one runtime, and the thread that emits them."""

    def __init__(self, otel_logger: _logs.Logger) -> None:
        self.otel_logger = otel_logger
        self.buffers: dict[tuple[Any, ...], RecordBuffer] = {}
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
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
        """Emit every pending row now, including rows the thread took and has not emitted yet."""
        # One flush at a time: a force_flush must not return while the thread is still turning
        # rows it already took into a record.
        with self._flushing:
            with self._lock:
                buffers = list(self.buffers.values())
            for buffer in buffers:
                rows, chunks = buffer.take()
                if rows or chunks:
                    with handle_internal_errors("records.emit"):
                        self._emit(buffer, rows, chunks)

    def _emit(self, buffer: RecordBuffer, rows: list[tuple[Any, ...]], chunks: list[Chunk]) -> None:
        parts = [[list(c) for c in zip(*rows, strict=True)]] if rows else []
        parts += [chunk.columns() for chunk in chunks]
        # One source (the usual batch flush) is used as is; several are joined column by column.
        columns = parts[0] if len(parts) == 1 else [list(chain(*c)) for c in zip(*parts, strict=True)]
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
        self._flushing = threading.Lock()
        self.wake = threading.Event()
        self._stopped = True
