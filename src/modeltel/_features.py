"""Sampled full features, as OTel log records ``ml.features``; sensitive features never leave.

Two shapes; only a batch record has a ``"row"`` column:

* a single-row call: body ``{"features": {...}}``, the call's identity in the attributes
  (``ml.prediction.id``, ``ml.payload.hash``, ``ml.prediction.score``, ``ml.decision``,
  ``ml.contract.violations``);
* a batch call: ONE record for all its sampled rows, columnar like ``ml.prediction.records``,
  its body one JSON text (an OTLP string value, as the prediction records' body) holding
  ``{"features": {"<feature>": [value per row], ...}, "row": [...], "prediction_id":
  ["<call id>/<row>", ...], "payload_hash": [...], "score": [...]}`` plus ``"decision"`` when
  rows have their own and ``"violations"`` (per row, a list of ``feature:kind``) when the call
  broke the contract. A feature a row lacks is null; rows that are not mappings make
  ``"features"`` a list of per-row values instead. A score that was NaN or infinite is null,
  as a missing one (feature values that are not finite are the text ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"``). The attributes hold what the rows share (model, version, tenant, call id,
  outcome, decision, ``ml.batch.size``) and the distinct violations of the record's rows. A
  batch whose sampled features pass ``max_feature_bytes`` of JSON text is split over several
  records.

What a record may hold is bounded before it reaches the log pipeline, where one bad body would
fail the encoding (or a collector's decoding) of the whole export request and lose every record
sent with it. Values nest lists and maps at most ``MAX_DEPTH`` deep; a prediction with a deeper
one, or with more than ``max_feature_bytes`` of features, is left out alone and counted in
``modeltel.features.dropped`` (``reason`` ``too_deep`` / ``too_large``). Everything else is
written so any OTLP encoder takes it: NaN and infinities as text, integers past 64 bits as floats
(``"Infinity"``/``"-Infinity"`` past a float's range), bytes as hex, keys and other objects as
their text, lone surrogates as their escape text. ``ml.features.sampled`` counts the predictions
whose features were emitted, not those chosen: a dropped one is counted only as dropped.

With a contract, a feature it does not declare is logged as ``undeclared_features`` says:
``drop`` (the default: left out), ``hash`` (its value replaced by the 16-hex-char hash
:func:`modeltel.payload_hash` gives that value) or ``keep`` (as given). Without a contract every
feature is logged.

Readers go through :func:`feature_rows`, which yields one sampled prediction at a time whatever
the shape: it also reads the batch body as an OTLP map (written before it became JSON text)
and the per-row records older versions still wrote for batches (``ml.batch.row``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from opentelemetry._logs import SeverityNumber

from modeltel import _names as n
from modeltel._export.records import decoded_body
from modeltel._hashing import RECIPE, normalize, utf8_text

if TYPE_CHECKING:
    from modeltel._plan import Bound
    from modeltel._prediction import Prediction

# A batch that raises or breaks the contract logs at most this many rows, so one bad batch
# cannot flood the log pipeline.
MAX_ROWS_PER_CALL = 100
BATCH_ROW = "ml.batch.row"  # a batch row's index, on the per-row records earlier versions wrote
_ALL = 2**64
_INT64 = 2**63
# The deepest a feature value may nest lists and maps. In a single call's body a feature value
# sits eleven protobuf messages into the export request; each map level adds three more, each
# list level two. upb (Python) and Java decoders refuse a request past 100 levels, whole: 16 map
# levels stay under 60.
MAX_DEPTH = 16
TOO_DEEP, TOO_LARGE = "too_deep", "too_large"  # modeltel.features.dropped reasons


class TooDeep(Exception):
    """A feature value nests lists or maps past ``MAX_DEPTH``: its prediction is not logged."""


def rows_to_sample(b: Bound, p: Prediction, hashes: list[str]) -> list[int]:
    """Batch rows whose hash falls in the sample, plus rows that broke the contract."""
    below = b.sample_below
    if below >= _ALL:
        chosen = set(range(min(len(hashes), MAX_ROWS_PER_CALL)))  # every row: the first ones win
    elif below <= 0:
        chosen = set()
    else:
        chosen = set(np.flatnonzero(hash_values(hashes) < np.uint64(below))[:MAX_ROWS_PER_CALL].tolist())
    chosen.update(v.row for v in p.violations if v.row is not None)
    return sorted(chosen)[:MAX_ROWS_PER_CALL]


def hash_values(hashes: Iterable[str]) -> np.ndarray[Any, Any]:
    """16-hex-char hashes as 64-bit unsigned integers (big-endian, as written), parsed in C."""
    return np.frombuffer(bytes.fromhex("".join(hashes)), dtype=">u8")


def emit_feature_records(b: Bound, p: Prediction) -> int:
    """The record of a single-row call (a batch's are ``_batch.emit_batch_features``).

    Returns how many predictions the emitted records hold (rows dropped and counted are not).
    """
    try:
        body = redacted(b, as_mapping(b, p.features))
    except TooDeep:
        count_dropped(b, TOO_DEEP)
        return 0
    if _too_large(b, body):
        return 0
    attrs = call_attributes(b, p)
    attrs[n.PAYLOAD_HASH] = p.payload_hash
    if p.score is not None:
        attrs[n.SCORE] = p.score
    if p.violations:
        attrs[n.CONTRACT_VIOLATIONS] = [f"{v.feature}:{v.kind}" for v in p.violations][:64]
    emit(b, {"features": body}, attrs, p.at)
    return 1


def call_attributes(b: Bound, p: Prediction) -> dict[str, Any]:
    """What every feature record of a call carries, single row or batch."""
    attrs: dict[str, Any] = {
        n.MODEL_NAME: b.plan.model,
        n.MODEL_VERSION: b.plan.version,
        n.PAYLOAD_HASH_RECIPE: RECIPE,
        n.TENANT: p.tenant,
        n.PREDICTION_ID: p.prediction_id,
        n.OUTCOME: p.outcome,
    }
    if p.decision is not None:
        attrs[n.DECISION] = p.decision
    return attrs


def as_mapping(b: Bound, features: Any) -> Any:
    """The features as a mapping: a pydantic model or dataclass through the contract; dicts as given."""
    contract = b.plan.contract
    return contract.to_mapping(features) if contract is not None and type(features) is not dict else features


def emit(b: Bound, body: dict[str, Any] | str, attrs: dict[str, Any], at: int) -> None:
    # ``timestamp`` is the prediction's own time, the one its prediction record carries: the loop
    # windows features by when the prediction happened, not when its record was observed.
    b.otel_logger.emit(
        timestamp=at or None,
        event_name=n.EVENT_FEATURES,
        body=body,
        attributes=attrs,
        severity_number=SeverityNumber.INFO,
    )


def _too_large(b: Bound, features: Any) -> bool:
    """Whether one prediction's features exceed ``max_feature_bytes`` (then dropped and counted)."""
    if len(orjson.dumps(features)) <= b.max_feature_bytes:
        return False
    count_dropped(b, TOO_LARGE)
    return True


def count_dropped(b: Bound, reason: str) -> None:
    """Count one prediction whose features were chosen for logging and left out."""
    b.recorder.add(n.M_DROPPED_FEATURES, 1, ((n.MODEL_NAME, b.plan.model), ("reason", reason)))


def encoded_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (``isascii`` is O(1): most feature text needs no encoding)."""
    return len(text) if text.isascii() else len(text.encode())


def redacted(b: Bound, features: Any) -> Any:
    """The features as log values: sensitive ones removed, undeclared ones as the policy says.

    Raises :class:`TooDeep` when a value nests past ``MAX_DEPTH``.
    """
    if not isinstance(features, Mapping):
        features = to_log_value(features)
        if not isinstance(features, dict):
            return features
    hidden, declared = b.plan.sensitive, b.declared
    logged: dict[str, Any] = {}
    for k, v in features.items():
        if k in hidden:
            continue
        if declared is not None and k not in declared:
            if b.hash_undeclared:
                logged[log_key(k)] = hashed_value(b, v)
            continue
        logged[log_key(k)] = to_log_value(v)
    return logged


def hashed_value(b: Bound, value: Any) -> str:
    """What ``hash`` logs for an undeclared feature: its value's payload hash, never the value."""
    try:
        return f"{b.hasher.hash_int(value):016x}"
    except Exception:  # a value the canonical form cannot hold: its text's hash
        return f"{b.hasher.hash_int(_text_of(value)):016x}"


def to_log_value(value: Any, depth: int = 0) -> Any:
    """A feature value as a log value any OTLP encoder and collector takes, and JSON too.

    As given where it can be; see the module's docstring for what is rewritten. Raises
    :class:`TooDeep` past ``MAX_DEPTH`` levels of lists and maps (``depth``: levels above).
    """
    t = type(value)
    if t is float:
        return value if value - value == 0.0 else normalize(value)  # NaN/inf become strings
    if t is str:
        return value if value.isascii() else utf8_text(value)
    if t is int:
        return value if -_INT64 <= value < _INT64 else _big_int(value)
    if t is bool or value is None:
        return value
    if isinstance(value, (dict, list, tuple, Mapping)):
        if depth >= MAX_DEPTH:
            raise TooDeep
        if isinstance(value, Mapping):
            return {log_key(k): to_log_value(v, depth + 1) for k, v in value.items()}
        return [to_log_value(v, depth + 1) for v in value]
    try:
        plain = normalize(value)  # numpy, bytes, dates, models, dataclasses, str/int subclasses
    except Exception:  # an object the canonical form does not know (or nested past recursion)
        return _text_of(value)
    return to_log_value(plain, depth)


def log_key(key: Any) -> str:
    """A mapping key as a log value's key: a string UTF-8 can hold."""
    if type(key) is str:
        return key if key.isascii() else utf8_text(key)
    return _text_of(key)


def _big_int(value: int) -> float | str:
    """An integer OTLP's int64 cannot hold, as a float (past a float's range, infinity's text)."""
    try:
        return float(value)
    except OverflowError:
        return "Infinity" if value > 0 else "-Infinity"


def _text_of(value: Any) -> str:
    """An object as text: ``str()``, or its type's name when that fails."""
    try:
        text = str(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return utf8_text(text) if type(text) is str else f"<{type(value).__name__}>"


# ---------------------------------------------------------------- reading


def feature_rows(attributes: Mapping[str, Any], body: Any) -> Iterator[dict[str, Any]]:
    """The sampled predictions in one ``ml.features`` record, one dict each, whatever its shape.

    Keys: ``features``, ``prediction_id`` (``<call id>/<row>`` for a batch row, as in
    ``ml.prediction.records``), ``payload_hash``, ``score``, ``decision``, ``violations`` (a
    list of ``feature:kind``), ``row`` (None for a single-row call), ``tenant``, ``outcome``.
    A batch body is JSON text (or, as written before, a map); a null score is None.
    """
    found = decoded_body(body)
    content = found if isinstance(found, Mapping) else {}
    shared = {"tenant": attributes.get(n.TENANT), "outcome": attributes.get(n.OUTCOME)}
    if isinstance(content.get("row"), list):
        yield from _batch_rows(attributes, content, shared)
        return
    features = content.get("features")
    call_id, row = attributes.get(n.PREDICTION_ID), attributes.get(BATCH_ROW)
    yield {
        "features": features if features is not None else {},
        "prediction_id": call_id if row is None or call_id is None else f"{call_id}/{row}",
        "payload_hash": attributes.get(n.PAYLOAD_HASH),
        "score": attributes.get(n.SCORE),
        "decision": attributes.get(n.DECISION),
        "violations": list(attributes.get(n.CONTRACT_VIOLATIONS) or ()),
        "row": row,
        **shared,
    }


def _batch_rows(
    attributes: Mapping[str, Any], body: Mapping[str, Any], shared: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    rows: list[Any] = body["row"]
    size = len(rows)

    def column(values: Any) -> list[Any]:
        found: list[Any] = list(values) if isinstance(values, (list, tuple)) else []
        return found[:size] + [None] * (size - len(found))

    features = body.get("features")
    if isinstance(features, Mapping):
        columns = {str(k): column(v) for k, v in features.items()}
        mappings: list[Any] = [{k: c[i] for k, c in columns.items()} for i in range(size)]
    else:
        mappings = column(features)
    call_id = attributes.get(n.PREDICTION_ID)
    ids, hashes, scores = (
        column(body.get("prediction_id")),
        column(body.get("payload_hash")),
        column(body.get("score")),
    )
    decisions, violations = column(body.get("decision")), column(body.get("violations"))
    for i, row in enumerate(rows):
        pid = ids[i] if ids[i] is not None or call_id is None else f"{call_id}/{row}"
        yield {
            "features": mappings[i] if mappings[i] is not None else {},
            "prediction_id": pid,
            "payload_hash": hashes[i],
            "score": scores[i],
            "decision": decisions[i] if decisions[i] is not None else attributes.get(n.DECISION),
            "violations": list(violations[i] or ()),
            "row": row,
            **shared,
        }


def feature_row_count(body: Any) -> int:
    """How many sampled predictions one ``ml.features`` record holds."""
    found = decoded_body(body)
    rows = found.get("row") if isinstance(found, Mapping) else None
    return len(rows) if isinstance(rows, list) else 1
