"""OTLP protobuf for a batch of LeanSpans, written directly: ~4 us a span against the SDK encoder's ~37.

:func:`encode` writes an ``ExportTraceServiceRequest`` as bytes, field by field (the protobuf
wire format is a few tag bytes, lengths as varints and little-endian numbers). What is the same
for every span is encoded once: the resource and scope, a model's constant attributes, the name.
A span with what a prediction span rarely has (events, links, an attribute value of another
type) is encoded by the SDK's own encoder and spliced in, so every span is encoded, either way,
as the SDK would; ``test_lean_spans`` decodes both and compares them on the oldest and newest SDK.

The OTLP exporters offer no public way to send a request encoded elsewhere, yet their transport
(retries, TLS, headers, compression) is exactly what modeltel wants to keep. Their ``export``
calls their module's ``encode_spans`` on the batch it is given, on every supported version; for
an :class:`EncodedSpans` batch, :func:`accept_encoded` makes that call return the request built
here, and passes every other batch to the SDK encoder untouched. That reliance lives here only.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from modeltel._lean_span import LeanSpan

_pack_double = struct.Struct("<d").pack
_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_SMALL = [bytes((i,)) for i in range(128)]
_STATUS_TAG = b"\x7a"  # field 15, length-delimited
# flags (field 16, fixed32): the context's is-remote bit is known; a LeanSpan's parent is
# either local or a remote context (SpanFlags 0x100 | 0x200).
_FLAGS_LOCAL = b"\x85\x01" + _pack_fixed32(0x100)
_FLAGS_REMOTE = b"\x85\x01" + _pack_fixed32(0x300)
_KIND_INTERNAL = b"\x30\x01"


def varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _SMALL[n]
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, body: bytes) -> bytes:
    return tag + varint(len(body)) + body


class _Unsupported(Exception):
    """A value this encoder leaves to the SDK's."""


def any_value(value: Any) -> bytes:
    """An ``AnyValue`` message: its one field set (a oneof, so written even when zero)."""
    kind = type(value)
    if kind is str:
        return _field(b"\x0a", value.encode("utf-8", "surrogatepass"))
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        return b"\x18" + varint(value)
    if kind is float:
        return b"\x21" + _pack_double(value)
    if kind is tuple or kind is list:
        return _field(b"\x2a", b"".join([_field(b"\x0a", any_value(v)) for v in value]))
    raise _Unsupported(kind.__name__)


class _Key:
    """One attribute key's encodings: the key field, and whole entries for values of fixed size."""

    __slots__ = ("double", "false", "key", "true")

    def __init__(self, key: str) -> None:
        self.key = _field(b"\x0a", key.encode("utf-8", "surrogatepass"))
        self.double = self._entry(b"\x21" + bytes(8))[:-8]  # + the 8 bytes of the value
        self.true = self._entry(b"\x10\x01")
        self.false = self._entry(b"\x10\x00")

    def _entry(self, value: bytes) -> bytes:
        return _field(b"\x4a", self.key + _field(b"\x12", value))


_MAX_CACHED = 4096  # attribute keys and span names whose encodings are kept
_keys: dict[str, _Key] = {}


def attributes(items: Iterable[tuple[str, Any]]) -> bytes:
    """Span ``attributes`` entries (field 9): one ``KeyValue`` each."""
    out: list[bytes] = []
    append = out.append
    for key, value in items:
        enc = _keys.get(key)
        if enc is None:
            enc = _Key(key)
            if len(_keys) < _MAX_CACHED:  # keys an application makes up per call must not grow it
                _keys[key] = enc
        kind = type(value)
        if kind is str:
            data = value.encode("utf-8", "surrogatepass")
            size = len(data)
            total = len(enc.key) + size + 4
            if total < 0x80:  # every length fits one byte: the usual case, written in one step
                append(b"\x4a%c%b\x12%c\x0a%c%b" % (total, enc.key, size + 2, size, data))
            else:
                append(_field(b"\x4a", enc.key + _field(b"\x12", _field(b"\x0a", data))))
        elif kind is float:
            append(enc.double + _pack_double(value))
        elif kind is bool:
            append(enc.true if value else enc.false)
        else:
            append(_field(b"\x4a", enc.key + _field(b"\x12", any_value(value))))
    return b"".join(out)


_names: dict[str, bytes] = {}


def _name(name: str) -> bytes:
    found = _names.get(name)
    if found is None:
        found = _field(b"\x2a", name.encode("utf-8"))
        if len(_names) < _MAX_CACHED:
            _names[name] = found
    return found


def _const(span: LeanSpan) -> bytes:
    const = span.const
    found = const.encoded
    if found is None:
        found = const.encoded = attributes(const.items())
    return found


