"""Predict's exception on its span: text bounded in size, sensitive feature values redacted.

The span gets an ``exception`` event (``exception.type``, ``exception.message``,
``exception.stacktrace``, ``exception.escaped``, as OTel's semantic conventions name them) and
status ERROR with ``"<type>: <message>"``. Before any of that text leaves the process:

* every occurrence of a sensitive feature's value in this call's payload (a feature the
  contract marks ``sensitive()`` or one named in ``sensitive=``) is replaced by
  :data:`REDACTED`: the value's ``str()`` and ``repr()`` forms, and those of each item of a
  list or mapping value. When the values cannot be read, the text is withheld altogether;
* the message keeps at most :data:`MAX_EXCEPTION_MESSAGE_CHARS` characters and the stack trace
  :data:`MAX_EXCEPTION_STACKTRACE_CHARS`: a longer text keeps its beginning and its end, with a
  marker giving the original length in between. The status description keeps
  :data:`MAX_STATUS_DESCRIPTION_CHARS`.

Only the telemetry copy changes: the caller gets the very exception object predict raised, its
message untouched. All of this runs only when predict raised and the span is recorded.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from opentelemetry.trace import Span, StatusCode

from modeltel._features import as_mapping
from modeltel._internal import report_internal_error

if TYPE_CHECKING:
    from modeltel._plan import Bound
    from modeltel._prediction import Prediction

# A message of a few KiB says what went wrong; a stack trace of 16 KiB holds some 50 frames. Far
# below the 4 MiB a collector takes per request, so one error cannot cost a batch of spans.
MAX_EXCEPTION_MESSAGE_CHARS: Final = 4096
MAX_EXCEPTION_STACKTRACE_CHARS: Final = 16384
MAX_STATUS_DESCRIPTION_CHARS: Final = 256
REDACTED: Final = "[REDACTED]"
WITHHELD: Final = "[withheld by modeltel: the sensitive feature values could not be read]"

EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
EXCEPTION_ESCAPED: Final = "exception.escaped"


def record_exception(b: Bound, p: Prediction, span: Span, exc: BaseException) -> None:
    """Add the ``exception`` event and status ERROR to ``span``, bounded and redacted."""
    attributes = exception_attributes(exc, _secrets_or_none(b, p))
    span.add_event("exception", attributes)
    span.set_status(StatusCode.ERROR, status_description(exc, attributes[EXCEPTION_MESSAGE]))


def exception_attributes(exc: BaseException, secrets: list[str] | None) -> dict[str, str]:
    """The event's attributes; ``secrets`` are the texts to redact, None to withhold all text."""
    if secrets is None:
        message = stacktrace = WITHHELD
    else:
        message = bounded(_message(exc), MAX_EXCEPTION_MESSAGE_CHARS, secrets)
        stacktrace = bounded(
            "".join(traceback.format_exception(exc)), MAX_EXCEPTION_STACKTRACE_CHARS, secrets
        )
    return {
        EXCEPTION_TYPE: _type_name(exc),
        EXCEPTION_MESSAGE: message,
        EXCEPTION_STACKTRACE: stacktrace,
        EXCEPTION_ESCAPED: str(True),  # predict's exception always reaches the caller
    }


def status_description(exc: BaseException, message: str) -> str:
    """``"<type>: <message>"`` cut to the status limit (``message`` already clean)."""
    return f"{type(exc).__name__}: {message}"[:MAX_STATUS_DESCRIPTION_CHARS]


def _type_name(exc: BaseException) -> str:
    """As the OTel SDK writes it: ``module.QualName``, builtins without a module."""
    module, name = type(exc).__module__, type(exc).__qualname__
    return f"{module}.{name}" if module and module != "builtins" else name


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__}: str() failed>"


# ---------------------------------------------------------------- bounding and redacting


