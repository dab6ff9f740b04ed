"""``record_outcome``: a label for an earlier prediction, sent through the same OTel pipeline.

An outcome is an OTel log record with event name ``ml.outcome``. It names the prediction it
labels by prediction id and/or payload hash, so any process (a chargeback handler, a nightly
job) can report it days later; ``modeltel evaluate`` joins it to the prediction records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

from opentelemetry._logs import SeverityNumber

from modeltel import _names as n
from modeltel._export.guarded import export_failures
from modeltel._export.runtime import get_runtime
from modeltel._internal import handle_internal_errors

__all__ = ["EVENT_OUTCOME", "OUTCOME_LABEL", "record_outcome", "record_outcomes"]

EVENT_OUTCOME: Final = n.EVENT_OUTCOME
OUTCOME_LABEL: Final = "ml.outcome.label"


def record_outcome(
    prediction_id: str | None = None,
    *,
    payload_hash: str | None = None,
    label: Any,
    at: datetime | float | None = None,
    model: str | None = None,
) -> None:
    """Record the observed outcome (``label``) of an earlier prediction.

    ``prediction_id`` and/or ``payload_hash`` identify the prediction; a call with neither is a
    ``ValueError``. ``label`` is a number, bool or string; ``at`` is when the outcome became
    known (a ``datetime``, naive meaning UTC, or Unix seconds; default now). ``model`` limits
    a payload-hash outcome to that model. Telemetry failures never raise into the caller.

    Outcomes are not dropped to make room: when the log queue is full the call waits, at most
    ``MODELTEL_OUTCOME_WAIT`` seconds, for the exporter to take a batch; an outcome that still
    finds no room is counted in ``modeltel.export.failures{signal="logs"}``. Many outcomes at
    once: :func:`record_outcomes`.

    >>> modeltel.record_outcome(prediction_id, label=1, at=chargeback_time)  # doctest: +SKIP
    """
    if prediction_id is None and payload_hash is None:
        raise ValueError("record_outcome needs a prediction_id or a payload_hash")
    with handle_internal_errors("record_outcome"):
        _emit(prediction_id, payload_hash, label, at, model)


def record_outcomes(outcomes: Iterable[Mapping[str, Any]]) -> int:
    """Record many outcomes, each a mapping of :func:`record_outcome`'s arguments; returns how
    many were recorded (the rest were counted as lost, see :func:`record_outcome`).

    Keys: ``label`` (required), ``prediction_id`` and/or ``payload_hash``, optional ``at`` and
    ``model``. An item without a label or an id, or with another key, is a ``ValueError`` naming
    its position; the items before it are recorded. ``outcomes`` is read once, lazily, so a
    generator over a large file or a query result works in constant memory.

    >>> modeltel.record_outcomes(labels.to_dict("records"))  # doctest: +SKIP
    >>> modeltel.record_outcomes({"prediction_id": p, "label": y} for p, y in rows)  # doctest: +SKIP
    """
    recorded = 0
    for index, outcome in enumerate(outcomes):
        args = _outcome_args(index, outcome)
        with handle_internal_errors("record_outcomes"):
            recorded += _emit(*args)
    return recorded


_KEYS: Final = ("prediction_id", "payload_hash", "label", "at", "model")


def _outcome_args(index: int, outcome: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``_emit`` arguments of one ``record_outcomes`` item, or a ValueError naming it."""
    if not isinstance(outcome, Mapping):
        raise ValueError(f"record_outcomes: item {index} is a {type(outcome).__name__}, not a mapping")
    unknown = sorted(str(k) for k in outcome if k not in _KEYS)
    if unknown:
        raise ValueError(
            f"record_outcomes: item {index} has unknown key(s) {', '.join(unknown)}; "
            f"expected {', '.join(_KEYS)}"
        )
    if "label" not in outcome:
        raise ValueError(f"record_outcomes: item {index} has no label")
    if outcome.get("prediction_id") is None and outcome.get("payload_hash") is None:
        raise ValueError(f"record_outcomes: item {index} needs a prediction_id or a payload_hash")
    return tuple(outcome.get(key) for key in _KEYS)


def _emit(
    prediction_id: str | None,
    payload_hash: str | None,
    label: Any,
    at: datetime | float | None,
    model: str | None,
) -> bool:
    """Emit one outcome record; False when the log queue had no room for it (counted)."""
    attributes: dict[str, Any] = {OUTCOME_LABEL: _label_value(label)}
    if prediction_id is not None:
        attributes[n.PREDICTION_ID] = str(prediction_id)
    if payload_hash is not None:
        attributes[n.PAYLOAD_HASH] = str(payload_hash)
    if model is not None:
        attributes[n.MODEL_NAME] = str(model)
    timestamp = _to_unix_nano(at)
    runtime = get_runtime()
    room = runtime.log_room
    if room is not None and not room.wait_for_room(runtime.settings.outcome_wait_s):
        export_failures.add("logs")
        return False
    runtime.otel_logger.emit(
        event_name=EVENT_OUTCOME,
        timestamp=timestamp,
        attributes=attributes,
        severity_number=SeverityNumber.INFO,
    )
    return True


def _label_value(label: Any) -> bool | int | float | str:
    if isinstance(label, (bool, str)):
        return label
    if isinstance(label, int):
        return int(label)
    try:
        number = float(label)
    except (TypeError, ValueError):
        return str(label)
    # Integral floats (numpy ints, 1.0) travel as ints so labels compare equal across sources.
    return int(number) if number.is_integer() else number


def _to_unix_nano(at: datetime | float | None) -> int:
    if at is None:
        return int(datetime.now(timezone.utc).timestamp() * 1_000_000_000)
    if isinstance(at, datetime):
        aware = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
        return int(aware.timestamp() * 1_000_000) * 1000
    seconds = float(at)
    if not math.isfinite(seconds):
        raise ValueError(f"record_outcome: at must be finite, got {at!r}")
    return int(seconds * 1_000_000) * 1000
