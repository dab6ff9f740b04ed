"""Compact per-call prediction records, so evaluation can use 100% of predictions, not a sample.

The hot path appends one tuple to a list (GIL-atomic, no lock). A daemon thread drains the lists
every second (sooner when one passes ``FLUSH_AT`` rows) into one columnar OTel log record
``ml.prediction.records`` per model/version, through the same log pipeline as sampled features.
Memory is bounded: past ``MAX_PENDING`` rows a buffer drops and counts.

The record's body is one JSON text (an OTLP ``string_value``) holding the object
``{"prediction_id": [...], "payload_hash": [...], "tenant": [...], "score": [...],
"decision": [...], "outcome": [...], "time_unix_nano": [...], "duration_s": [...],
"cost": [...]}``, a value per prediction in each column. One string costs the OTLP encoder next
to nothing, where a map of arrays cost one protobuf AnyValue per value (about 1 us each). A score
that was NaN or infinite is written as ``null``, like a missing one: readers treat null as no
score.

A column may instead hold one value shared by every row of the record. A batch call of at least
``SHARED_AT`` kept rows gets a record of its own in that shape, ``{"prediction_id": "<call id>",
"row": [...], "payload_hash": [...], "score": [...], "tenant": "acme", ...}``: its id is a single
value, row ``i`` of the record is prediction ``<call id>/<row[i]>`` (``row`` absent: rows
0..n-1), and only the hashes and scores (and per-row decisions) are written per row: a third of
the bytes, and half the CPU per row of writing and encoding every value.

Versions before JSON text wrote the object of arrays as an OTLP map; every reader
(:func:`columns_of`, the ``modeltel.loop`` loaders) reads all three shapes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

import numpy as np
import orjson
from opentelemetry import _logs
from opentelemetry._logs import SeverityNumber

from modeltel import _forksafe
from modeltel import _names as n
from modeltel._hashing import RECIPE
from modeltel._internal import handle_internal_errors

FLUSH_AT = 2048
# No records body holds more rows than this: a 10,000-row batch call is five records, not one.
# Collectors refuse big requests (the OTLP/gRPC receiver's default limit is 4 MiB) and the log
# exporter cannot split one record, so a body stays far below that (~330 KB at most for
# single-row predictions, ~90 KB for a batch call's rows; see also _guarded.MAX_REQUEST_BYTES).
BODY_ROWS = 2048
# A batch call with this many kept rows gets its own record with shared values written once.
# Below it the rows join the record of single-row predictions: a log record costs ~20 us to
# emit and encode, about what 64 rows save by not repeating their shared values.
SHARED_AT = 64
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
_KEYS = tuple(f'"{name}":[' for name in COLUMNS)


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

    Written out as JSON on the records thread, so the call itself only hands over references.
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

    def kept(self) -> tuple[list[int] | None, list[str], Any, list[str | None] | None]:
        """The kept rows (None: all of them) and their hashes, scores and per-row decisions."""
        rows = self.rows
        if rows is None:
            return None, self.hashes, self.scores, self.decisions
        keep = rows.tolist()
        decisions = self.decisions
        return (
            keep,
            list(map(self.hashes.__getitem__, keep)),
            None if self.scores is None else self.scores[rows],
            None if decisions is None else list(map(decisions.__getitem__, keep)),
        )

    def shared_bodies(self) -> Iterator[str]:
        """The call's kept rows alone, as records bodies of at most ``BODY_ROWS`` rows each, the
        values shared by every row written once per body."""
        keep, hashes, scores, decisions = self.kept()
        for start in range(0, self.size, BODY_ROWS):
            part = slice(start, start + BODY_ROWS)
            rows = keep[part] if keep is not None else None
            if rows is None and start:  # no "row" means rows 0..n-1: only the first part's are
                rows = list(range(start, min(start + BODY_ROWS, self.size)))
            body: dict[str, Any] = {"prediction_id": self.prediction_id}
            if rows is not None:
                body["row"] = rows
            body["payload_hash"], body["tenant"] = hashes[part], self.tenant
            body["score"] = None if scores is None else scores[part]
            body["decision"] = self.decision if decisions is None else decisions[part]
            body["outcome"], body["time_unix_nano"] = self.outcome, self.time
            body["duration_s"], body["cost"] = self.duration, self.cost
            yield json_text(body)

    def json_items(self) -> list[list[str]]:
        """Per column of ``COLUMNS``, the rows' values as JSON array items (pieces of the text
        between the brackets), made without a Python object per row where the value is shared."""
        n = self.size
        keep, hashes, scores, decisions = self.kept()
        # float64 straight into the JSON; NaN and infinities become null
        score_items = _repeated(None, n) if scores is None else [json_items(scores)]
        decision_items = _repeated(self.decision, n) if decisions is None else [json_items(decisions)]
        return [
            _id_items(self.prediction_id, n if keep is None else keep),
            [json_items(hashes)],
            _repeated(self.tenant, n),
            score_items,
            decision_items,
            *(_repeated(v, n) for v in (self.outcome, self.time, self.duration, self.cost)),
        ]


def _repeated(value: Any, n: int) -> list[str]:
    """``n`` times the same value as JSON array items: one string multiplication."""
    if n <= 0:
        return []
    item = json_text(value)
    return [(item + ",") * (n - 1), item]


# Row suffixes "/0", "/1", ... made once, so a batch row's id costs no Python object at all.
# Grown by swapping in a longer list: a thread still holding the old one reads a correct list.
_suffixes: list[str] = []
_MAX_SUFFIXES = 65_536


def _id_items(prediction_id: str, rows: int | list[int]) -> list[str]:
    """The ids ``<prediction_id>/<row>`` of rows 0..rows-1 (or the rows listed) as JSON array
    items, joined in one ``str.join`` over the cached suffixes (ids and suffixes need no escaping
    past the id's own, done once)."""
    count = rows if isinstance(rows, int) else (max(rows) + 1 if rows else 0)
    if not count:
        return []
    suffixes = _row_suffixes(count)
    if count > len(suffixes):  # past the cache: made one by one
        picked: Iterable[str] = (f"/{i}" for i in (range(rows) if isinstance(rows, int) else rows))
    elif isinstance(rows, int):
        picked = islice(suffixes, rows)
    else:
        picked = map(suffixes.__getitem__, rows)
    quoted = json_text(prediction_id)  # '"<id>"', escaped
    head = quoted[:-1]
    return [head, ('",' + head).join(picked), '"']


def _row_suffixes(count: int) -> list[str]:
    global _suffixes
    suffixes = _suffixes
    if len(suffixes) < min(count, _MAX_SUFFIXES):
        size = min(max(count, 2 * len(suffixes)), _MAX_SUFFIXES)
        suffixes = suffixes + [f"/{i}" for i in range(len(suffixes), size)]
        _suffixes = suffixes
    return suffixes


# ---------------------------------------------------------------- JSON text

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def json_text(value: Any) -> str:
    """``value`` as JSON text (orjson, numpy arrays included). NaN and infinities become null;
    what JSON cannot hold is made to fit: unpaired surrogates replaced, unknown objects as text."""
    try:
        return orjson.dumps(value, default=_default, option=_NUMPY).decode()
    except TypeError:  # a lone surrogate, an int past 64 bits
        return orjson.dumps(_fitted(value), default=_default, option=_NUMPY).decode()


def json_items(values: Any) -> str:
    """A sequence (list, tuple, 1-D array) as JSON array items: its JSON text without brackets."""
    return json_text(values)[1:-1]


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):  # not C-contiguous, or a dtype orjson does not take
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _fitted(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode()
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_fitted(v) for v in value]
    if isinstance(value, dict):
        return {_fitted(str(k)): _fitted(v) for k, v in value.items()}
    return value


