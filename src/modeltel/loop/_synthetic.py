"""Synthetic telemetry in modeltel's OTLP-JSON shape, for tests, demos and the scale benchmark.

Writes the same lines modeltel's file exporter writes: one ``ExportLogsServiceRequest`` per
line holding ``ml.prediction.records`` (columnar bodies), ``ml.features`` (a single call's or a
batch call's shape) and ``ml.outcome`` log records. Columnar bodies are JSON text, as modeltel
writes them; ``kvlist=True`` writes the OTLP map of arrays earlier versions wrote instead.
``python -m modeltel.loop._synthetic DIR --predictions 10000000`` generates a month of traffic for
two versions of one model plus a Parquet labels file (``--kvlist``: in the older map bodies).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson

from modeltel._export.otlp_json import LOGS_FILE
from modeltel._export.records import json_text

__all__ = [
    "any_value",
    "append_records",
    "feature_batch_record",
    "feature_record",
    "outcome_record",
    "prediction_record",
]

DAY_NS: Final = 86_400 * 1_000_000_000


def any_value(value: Any) -> dict[str, Any]:
    """``value`` as an OTLP-JSON AnyValue."""
    if value is None:
        return {}
    if isinstance(value, (bool, np.bool_)):
        return {"boolValue": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"intValue": str(int(value))}
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return {"doubleValue": "NaN"}
        return {
            "doubleValue": number if math.isfinite(number) else ("Infinity" if number > 0 else "-Infinity")
        }
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _kvs(value)}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _kvs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in values.items()]


def _record(
    event: str, time_ns: int, attributes: Mapping[str, Any], body: Any, *, json_body: bool = False
) -> dict[str, Any]:
    return {
        "timeUnixNano": str(time_ns),
        "observedTimeUnixNano": str(time_ns),
        "eventName": event,
        "attributes": _kvs({k: v for k, v in attributes.items() if v is not None}),
        "body": {"stringValue": json_text(body)} if json_body else any_value(body),
    }


def prediction_columns(
    ids: Sequence[str], times: Sequence[int], scores: Sequence[float]
) -> dict[str, list[Any]]:
    """Columns of ``len(ids)`` ordinary predictions (tenant ``acme``, decision ``approve``,
    outcome ``ok``, 2 ms, cost 0.0001): a test's traffic, where only ids, times and scores vary."""
    n = len(ids)
    return {
        "prediction_id": list(ids),
        "payload_hash": list(ids),
        "tenant": ["acme"] * n,
        "score": list(scores),
        "decision": ["approve"] * n,
        "outcome": ["ok"] * n,
        "time_unix_nano": list(times),
        "duration_s": [0.002] * n,
        "cost": [0.0001] * n,
    }


def prediction_record(
    model: str,
    version: str,
    columns: Mapping[str, Sequence[Any]],
    *,
    targets: Mapping[str, Any] | None = None,
    time_ns: int | None = None,
    kvlist: bool = False,
) -> dict[str, Any]:
    """An ``ml.prediction.records`` log record with a columnar body (targets as ``ml.model.<key>``):
    JSON text (NaN and infinities written as null, as modeltel writes them), or with ``kvlist``
    the OTLP map of arrays of earlier versions."""
    attributes = {"ml.model.name": model, "ml.model.version": version}
    attributes.update({f"ml.model.{k}": v for k, v in (targets or {}).items()})
    stamp = time_ns if time_ns is not None else int(max(columns["time_unix_nano"]))
    body = {k: list(v) for k, v in columns.items()}
    return _record("ml.prediction.records", stamp, attributes, body, json_body=not kvlist)


def feature_record(
    model: str,
    version: str,
    features: Mapping[str, Any],
    *,
    time_ns: int,
    prediction_id: str,
    tenant: str = "",
    payload_hash: str | None = None,
    score: float | None = None,
    violations: Sequence[str] = (),
) -> dict[str, Any]:
    """An ``ml.features`` log record as modeltel emits for a sampled call."""
    attributes: dict[str, Any] = {
        "ml.model.name": model,
        "ml.model.version": version,
        "ml.tenant": tenant,
        "ml.prediction.id": prediction_id,
        "ml.payload.hash": payload_hash,
        "ml.outcome": "ok",
        "ml.prediction.score": score,
        "ml.contract.violations": list(violations) or None,
    }
    return _record("ml.features", time_ns, attributes, {"features": dict(features)})


def feature_batch_record(
    model: str,
    version: str,
    rows: Mapping[int, Mapping[str, Any]],
    *,
    time_ns: int,
    prediction_id: str,
    batch_size: int,
    tenant: str = "",
    payload_hashes: Sequence[str] | None = None,
    scores: Sequence[float | None] | None = None,
    violations: Mapping[int, Sequence[str]] | None = None,
    kvlist: bool = False,
) -> dict[str, Any]:
    """An ``ml.features`` log record as modeltel emits for a batch call: ``rows`` maps a row index
    to its features; one record, columnar, a value per row for each feature. Its body is JSON
    text, or with ``kvlist`` the OTLP map earlier versions wrote."""
    index = list(rows)
    keys = dict.fromkeys(k for features in rows.values() for k in features)
    body: dict[str, Any] = {
        "features": {k: [rows[i].get(k) for i in index] for k in keys},
        "row": index,
        "prediction_id": [f"{prediction_id}/{i}" for i in index],
        "payload_hash": list(payload_hashes) if payload_hashes is not None else [""] * len(index),
        "score": list(scores) if scores is not None else [None] * len(index),
    }
    labels: list[str] = []
    if violations:
        body["violations"] = [list(violations.get(i, ())) for i in index]
        labels = list(dict.fromkeys(v for i in index for v in violations.get(i, ())))
    attributes: dict[str, Any] = {
        "ml.model.name": model,
        "ml.model.version": version,
        "ml.tenant": tenant,
        "ml.prediction.id": prediction_id,
        "ml.outcome": "ok",
        "ml.batch.size": batch_size,
        "ml.contract.violations": labels or None,
    }
    return _record("ml.features", time_ns, attributes, body, json_body=not kvlist)


