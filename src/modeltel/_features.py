"""Sampled full features, as OTel log records ``ml.features``; sensitive features never leave."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry._logs import SeverityNumber

from modeltel import _names as n
from modeltel._hashing import normalize

_SCALARS = (str, int, bool, type(None))

if TYPE_CHECKING:
    from modeltel._plan import Bound
    from modeltel._prediction import Prediction

# A batch that raises or breaks the contract logs at most this many rows, so one bad batch
# cannot flood the log pipeline.
MAX_ROWS_PER_CALL = 100


def rows_to_sample(b: Bound, p: Prediction, hashes: Any) -> list[int]:
    """Batch rows whose hash falls in the sample, plus rows that broke the contract."""
    chosen = {i for i, h in enumerate(hashes) if h < b.sample_below}
    chosen.update(v.row for v in p.violations if v.row is not None)
    return sorted(chosen)[:MAX_ROWS_PER_CALL]


def emit_feature_records(b: Bound, p: Prediction) -> None:
    """One record for a single-row call; one per sampled row for a batch."""
    if not p.rows:
        _emit(b, p, as_mapping(b, p.features), p.payload_hash, p.score, None)
        return
    from modeltel._batch import row_mapping

    rows = p.sample_rows or list(range(min(p.rows, MAX_ROWS_PER_CALL)))
    for i in rows:
        score = None if p.scores is None else float(p.scores[i])
        _emit(b, p, row_mapping(b, p.features, i), p.row_hashes[i] if p.row_hashes else "", score, i)


def as_mapping(b: Bound, features: Any) -> Any:
    """The features as a mapping: a pydantic model or dataclass through the contract; dicts as given."""
    contract = b.plan.contract
    return contract.to_mapping(features) if contract is not None and type(features) is not dict else features


def _emit(
    b: Bound, p: Prediction, features: Any, payload_hash: str, score: float | None, row: int | None
) -> None:
    body = _redacted(b, features)
    encoded = orjson.dumps(body)
    if len(encoded) > b.max_feature_bytes:
        b.recorder.add(n.M_DROPPED_FEATURES, 1, ((n.MODEL_NAME, b.plan.model), ("reason", "too_large")))
        return
    attrs: dict[str, Any] = {
        n.MODEL_NAME: b.plan.model,
        n.MODEL_VERSION: b.plan.version,
        n.TENANT: p.tenant,
        n.PREDICTION_ID: p.prediction_id,
        n.PAYLOAD_HASH: payload_hash,
        n.OUTCOME: p.outcome,
    }
    if score is not None:
        attrs[n.SCORE] = score
    if p.decision is not None:
        attrs[n.DECISION] = p.decision
    if row is not None:
        attrs["ml.batch.row"] = row
    if p.violations:
        attrs[n.CONTRACT_VIOLATIONS] = [
            f"{v.feature}:{v.kind}" for v in p.violations if row is None or v.row == row
        ][:64]
    b.otel_logger.emit(
        event_name=n.EVENT_FEATURES,
        body={"features": body},
        attributes=attrs,
        severity_number=SeverityNumber.INFO,
    )


def _redacted(b: Bound, features: Any) -> Any:
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
