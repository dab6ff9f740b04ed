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
from modeltel._hashing import normalize
from modeltel._records import decoded_body, json_text

_SCALARS = (str, int, bool, type(None))

if TYPE_CHECKING:
    from modeltel._plan import Bound
    from modeltel._prediction import Prediction

# A batch that raises or breaks the contract logs at most this many rows, so one bad batch
# cannot flood the log pipeline.
MAX_ROWS_PER_CALL = 100
BATCH_ROW = "ml.batch.row"  # a batch row's index, on the per-row records earlier versions wrote
_ALL = 2**64


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


def emit_feature_records(b: Bound, p: Prediction) -> None:
    """One record for a single-row call; one for all the sampled rows of a batch."""
    if p.rows:
        _emit_batch(b, p)
        return
    body = redacted(b, as_mapping(b, p.features))
    if _too_large(b, body):
        return
    attrs = _call_attributes(b, p)
    attrs[n.PAYLOAD_HASH] = p.payload_hash
    if p.score is not None:
        attrs[n.SCORE] = p.score
    if p.violations:
        attrs[n.CONTRACT_VIOLATIONS] = [f"{v.feature}:{v.kind}" for v in p.violations][:64]
    _emit(b, {"features": body}, attrs)


def _call_attributes(b: Bound, p: Prediction) -> dict[str, Any]:
    """What every feature record of a call carries, single row or batch."""
    attrs: dict[str, Any] = {
        n.MODEL_NAME: b.plan.model,
        n.MODEL_VERSION: b.plan.version,
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


def _emit(b: Bound, body: dict[str, Any] | str, attrs: dict[str, Any]) -> None:
    b.otel_logger.emit(
        event_name=n.EVENT_FEATURES,
        body=body,
        attributes=attrs,
        severity_number=SeverityNumber.INFO,
    )


def _too_large(b: Bound, features: Any) -> bool:
    """Whether one prediction's features exceed ``max_feature_bytes`` (then dropped and counted)."""
    if len(orjson.dumps(features)) <= b.max_feature_bytes:
        return False
    _count_too_large(b)
    return True


def _count_too_large(b: Bound) -> None:
    b.recorder.add(n.M_DROPPED_FEATURES, 1, ((n.MODEL_NAME, b.plan.model), ("reason", "too_large")))


def _emit_batch(b: Bound, p: Prediction) -> None:
    from modeltel._batch import sampled_features

    rows = list(p.sample_rows) or list(range(min(p.rows, MAX_ROWS_PER_CALL)))
    features = sampled_features(b, p.features, rows)
    labels = _row_violations(p, rows)
    attrs = _call_attributes(b, p)
    attrs[n.BATCH_SIZE] = p.rows
    for positions, text in _parts(b, features, len(rows)):
        rows_part = rows if positions is None else [rows[k] for k in positions]
        body = _batch_body(p, rows_part, text, labels)
        if labels is None:
            _emit(b, body, attrs)
        else:
            seen = dict.fromkeys(label for i in rows_part for label in labels[i])
            _emit(b, body, {**attrs, n.CONTRACT_VIOLATIONS: list(seen)[:64]})


def _row_violations(p: Prediction, rows: list[int]) -> dict[int, list[str]] | None:
    """``feature:kind`` per sampled row, None when the call broke no rule."""
    if not p.violations:
        return None
    labels: dict[int, list[str]] = {i: [] for i in rows}
    for v in p.violations:
        found = labels.get(v.row) if v.row is not None else None
        if found is not None and len(found) < 64:
            found.append(f"{v.feature}:{v.kind}")
    return labels


def _batch_body(p: Prediction, rows: list[int], features: str, labels: dict[int, list[str]] | None) -> str:
    """The batch record's body: JSON text, ``features`` (already JSON) first, then the row columns."""
    hashes = p.row_hashes
    columns: dict[str, Any] = {
        "row": rows,
        "prediction_id": [f"{p.prediction_id}/{i}" for i in rows],
        "payload_hash": [hashes[i] for i in rows] if hashes else [""] * len(rows),
        # float64 straight into the JSON: a NaN or infinite score is written as null, no score.
        "score": [None] * len(rows) if p.scores is None else p.scores[rows],
    }
    decisions = p.row_decisions  # a decision for the whole call is an attribute
    if decisions is not None:
        columns["decision"] = [decisions[i] for i in rows]
    if labels is not None:
        columns["violations"] = [labels[i] for i in rows]
    return '{"features":' + features + "," + json_text(columns)[1:]


def _pick(features: Any, positions: list[int]) -> Any:
    """Some rows of sampled features: columns (a mapping of lists) or a list of rows."""
    if isinstance(features, dict):
        return {k: [column[i] for i in positions] for k, column in features.items()}
    return [features[i] for i in positions]


def _row(features: Any, position: int) -> Any:
    """One row of sampled features, as it would be logged for a single call."""
    if isinstance(features, dict):
        return {k: column[position] for k, column in features.items()}
    return features[position]


def _parts(b: Bound, features: Any, size: int) -> list[tuple[list[int] | None, str]]:
    """Each record to emit: the positions of its rows (None: all of them) and their features as
    JSON text.

    A record's features stay within ``max_feature_bytes`` of JSON text: when all rows do not fit,
    rows are packed by their size as single-call features, and a row that alone passes the limit
    is dropped and counted, as a single call would be.
    """
    if not size:
        return []
    limit = b.max_feature_bytes
    whole = json_text(features)
    if _size(whole) <= limit:
        return [(None, whole)]
    packed: list[list[int]] = []
    current: list[int] = []
    used = 0
    for k in range(size):
        row_size = _size(json_text(_row(features, k)))
        if row_size > limit:
            _count_too_large(b)
            continue
        if current and used + row_size > limit:
            packed.append(current)
            current, used = [], 0
        current.append(k)
        used += row_size
    if current:
        packed.append(current)
    return [(positions, json_text(_pick(features, positions))) for positions in packed]


def _size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (``isascii`` is O(1): most feature text needs no encoding)."""
    return len(text) if text.isascii() else len(text.encode())


def redacted(b: Bound, features: Any) -> Any:
    """The features as log values without the sensitive ones."""
    if isinstance(features, dict):
        return {str(k): to_log_value(v) for k, v in features.items() if k not in b.plan.sensitive}
    plain = to_log_value(features)
    if isinstance(plain, dict) and b.plan.sensitive:
        return {k: v for k, v in plain.items() if k not in b.plan.sensitive}
    return plain


def to_log_value(value: Any) -> Any:
    """A feature value as an OTel log value: as given where it can be, JSON-safe always."""
    t = type(value)
    if t is float:
        return value if value - value == 0.0 else normalize(value)  # NaN/inf become strings
    if t in _SCALARS:
        return value
    if isinstance(value, dict):
        return {str(k): to_log_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_log_value(v) for v in value]
    plain = normalize(value)
    return plain


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