def span_bytes(span: LeanSpan) -> bytes:
    """One ``Span`` message."""
    if span._events or span._links or span.overrides:
        return _sdk_span_bytes(span)
    try:
        own = attributes(span.own.items())
    except _Unsupported:
        return _sdk_span_bytes(span)
    ctx = span._context
    parts = [
        b"\x0a\x10",
        ctx.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        ctx.span_id.to_bytes(8, "big"),
    ]
    state = ctx.trace_state
    if state:
        parts.append(_field(b"\x1a", ",".join(f"{k}={v}" for k, v in state.items()).encode()))
    parent = span._parent
    if parent is not None:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    end = span._end_time or 0
    parts += (
        _name(span._name),
        _KIND_INTERNAL,
        b"\x39",
        _pack_fixed64(span._start_time),
        b"\x41",
        _pack_fixed64(end),
        _const(span),
        own,
        _status(span),
        _FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL,
    )
    if span.dropped_user_attributes:
        parts.append(b"\x50" + varint(span.dropped_user_attributes))
    return b"".join(parts)


def _status(span: LeanSpan) -> bytes:
    status = span._status
    code = status.status_code.value
    if not code:
        return b"\x7a\x00"
    body = b"\x18" + varint(code)
    if status.description:
        body = _field(b"\x12", status.description.encode("utf-8", "surrogatepass")) + body
    return _field(_STATUS_TAG, body)


def _sdk_span_bytes(span: LeanSpan) -> bytes:
    request = encode_spans([span])
    return bytes(request.resource_spans[0].scope_spans[0].spans[0].SerializeToString())


def _scope_opening(spans: Sequence[LeanSpan]) -> tuple[bytes, bytes]:
    """The encoded Resource and InstrumentationScope of ``spans`` (all of one provider), by the
    SDK's encoder from a request of one span: encoded the same way as the SDK's own spans."""
    request = encode_spans([spans[0]])
    resource_spans = request.resource_spans[0]
    scope_spans = resource_spans.scope_spans[0]
    resource = _field(b"\x0a", resource_spans.resource.SerializeToString())
    if resource_spans.schema_url:
        resource += _field(b"\x1a", resource_spans.schema_url.encode())
    scope = _field(b"\x0a", scope_spans.scope.SerializeToString())
    if scope_spans.schema_url:
        scope += _field(b"\x1a", scope_spans.schema_url.encode())
    return resource, scope


def encode(spans: Sequence[LeanSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` holding ``spans`` (all made by one :class:`LeanSpans`)."""
    if not spans:
        return b""
    owner = spans[0].owner
    opening = owner.encoded_opening  # kept on the owner: a rebuilt runtime has a resource of its own
    if opening is None:
        opening = owner.encoded_opening = _scope_opening(spans)
    resource, scope = opening
    body = b"".join([_field(b"\x12", span_bytes(s)) for s in spans])
    scope_spans = _field(b"\x12", scope + body)
    return _field(b"\x0a", resource + scope_spans)


class EncodedSpans(list[LeanSpan]):
    """A batch of LeanSpans with its ``ExportTraceServiceRequest`` already encoded (``data``)."""

    data: bytes

    @classmethod
    def of(cls, spans: Sequence[LeanSpan]) -> EncodedSpans:
        batch = cls(spans)
        batch.data = encode(spans)
        return batch

    def request(self) -> ExportTraceServiceRequest:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(self.data)
        return request


class _Serialized:
    """What the OTLP/HTTP exporter does with ``encode_spans``'s result: serialize it."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializePartialToString(self) -> bytes:
        return self.data

    SerializeToString = SerializePartialToString


def _pass_encoded(original: Callable[[Sequence[Any]], Any], message: bool) -> Callable[[Sequence[Any]], Any]:
    """``original``, except that an EncodedSpans batch gives its own request: as bytes to be
    returned by ``SerializePartialToString`` (OTLP/HTTP) or parsed (OTLP/gRPC's stub wants a message)."""

    def encode_spans(sdk_spans: Sequence[Any]) -> Any:
        if type(sdk_spans) is EncodedSpans:
            return sdk_spans.request() if message else _Serialized(sdk_spans.data)
        return original(sdk_spans)

    encode_spans.modeltel_original = original  # type: ignore[attr-defined]
    return encode_spans


# The OTLP exporters whose ``export`` encodes through their module's ``encode_spans``.
_OTLP_SPAN_EXPORTERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)


def accept_encoded(exporter: object) -> bool:
    """Whether ``exporter`` sends an :class:`EncodedSpans` batch's own request: modeltel's file
    exporter does, the SDK's OTLP span exporters do once their module passes such a batch through
    (done here, once per module). Others are given the spans to encode as they do."""
    if getattr(exporter, "accepts_encoded_spans", False):
        return True
    name = type(exporter).__module__
    if name not in _OTLP_SPAN_EXPORTERS or type(exporter).__name__ != "OTLPSpanExporter":
        return False
    module = sys.modules.get(name)
    current = getattr(module, "encode_spans", None)
    if current is None:
        return False
    if not hasattr(current, "modeltel_original"):
        module.encode_spans = _pass_encoded(current, message="grpc" in name)  # type: ignore[union-attr]
    return True


def lean_and_other(batch: Sequence[Any]) -> tuple[list[LeanSpan], list[Any]]:
    """``batch`` split into LeanSpans and the rest, each in order."""
    lean = [s for s in batch if type(s) is LeanSpan]
    if not lean:
        return lean, list(batch)
    if len(lean) == len(batch):
        return lean, []
    return lean, [s for s in batch if type(s) is not LeanSpan]
