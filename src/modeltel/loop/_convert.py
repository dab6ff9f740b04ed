"""OTLP-JSON logs to Parquet: the fast path for large volumes of prediction records.

DuckDB's JSON reader turns every AnyValue wrapper of a columnar ``ml.prediction.records`` body
written as an OTLP map (before modeltel wrote the body as JSON text) into a struct, which made
loading 10M predictions take longer than evaluating them; a JSON text body is parsed a second
time. Here worker processes parse newline-aligned byte ranges of each file with orjson (the
body's JSON text too) and write:

``predictions-NNNNN.parquet``  the prediction rows, in the ``predictions*.parquet`` columns
``other-NNNNN.jsonl``          every other record the loop reads (features, outcomes) and the
                               prediction records' attributes without their body, as OTLP-JSON,
                               loaded by the SQL path (they are a small share of the bytes)
``skipped-NNNNN.json``         lines that are not JSON (a truncated last line after a full disk
                               or a partial copy): skipped, and counted here per logs file

The SDK's on-disk format is unchanged: this is a derived cache (see :func:`converted_dir`).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from modeltel import _names as n
from modeltel._export.records import COLUMNS, expand_columns
from modeltel._gc import gc_paused
from modeltel._outcomes import EVENT_OUTCOME
from modeltel.loop._values import (
    first_values,
    json_nanos,
    json_number,
    json_text,
    nanos,
    number,
    record_time,
    text,
)

__all__ = [
    "EVENTS",
    "convert_all",
    "convert_range",
    "cpu_count",
    "line_ranges",
    "part_files",
    "skipped_lines",
]

EVENT_PREDICTIONS: Final = n.EVENT_RECORDS
EVENTS: Final = frozenset({EVENT_PREDICTIONS, n.EVENT_FEATURES, EVENT_OUTCOME})
_NUMBERS: Final = frozenset({"score", "duration_s", "cost"})
_BATCH_ROWS: Final = 262_144
# Dictionary encoding pays off for these; on the unique ids it only costs time.
_REPEATED: Final = ("model", "version", "tenant", "decision", "outcome")
_SCHEMA: Final = pa.schema(
    [
        *((name, pa.string()) for name in ("model", "version", "prediction_id", "payload_hash", "tenant")),
        ("score", pa.float64()),
        ("decision", pa.string()),
        ("outcome", pa.string()),
        ("time_unix_nano", pa.int64()),
        ("duration_s", pa.float64()),
        ("cost", pa.float64()),
    ]
)


def line_ranges(path: Path, size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """``[start, end)`` byte ranges of about ``chunk_bytes`` covering ``size`` bytes, cut after a newline."""
    cuts = [0]
    with path.open("rb") as handle:
        while cuts[-1] + chunk_bytes < size:
            handle.seek(cuts[-1] + chunk_bytes)
            handle.readline()
            cuts.append(min(handle.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def convert_range(path: str, start: int, end: int, out: str, part: int) -> None:
    """Convert the lines in ``path[start:end)`` into ``out``'s part files number ``part``."""
    with gc_paused():  # millions of acyclic dicts per range: cyclic collections would only rescan them
        _convert_range(path, start, end, Path(out), part)