def decoded_body(body: Any) -> Any:
    """A log body as written: JSON text decoded (None when it is not JSON), anything else as is."""
    if isinstance(body, (str, bytes)):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    return body


def columns_of(body: Any) -> dict[str, list[Any]]:
    """The columns of an ``ml.prediction.records`` body, JSON text or (as written before) a map
    of arrays, a list per column (see :func:`expand_columns`)."""
    found = decoded_body(body)
    if not isinstance(found, Mapping):
        return {}
    return expand_columns(found)


def expand_columns(found: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A decoded records body as a list per column: arrays as they are; a single value of one of
    ``COLUMNS`` repeated for every row; a single ``prediction_id`` (a batch call's) gives row
    ``i`` the id ``<prediction_id>/<row[i]>``. Other single values are left out."""
    arrays = {str(k): list(v) for k, v in found.items() if isinstance(v, (list, tuple))}
    call = found.get("prediction_id")
    rows = arrays.pop("row", None) if isinstance(call, str) else None
    size = max((len(v) for v in arrays.values()), default=0)
    if isinstance(call, str):
        arrays["prediction_id"] = [f"{call}/{r}" for r in (range(size) if rows is None else rows)]
    for name in COLUMNS:
        if name in found and name not in arrays:
            arrays[name] = [found[name]] * size
    return arrays


def record_rows(body: Any) -> list[dict[str, Any]]:
    """An ``ml.prediction.records`` body as one dict per prediction (short columns padded with None)."""
    columns = columns_of(body)
    size = max((len(c) for c in columns.values()), default=0)
    padded = {k: c + [None] * (size - len(c)) for k, c in columns.items()}
    return [{k: c[i] for k, c in padded.items()} for i in range(size)]


# ---------------------------------------------------------------- the records thread


class RecordSink:
    """All record buffers of one runtime, and the thread that emits them."""

    def __init__(self, otel_logger: _logs.Logger, room: Any = None, wait_s: float = 0.0) -> None:
        """``room``: the log queue's Backlog, waited on (at most ``wait_s``) before each record,
        so a burst of outcomes filling the queue cannot crowd the prediction records out."""
        self.otel_logger = otel_logger
        self.room, self.wait_s = room, wait_s
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
                attrs = {n.MODEL_NAME: model, n.MODEL_VERSION: version, n.PAYLOAD_HASH_RECIPE: RECIPE}
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
        for body in record_bodies(rows, chunks):
            self._emit_body(buffer, body)

    def _emit_body(self, buffer: RecordBuffer, body: str) -> None:
        if self.room is not None:  # off the request path: waiting costs no prediction anything
            self.room.wait_for_room(self.wait_s)  # no room even so: the queue refuses and counts it
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


def record_bodies(rows: list[tuple[Any, ...]], chunks: list[Chunk]) -> Iterator[str]:
    """The bodies of the ``ml.prediction.records`` records for what a buffer held, none with more
    than ``BODY_ROWS`` rows: single-row predictions and small batch calls share bodies; a batch
    call of ``SHARED_AT`` kept rows or more has bodies of its own."""
    merged: list[tuple[list[tuple[Any, ...]], list[Chunk]]] = [
        (rows[start : start + BODY_ROWS], []) for start in range(0, len(rows), BODY_ROWS)
    ]
    used = len(merged[-1][0]) if merged else BODY_ROWS
    for chunk in chunks:
        if chunk.size >= SHARED_AT:
            continue
        if used + chunk.size > BODY_ROWS:
            merged.append(([], []))
            used = 0
        merged[-1][1].append(chunk)
        used += chunk.size
    for part_rows, part_chunks in merged:
        yield records_json(part_rows, part_chunks)
    for chunk in chunks:
        if chunk.size >= SHARED_AT:
            yield from chunk.shared_bodies()


def records_json(rows: list[tuple[Any, ...]], chunks: list[Chunk]) -> str:
    """The body of one ``ml.prediction.records`` record: single-row predictions (tuples in
    ``COLUMNS`` order) then batch chunks, as the JSON text of one object of columns."""
    # zip(*rows) turns the rows into column tuples in C; orjson writes tuples as arrays.
    parts = [[[json_items(column)] for column in zip(*rows, strict=True)]] if rows else []
    parts += [chunk.json_items() for chunk in chunks]
    columns = list(zip(*parts, strict=True)) if parts else [()] * len(COLUMNS)
    pieces = ["{"]
    for key, column in zip(_KEYS, columns, strict=True):
        pieces.append(key)
        comma = False
        for items in column:
            if any(items):  # a source without rows adds no items, nor a comma
                if comma:
                    pieces.append(",")
                pieces += items
                comma = True
        pieces.append("],")
    pieces[-1] = "]}"
    # One join and no concatenation on the way: with 10,000 rows every intermediate string is
    # a megabyte of fresh memory, and its page faults cost more than writing the JSON.
    return "".join(pieces)
