"""What an OpenTelemetry Collector writes, read as the OTLP-JSON lines the loader takes.

A telemetry folder may hold, besides modeltel's own ``logs*.jsonl``, anything the Collector's
exporters wrote, at any depth (the S3 exporter's ``year=/month=/day=/hour=/minute=`` folders):

* the file exporter, ``format: json``: one OTLP-JSON request per line, rotated files named
  ``<name>-<timestamp>.<ext>`` beside the current one. Read by DuckDB as they are;
* the file exporter, ``format: proto``, or ``compression: zstd``: each request preceded by its
  length (4 bytes, big-endian), compressed one by one with zstd where configured; with the native
  compression gate, one zstd stream around JSON lines or length-prefixed requests;
* the S3 exporter: one request per object, ``otlp_json`` or ``otlp_proto`` (raw protobuf), gzip
  compressed or not.

Everything that is not plain JSON lines is decoded here (opentelemetry-proto for protobuf) and
written as JSON lines into a temporary folder for the loader. Requests that hold no log records
(traces, metrics) are skipped. Files are recognised by their content; only which signal a
protobuf file holds cannot be read from its bytes, and is taken from its name as the exporters
write it (``traces``/``spans``, ``metrics``, anything else logs). :func:`read_collected` reads
every signal (for ``modeltel summary`` and ``replay``).

Partition pruning: given an instant window ``[since, until)`` (``--since``, ``--as-of``), a file
under ``year=/month=/day=/hour=/minute=`` folders is not read when its partition (the time the
Collector wrote it) ends more than :data:`EXPORT_SLACK` before ``since`` or starts
:data:`EXPORT_SLACK` or more after ``until``: the slack covers the Collector's batching, so a
record made inside the window is never pruned for having been exported a little later.
"""

from __future__ import annotations

import calendar
import gzip
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

__all__ = ["EXPORT_SLACK", "Window", "outside_window", "partition_span", "read_collected", "telemetry_files"]

Window = tuple[int | None, int | None]
EXPORT_SLACK: Final = 3_600 * 1_000_000_000  # one hour, in ns
_PARTITION: Final = re.compile(r"(year|month|day|hour|minute)=(\d+)")
_FIELDS: Final = ("year", "month", "day", "hour", "minute")

_GZIP: Final = b"\x1f\x8b"
_ZSTD: Final = b"\x28\xb5\x2f\xfd"
_SKIP_PARTS: Final = frozenset({".modeltel-cache", "__pycache__"})
_NOT_LOGS: Final = (".parquet", ".html", ".csv", ".py")


@contextmanager
def telemetry_files(folder: Path, window: Window = (None, None)) -> Iterator[list[Path]]:
    """The OTLP-JSON lines files holding ``folder``'s log records: modeltel's own, the Collector's
    JSON lines as they are, and the rest decoded into a temporary folder (removed on exit);
    partitions outside ``window`` (Unix ns, either end open) are not read."""
    found = sorted(folder.glob("logs*.jsonl"))
    mine = set(found)
    with tempfile.TemporaryDirectory(prefix="modeltel-collector-") as scratch:
        for index, path in enumerate(_candidates(folder, mine, window)):
            kind = _sniff(path)
            if kind == "resourceLogs":
                found.append(path)
            elif kind == "binary" and _signal_of(path) == "logs":
                decoded = Path(scratch) / f"logs-{index}.jsonl"
                if _decode_to(path, decoded):
                    found.append(decoded)
        yield found


def partition_span(relative: str) -> tuple[int, int] | None:
    """The instants ``[start, end)`` (Unix ns, UTC) of the partition a relative path lies in, from
    its ``year=/month=/day=/hour=/minute=`` folders; None outside any."""
    found = dict(_PARTITION.findall(relative))
    depth = 0
    while depth < len(_FIELDS) and _FIELDS[depth] in found:
        depth += 1
    if depth == 0:
        return None
    parts = [int(found[f]) for f in _FIELDS[:depth]] + [1, 1, 0, 0][depth - 1 :]
    year, month, day, hour, minute = parts
    start = calendar.timegm((year, month, day, hour, minute, 0))
    if depth == 1:
        end = calendar.timegm((year + 1, 1, 1, 0, 0, 0))
    elif depth == 2:
        end = calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0))
    else:
        end = start + (86_400, 3_600, 60)[depth - 3]
    return start * 1_000_000_000, end * 1_000_000_000


def outside_window(relative: str, window: Window) -> bool:
    """Whether folder ``relative`` is a partition that cannot hold records of ``window``."""
    span, (since, until) = partition_span(relative), window
    if span is None:
        return False
    start, end = span
    return (since is not None and end + EXPORT_SLACK <= since) or (
        until is not None and start >= until + EXPORT_SLACK
    )