def outcome_record(
    label: Any,
    *,
    at_ns: int,
    prediction_id: str | None = None,
    payload_hash: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """An ``ml.outcome`` log record as ``modeltel.record_outcome`` emits."""
    attributes = {
        "ml.prediction.id": prediction_id,
        "ml.payload.hash": payload_hash,
        "ml.outcome.label": label,
        "ml.model.name": model,
    }
    return _record("ml.outcome", at_ns, attributes, None)


def _line(records: Sequence[Mapping[str, Any]]) -> bytes:
    request = {
        "resourceLogs": [
            {"resource": {}, "scopeLogs": [{"scope": {"name": "modeltel"}, "logRecords": records}]}
        ]
    }
    return orjson.dumps(request) + b"\n"


def append_records(
    folder: str | os.PathLike[str], records: Iterable[Mapping[str, Any]], per_line: int = 50
) -> None:
    """Append ``records`` to ``folder/logs.jsonl``, ``per_line`` log records per request line."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    batch: list[Mapping[str, Any]] = []
    with (path / LOGS_FILE).open("ab") as out:
        for record in records:
            batch.append(record)
            if len(batch) == per_line:
                out.write(_line(batch))
                batch = []
        if batch:
            out.write(_line(batch))


def _batch(
    rng: np.random.Generator, start: int, size: int, day0: int, days: int, version: str
) -> dict[str, Any]:
    ids = [f"{version}-{i:010d}" for i in range(start, start + size)]
    x = rng.normal(size=size)
    score = 1.0 / (1.0 + np.exp(-(x * 1.5 - 1.0)))
    times = day0 + (np.sort(rng.integers(0, days * DAY_NS, size)))
    return {
        "prediction_id": ids,
        "payload_hash": [
            f"{(n * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF:016x}" for n in range(start, start + size)
        ],
        "tenant": list(rng.choice(["acme", "globex", "initech"], size)),
        "score": score.tolist(),
        "decision": ["review" if s > 0.8 else "approve" for s in score],
        "outcome": ["ok"] * size,
        "time_unix_nano": times.tolist(),
        "duration_s": rng.gamma(2.0, 0.002, size).tolist(),
        "cost": [0.0004] * size,
    }


def _labels(rng: np.random.Generator, columns: Mapping[str, Any]) -> tuple[list[str], list[int]]:
    chosen = rng.random(len(columns["score"])) < 0.5
    ids = [i for i, c in zip(columns["prediction_id"], chosen, strict=True) if c]
    labels = [int(rng.random() < s) for s, c in zip(columns["score"], chosen, strict=True) if c]
    return ids, labels


def generate(
    folder: Path,
    predictions: int,
    *,
    parquet: bool = False,
    batch: int = 1000,
    days: int = 30,
    kvlist: bool = False,
) -> None:
    """Write ``predictions`` records of two versions (OTLP-JSON, or Parquet) and a Parquet labels file."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rng = np.random.default_rng(7)
    day0 = 1_700_000_000 * 1_000_000_000 // DAY_NS * DAY_NS
    label_ids: list[str] = []
    labels: list[int] = []
    targets = {"owner": "risk", "latency_budget_ms": 10, "cost_per_1k_target": 0.5}
    writer = pq.ParquetWriter(folder / "predictions.parquet", _parquet_schema(pa)) if parquet else None
    with (folder / LOGS_FILE).open("ab") as out:
        for start in range(0, predictions, batch):
            version = "2.0" if (start // batch) % 4 == 0 else "1.0"
            columns = _batch(rng, start, min(batch, predictions - start), day0, days, version)
            if writer is not None:
                size = len(columns["score"])
                writer.write_table(
                    pa.table({"model": ["fraud"] * size, "version": [version] * size, **columns})
                )
            else:
                record = prediction_record("fraud", version, columns, targets=targets, kvlist=kvlist)
                out.write(_line([record]))
            ids, found = _labels(rng, columns)
            label_ids.extend(ids)
            labels.extend(found)
    if writer is not None:
        writer.close()
    pq.write_table(pa.table({"prediction_id": label_ids, "label": labels}), folder / "labels.parquet")


def _parquet_schema(pa: Any) -> Any:
    text, number = pa.string(), pa.float64()
    names = ("model", "version", "prediction_id", "payload_hash", "tenant", "score", "decision", "outcome")
    fields = [(name, number if name == "score" else text) for name in names]
    return pa.schema([*fields, ("time_unix_nano", pa.int64()), ("duration_s", number), ("cost", number)])


def main(argv: list[str] | None = None) -> None:
    """``python -m modeltel.loop._synthetic DIR --predictions N``."""
    parser = argparse.ArgumentParser(description="write synthetic modeltel telemetry")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--parquet", action="store_true", help="predictions.parquet instead of OTLP-JSON")
    parser.add_argument("--kvlist", action="store_true", help="record bodies as OTLP maps (the older shape)")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    generate(args.folder, args.predictions, parquet=args.parquet, kvlist=args.kvlist)


if __name__ == "__main__":
    main()