def bounded(text: str, limit: int, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (longest first) replaced, in at most ``limit`` characters.

    A long text is redacted in two windows only, its head and its tail, each wider than what is
    kept by the longest secret: a secret cut by a window's edge lies in that margin, dropped.
    """
    pad = len(secrets[0]) if secrets else 0
    if len(text) <= limit + 2 * pad:
        clean = redact(text, secrets)
        return clean if len(clean) <= limit else _shortened(clean, clean, limit, len(text))
    head = redact(text[: limit + pad], secrets)
    tail = redact(text[-(limit + pad) :], secrets)
    return _shortened(head[: len(head) - pad], tail[pad:], limit, len(text))


def _shortened(head: str, tail: str, limit: int, original: int) -> str:
    """The start of ``head`` and the end of ``tail`` around a marker, ``limit`` characters in all."""
    marker = f"\n...[truncated by modeltel: {original} characters in all]...\n"
    room = max(limit - len(marker), 0)
    keep_head = room // 2
    keep_tail = room - keep_head
    return head[:keep_head] + marker + (tail[-keep_tail:] if keep_tail else "")


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of ``secrets`` (longest first) replaced by :data:`REDACTED`."""
    found = [s for s in secrets if s in text]
    if len(found) <= 1:  # the common case, without compiling a pattern
        return text.replace(found[0], REDACTED) if found else text
    return re.compile("|".join(map(re.escape, found))).sub(REDACTED, text)


# ---------------------------------------------------------------- the sensitive values


def _secrets_or_none(b: Bound, p: Prediction) -> list[str] | None:
    """The texts to redact, longest first; None when they cannot be read (then text is withheld)."""
    names = b.plan.sensitive
    if not names or p.features is None:
        return []
    try:
        values = _batch_values(b, p.features, names) if p.rows else _row_values(b, p.features, names)
        return secret_texts(values)
    except Exception as exc:  # a payload predict itself choked on: withhold rather than leak
        exc.__suppress_context__ = True  # its context is predict's exception: keep it out of the log
        report_internal_error("record.redact", exc)
        return None


def _row_values(b: Bound, features: Any, names: frozenset[str]) -> list[Any]:
    row = as_mapping(b, features)
    if isinstance(row, Mapping):
        return [row[k] for k in names if k in row]
    if isinstance(row, (str, bytes, list, tuple, np.ndarray)):  # no names to find a feature by
        return []
    return [getattr(row, k) for k in names if hasattr(row, k)]


def _batch_values(b: Bound, features: Any, names: frozenset[str]) -> list[Any]:
    """The sensitive columns' values over every row (a batch is redacted whole, not only sampled rows)."""
    from modeltel._batch import column_names, row_mapping

    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(features, pd.DataFrame):
        return [features[c].tolist() for c in features.columns if str(c) in names]
    if isinstance(features, np.ndarray):
        columns = column_names(b, features.shape[1])
        return [features[:, j].tolist() for j, name in enumerate(columns) if name in names]
    values: list[Any] = []
    for i in range(len(features)):
        values.extend(_row_values(b, row_mapping(b, features, i), names))
    return values


def secret_texts(values: Iterable[Any]) -> list[str]:
    """The distinct texts the sensitive ``values`` could appear as, longest first.

    A value's ``str()`` and ``repr()`` (a string's without its quotes), and the same for every
    item inside a list, tuple, set, array or mapping value. None and empty text are no secret.
    """
    found: set[str] = set()
    stack = list(values)
    seen: set[int] = set()
    while stack:
        value = stack.pop()
        if value is None:
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, (Mapping, list, tuple, set, frozenset)):
            if id(value) not in seen:  # a value that holds itself is walked once
                seen.add(id(value))
                stack.extend(value.values() if isinstance(value, Mapping) else value)
            continue
        if isinstance(value, str):
            found.update((value, repr(value)[1:-1]))
        else:
            found.update((str(value), repr(value)))
    found.discard("")
    return sorted(found, key=len, reverse=True)