def _convert_range(path: str, start: int, end: int, out: Path, part: int) -> None:
    rows, writer, skipped = _Rows(), None, 0
    tables, other_path = out / f"predictions-{part:05d}.parquet", out / f"other-{part:05d}.jsonl"
    with other_path.open("wb") as other:
        for line in _lines(path, start, end):
            kept = _split_line(line, rows)
            if kept is None:
                skipped += 1
            elif kept:
                other.write(orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": kept}]}]}) + b"\n")
            if rows.count >= _BATCH_ROWS:
                writer = _write(writer, tables, rows.take())
    if rows.count:
        writer = _write(writer, tables, rows.take())
    if writer is not None:
        writer.close()
    if not other_path.stat().st_size:
        other_path.unlink()
    if skipped:
        (out / f"skipped-{part:05d}.json").write_bytes(orjson.dumps({Path(path).name: skipped}))


def skipped_lines(outputs: Sequence[Path]) -> dict[str, int]:
    """Lines the conversions into ``outputs`` skipped as not JSON, per logs file name."""
    found: dict[str, int] = {}
    for out in outputs:
        for part in sorted(out.glob("skipped-*.json")):
            for name, count in orjson.loads(part.read_bytes()).items():
                found[name] = found.get(name, 0) + int(count)
    return found


def _lines(path: str, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb", buffering=1 << 20) as handle:
        handle.seek(start)
        offset = start
        while offset < end:
            line = handle.readline()
            if not line:
                return
            if line.strip():
                yield line
            offset += len(line)


def _split_line(line: bytes, rows: _Rows) -> list[dict[str, Any]] | None:
    """Add the line's prediction rows to ``rows``; return the records for the SQL path (None:
    the line is not JSON, and adds nothing)."""
    try:
        request = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    kept: list[dict[str, Any]] = []
    for record in _records(request):
        event = record.get("eventName") or _event_attribute(record)
        if event and "eventName" not in record:
            record["eventName"] = event  # older SDKs and Collectors: the name is an attribute
        if event == EVENT_PREDICTIONS:
            rows.add(record)
            kept.append({k: v for k, v in record.items() if k != "body"})
        elif event in EVENTS:
            kept.append(record)
    return kept


def _event_attribute(record: dict[str, Any]) -> str | None:
    """The ``event.name`` attribute's text, where the record carries its name that way."""
    for attribute in record.get("attributes") or ():
        if attribute.get("key") == "event.name":
            value = attribute.get("value") or {}
            return value.get("stringValue") if isinstance(value, dict) else None
    return None


def _records(request: Any) -> Iterator[dict[str, Any]]:
    for resource in _list(request, "resourceLogs"):
        for scope in _list(resource, "scopeLogs"):
            for record in _list(scope, "logRecords"):
                if isinstance(record, dict):
                    yield record


def _list(node: Any, key: str) -> list[Any]:
    found = node.get(key) if isinstance(node, dict) else None
    return found if isinstance(found, list) else []


class _Rows:
    """Prediction rows collected as Arrow arrays per record, unnested as the SQL path would."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in _SCHEMA.names}
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        body = record.get("body")
        json_body = body.get("stringValue") if isinstance(body, dict) else None
        if isinstance(json_body, str):
            self._add_columns(record, _json_columns(json_body), _json_column)
            return
        kvlist = body.get("kvlistValue") if isinstance(body, dict) else None
        arrays = {key: _array(value) for key, value in first_values(_list(kvlist, "values")).items()}
        self._add_columns(record, arrays, _column)

    def _add_columns(
        self,
        record: dict[str, Any],
        arrays: dict[str, list[Any]],
        convert: Callable[[str, list[Any], int], Any],
    ) -> None:
        size = max((len(arrays.get(name, ())) for name in COLUMNS), default=0)
        if not size:
            return
        attributes = first_values(record.get("attributes"))
        for key, name in (("ml.model.name", "model"), ("ml.model.version", "version")):
            self.columns[name].append(pa.array([text(attributes.get(key))] * size, type=pa.string()))
        ts = record_time(record)
        for name in COLUMNS:
            values = arrays.get(name, [])
            # The SQL path's unnest pads short columns with NULL (the record's time for the time).
            self.columns[name].append(convert(name, values, ts))
            if len(values) < size:
                padding = [ts if name == "time_unix_nano" else None] * (size - len(values))
                self.columns[name].append(pa.array(padding, type=_SCHEMA.field(name).type))
        self.count += size

    def take(self) -> Any:
        """The rows so far as a table; start afresh."""
        table = pa.table(
            {
                name: pa.chunked_array(chunks, type=_SCHEMA.field(name).type)
                for name, chunks in self.columns.items()
            }
        )
        self.columns = {name: [] for name in self.columns}
        self.count = 0
        return table


def _array(value: Any) -> list[Any]:
    array = value.get("arrayValue") if isinstance(value, dict) else None
    return _list(array, "values")


def _column(name: str, values: list[Any], ts: int) -> Any:
    # The shape the SDK writes, converted by Arrow in one call per column; anything else (an
    # unscored row's empty AnyValue, "NaN" strings, other types) takes the general path.
    kind = _SCHEMA.field(name).type
    try:
        if name == "time_unix_nano":
            exact = pa.array(list(map(itemgetter("intValue"), values)), type=pa.string()).cast(pa.int64())
            return pc.fill_null(exact, ts) if exact.null_count else exact
        key = "doubleValue" if name in _NUMBERS else "stringValue"
        return pa.array(list(map(itemgetter(key), values)), type=kind)
    except (KeyError, TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    if name == "time_unix_nano":
        return pa.array([ts if (t := nanos(v)) is None else t for v in values], type=kind)
    general = number if name in _NUMBERS else text
    return pa.array([general(v) for v in values], type=kind)


def _json_columns(body: str) -> dict[str, list[Any]]:
    """A JSON text body's columns (``json_transform`` in the SQL path): none when the text is not
    a JSON object; shared values repeated and a batch call's row ids made (``expand_columns``)."""
    try:
        found = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(found, dict):
        return {}
    return expand_columns(found)


def _json_column(name: str, values: list[Any], ts: int) -> Any:
    # What modeltel writes (text, numbers, integer times, nulls) converted by Arrow in one call;
    # anything else takes the general path, with the rules of the SQL macros.
    kind = _SCHEMA.field(name).type
    try:
        if name == "time_unix_nano":
            exact = pa.array(values)  # inferred: int64 only when every value is an integer or null
            if pa.types.is_int64(exact.type) or pa.types.is_null(exact.type):
                exact = exact.cast(pa.int64())
                return pc.fill_null(exact, ts) if exact.null_count else exact
        else:
            return pa.array(values, type=kind)  # numbers: a boolean is 1/0, as in mt_jnum
    except (TypeError, ValueError, OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    if name == "time_unix_nano":
        return pa.array([ts if (t := json_nanos(v)) is None else t for v in values], type=kind)
    general = json_number if name in _NUMBERS else json_text
    return pa.array([general(v) for v in values], type=kind)


def _write(writer: Any, path: Path, table: Any) -> Any:
    if writer is None:
        writer = pq.ParquetWriter(path, _SCHEMA, compression="zstd", use_dictionary=list(_REPEATED))
    writer.write_table(table)
    return writer


def part_files(out: Path) -> tuple[list[Path], list[Path]]:
    """The Parquet and JSONL parts in ``out``, in file order."""
    return sorted(out.glob("predictions-*.parquet")), sorted(out.glob("other-*.jsonl"))


def convert_all(jobs: Sequence[tuple[str, int, int, str, int]], workers: int) -> None:
    """Run ``convert_range`` over ``jobs``, in ``workers`` Python processes when there are several."""
    if workers <= 1 or len(jobs) <= 1 or not sys.executable:
        for job in jobs:
            convert_range(*job)
        return
    # Fresh interpreters rather than multiprocessing: fork would copy DuckDB's threads, and spawn
    # re-imports the caller's main module, which breaks scripts without a __main__ guard.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    command = [sys.executable, "-m", "modeltel.loop._convert"]
    groups = [jobs[i::workers] for i in range(min(workers, len(jobs)))]
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in groups
    ]
    for child, group in zip(children, groups, strict=True):
        assert child.stdin is not None
        child.stdin.write(orjson.dumps(group))
        child.stdin.close()
    failures = [_failure(child) for child in children]
    if any(failures):
        raise ValueError("; ".join(f for f in failures if f))


def _failure(child: subprocess.Popen[bytes]) -> str:
    assert child.stderr is not None
    with child.stderr:
        error = child.stderr.read().decode(errors="replace").strip()
    return (error.splitlines() or ["conversion failed"])[-1] if child.wait() else ""


def cpu_count() -> int:
    """CPUs this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def main() -> None:
    """Worker: convert the jobs (a JSON list of ``convert_range`` arguments) read from stdin."""
    for job in orjson.loads(sys.stdin.buffer.read()):
        convert_range(*job)


if __name__ == "__main__":
    main()
