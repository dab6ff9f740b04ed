"""modeltel's own ``predict`` spans, where modeltel owns the TracerProvider: lean to make, cheap to encode.

The SDK's span costs ~25 us to start, fill and end (locks, bounded containers, limits, a sampler
call) and its OTLP encoder ~37 us more per span, while the whole rest of a prediction costs ~12.
A :class:`LeanSpan` is made in ~2 us and handed to the same batch processor the SDK's spans go
to; at export, ``_span_encoding`` writes OTLP protobuf for a batch of them directly.

A LeanSpan is both kinds of span the SDK knows:

* an API ``Span``: made current around predict, so the application's spans inside it are its
  children, and ``trace.get_current_span()`` there can add attributes and events to it;
* a ``ReadableSpan``: any span processor or exporter reads it as it reads the SDK's own.

It is used only while modeltel's batch processor is the provider's only one (an application
that adds processors to modeltel's provider gets the SDK's spans, with ``on_start``), and only
with samplers whose decision modeltel predicts (see ``_sampling``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

_logger = logging.getLogger("modeltel")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET_STATUS = Status(StatusCode.UNSET)


class ConstAttributes(dict[str, Any]):
    """The attributes every span of one decorated function carries; ``encoded`` caches their
    OTLP bytes (see ``_span_encoding``)."""

    encoded: bytes | None = None


class LeanSpan(trace.Span, ReadableSpan):
    """One ``predict`` span. Made by :meth:`LeanSpans.begin`, never by its constructor.

    ``const`` holds the model's attributes (shared by every span of one decorated function,
    cleaned once); ``own`` what this call adds. Class defaults stand for what a prediction span
    rarely has, so making one costs a handful of attribute stores.
    """

    _kind = SpanKind.INTERNAL
    _parent: SpanContext | None = None
    _end_time: int | None = None
    _status = _UNSET_STATUS
    _events: Sequence[Event] = ()
    _links: Sequence[Link] = ()
    _instrumentation_info = None
    dropped_user_attributes = 0
    overrides = False  # the application set a key of ``const``: ``own`` wins, encoded the slow way

    # Set per instance by ``begin``: (the names are ReadableSpan's, which reads them).
    _name: str
    _context: SpanContext
    _start_time: int
    _resource: Resource
    _instrumentation_scope: InstrumentationScope
    owner: LeanSpans
    const: ConstAttributes
    own: dict[str, Any]

    def __init__(self) -> None:  # pragma: no cover - made by object.__new__ in LeanSpans.begin
        raise TypeError("LeanSpan is made by LeanSpans.begin")

    # ReadableSpan reads ``self._attributes``: the merged view, made when someone asks.
    @property
    def _attributes(self) -> Mapping[str, Any]:  # type: ignore[override]
        return {**self.const, **self.own}

    @property
    def dropped_attributes(self) -> int:
        return self.dropped_user_attributes

    @property
    def dropped_events(self) -> int:
        return max(0, getattr(self, "_events_seen", 0) - len(self._events))

    @property
    def dropped_links(self) -> int:
        return 0

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        self.set_attributes({key: value})

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """What the application adds to the span, cleaned and bounded as the SDK would."""
        if self._end_time is not None:
            _logger.warning("Setting attribute on ended span.")
            return
        limits = self.owner.limits
        room = limits.max_span_attributes
        room = room - len(self.const) - len(self.own) if room is not None else None
        cleaned = BoundedAttributes(
            None, attributes, immutable=False, max_value_len=limits.max_attribute_length
        )
        for key, value in cleaned.items():
            if key in self.const:
                self.overrides = True
            if key in self.own or key in self.const or room is None or room > 0:
                self.own[key] = value
                if room is not None:
                    room -= 1
            else:
                self.dropped_user_attributes += 1

    def finish(self, attributes: dict[str, Any]) -> None:
        """modeltel's per-call attributes (already clean: strings, numbers, bools, tuples of strings).

        Where ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` leaves no room for all, the application's are
        dropped (the last set first), never modeltel's: the SDK would drop the oldest, the model's.
        """
        max_len = self.owner.limits.max_attribute_length
        if max_len is not None:
            attributes = dict(BoundedAttributes(None, attributes, max_value_len=max_len))
        if not self.own:
            self.own = attributes
            return
        own = self.own
        own.update(attributes)
        limit = self.owner.limits.max_span_attributes
        excess = 0 if limit is None else len(self.const) + len(own) - limit
        if excess > 0:
            for key in [k for k in reversed(own) if k not in attributes][:excess]:
                del own[key]
                self.dropped_user_attributes += 1

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self._end_time is not None:
            return
        limits = self.owner.limits
        event = Event(
            name,
            BoundedAttributes(
                limits.max_event_attributes,
                attributes,
                immutable=True,
                max_value_len=limits.max_attribute_length,
            ),
            timestamp,
        )
        events = self._events if isinstance(self._events, list) else []
        self._events_seen = getattr(self, "_events_seen", 0) + 1
        if limits.max_events is None or len(events) < limits.max_events:
            events.append(event)
        self._events = events

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._end_time is not None or not context.is_valid:
            return
        limits = self.owner.limits
        bounded = BoundedAttributes(
            limits.max_link_attributes, attributes, immutable=True, max_value_len=limits.max_attribute_length
        )
        links = self._links if isinstance(self._links, list) else []
        if limits.max_links is None or len(links) < limits.max_links:
            links.append(Link(context, bounded))
        self._links = links

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK's: OK is final, UNSET is ignored, a description goes with ERROR only."""
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    # The SDK's own: it builds the exception.* attributes and calls ``self.add_event``.
    record_exception = SdkSpan.record_exception

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            _logger.warning("Calling end() on an ended span.")
            return
        self._end_time = time_ns() if end_time is None else end_time
        self.owner.on_end(self)

    def __repr__(self) -> str:
        return f'LeanSpan(name="{self._name}", context={self._context})'


class LeanSpans:
    """Makes the LeanSpans of one TracerProvider, for the sampler modeltel built it with.

    ``begin(name, const)`` returns a started span, or None where the sampler drops
    the call; ``active()`` says whether lean spans may be used now (modeltel's processor is the
    provider's only one).
    """

    def __init__(
        self,
        resource: Resource,
        scope: InstrumentationScope,
        on_end: Callable[[LeanSpan], None],
        parent_based: bool,
        bound: int,
        processors: Callable[[], int],
    ) -> None:
        self.resource = resource
        self.scope = scope
        self.encoded_opening: tuple[bytes, bytes] | None = None  # see _export.span_encoding.encode
        self.on_end = on_end
        self.limits = SpanLimits()
        self._processors = processors
        self.begin = self._starter(parent_based, bound)

    def active(self) -> bool:
        return self._processors() == 1

    def constant(self, attributes: Mapping[str, Any]) -> ConstAttributes:
        """A decorated function's constant attributes, cleaned as the SDK cleans a span's."""
        limits = self.limits
        return ConstAttributes(
            BoundedAttributes(
                limits.max_span_attributes, attributes, max_value_len=limits.max_attribute_length
            )
        )

    def _starter(self, parent_based: bool, bound: int) -> Callable[[str, ConstAttributes], LeanSpan | None]:
        from modeltel._sampling import _current_span_getter, decide

        current_span = _current_span_getter()
        getrandbits = random.getrandbits
        new = object.__new__
        resource, scope = self.resource, self.scope
        empty_state = trace.DEFAULT_TRACE_STATE

        def begin(name: str, const: ConstAttributes) -> LeanSpan | None:
            kept = decide(current_span(), parent_based, bound, getrandbits)
            if kept is None:
                return None
            trace_id, parent = kept
            span: LeanSpan = new(LeanSpan)
            if parent is None:
                state = empty_state
                trace_id = trace_id or getrandbits(128) or 1
            else:
                state = parent.trace_state
                span._parent = parent
            span._context = SpanContext(trace_id, getrandbits(64) or 1, False, _SAMPLED, state)
            span._name = name
            span._start_time = time_ns()
            span._resource = resource
            span._instrumentation_scope = scope
            span.owner = self
            span.const = const
            span.own = {}
            return span

        return begin


def processor_count(provider: Any) -> Callable[[], int]:
    """How many span processors ``provider`` (an SDK TracerProvider) runs, read when asked.

    The SDK keeps them in its active processor's ``_span_processors`` tuple on every supported
    version; where that is not found, 0: lean spans are never used and the SDK's are.
    """
    active: Any = getattr(provider, "_active_span_processor", None)
    if not isinstance(getattr(active, "_span_processors", None), tuple):
        return lambda: 0

    def count() -> int:
        return len(active._span_processors)

    return count