def _candidates(folder: Path, mine: set[Path], window: Window) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if not path.is_file() or path in mine or _SKIP_PARTS.intersection(relative):
            continue
        if outside_window("/".join(relative[:-1]), window):
            continue
        if path.name.startswith(("traces", "metrics")) and path.suffix == ".jsonl":
            continue  # modeltel's own span and metric files: no log records
        if path.name.startswith(".") or path.suffix in _NOT_LOGS:
            continue
        yield path


_KEYS: Final = ("resourceLogs", "resourceSpans", "resourceMetrics")


def _sniff(path: Path) -> str | None:
    """For OTLP-JSON lines, the first line's signal key (``resourceLogs``...); ``binary`` for
    anything to decode; None for other text."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        return None
    if head.lstrip()[:1] == b"{":
        first = head.split(b"\n", 1)[0]
        return next((key for key in _KEYS if f'"{key}"'.encode() in first), None)
    return "binary"


def _signal_of(path: Path) -> str:
    """Which signal a protobuf file holds, from its name (S3: ``traces_<id>.binpb``)."""
    name = path.name.lower()
    if "trace" in name or "span" in name:
        return "traces"
    return "metrics" if "metric" in name else "logs"


def _decode_to(path: Path, out: Path) -> bool:
    """Decode ``path`` into JSON lines at ``out``; whether any request held log records."""
    wrote = False
    try:
        data = _decompressed(path.read_bytes())
        with out.open("wb") as sink:
            for request in _requests(data):
                if request.get("resourceLogs"):
                    sink.write(orjson.dumps(request) + b"\n")
                    wrote = True
    except (ValueError, OSError, EOFError, DecodeError):
        return wrote  # not telemetry we can read (or truncated): what was read before stays
    return wrote


def _decompressed(data: bytes) -> bytes:
    if data[:2] == _GZIP:
        return _decompressed(gzip.decompress(data))
    if data[:4] == _ZSTD:
        return _zstd(data)
    return data


def _zstd(data: bytes) -> bytes:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - the loop extra installs it
        raise ValueError("zstd-compressed telemetry needs the zstandard package (modeltel[loop])") from exc
    reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
    return bytes(reader.read())


def _requests(data: bytes, signal: str = "logs") -> Iterator[dict[str, Any]]:
    """OTLP requests as OTLP-JSON dicts: JSON lines, one raw protobuf request (the S3 exporter's
    ``otlp_proto``), or length-prefixed requests (the file exporter), each maybe zstd-compressed;
    protobuf read as requests of ``signal``."""
    if data.lstrip()[:1] == b"{":
        for line in data.splitlines():
            if line.strip():
                yield orjson.loads(line)
        return
    if data[:1] == b"\x0a":  # field 1 (resource_logs/spans/metrics), length-delimited: a bare request
        yield _from_proto(data, signal)
        return
    offset = 0
    while offset + 4 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        payload = data[offset + 4 : offset + 4 + size]
        if len(payload) < size:
            raise EOFError("a truncated request at the end of the file")
        offset += 4 + size
        yield from _requests(_decompressed(payload), signal)


def _request_types() -> dict[str, Any]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return {
        "logs": ExportLogsServiceRequest,
        "traces": ExportTraceServiceRequest,
        "metrics": ExportMetricsServiceRequest,
    }


def _from_proto(data: bytes, signal: str) -> dict[str, Any]:
    from modeltel._export.otlp_json import to_otlp_json

    return to_otlp_json(_request_types()[signal].FromString(data))


def read_collected(folder: Path) -> Any:
    """Every span, metric point and log record in ``folder`` as flat records (an ``OtlpFiles``):
    modeltel's own files and everything a Collector wrote there; unreadable requests counted
    in ``bad_lines``."""
    from modeltel._export.otlp_flat import flat_logs, flat_metrics, flat_spans
    from modeltel._export.otlp_json import LOGS_FILE, from_otlp_json, read_otlp_json

    found = read_otlp_json(folder)
    types = _request_types()
    readers = {
        "resourceLogs": ("logs", types["logs"], flat_logs),
        "resourceSpans": ("spans", types["traces"], flat_spans),
        "resourceMetrics": ("metrics", types["metrics"], flat_metrics),
    }
    for path in _candidates(folder, {folder / LOGS_FILE}, (None, None)):
        if _sniff(path) is None:
            continue
        try:
            requests = list(_requests(_decompressed(path.read_bytes()), _signal_of(path)))
        except (ValueError, OSError, EOFError, DecodeError):
            found.bad_lines += 1
            continue
        for request in requests:
            key = next((k for k in _KEYS if request.get(k)), None)
            if key is not None:
                field, message_type, flatten = readers[key]
                getattr(found, field).extend(flatten(from_otlp_json(request, message_type)))
    return found
