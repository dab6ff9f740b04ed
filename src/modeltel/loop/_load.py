"""Loading telemetry and labels into four flat DuckDB tables.

The SQL path: DuckDB reads OTLP-JSON lines itself (``read_json`` with an explicit schema) and
unnests ``resourceLogs -> scopeLogs -> logRecords`` and the columnar body of each
``ml.prediction.records`` record: JSON text (an OTLP string value) parsed by ``json_transform``,
or, as written before, an OTLP map of arrays whose every value is an AnyValue wrapper. Large
volumes are faster still through Parquet: by default the prediction records are first converted
to (cached) Parquet by :mod:`modeltel.loop._cache` and only the remaining records take the SQL
path; both give the same tables. Memory stays bounded either way. The tables every later step
reads:

``predictions``   model, version, tenant, prediction_id, payload_hash, score, decision, outcome,
                  ts (Unix ns), duration_s, cost: one row per prediction
``model_info``    model, version and the declared truth table (``ml.model.<key>`` attributes)
``outcomes``      prediction_id, payload_hash, model, label_num, label_str, at_ns, seq
``feature_values`` model, version, tenant, ts, feature, num, str, violations: sampled features

:mod:`modeltel.loop._tables` lands them as Parquet (``modeltel tables``), for Spark
(:mod:`modeltel.loop._spark`) or a lake; every query after loading reads only them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from modeltel import _names as n
from modeltel._export.records import COLUMNS
from modeltel._features import BATCH_ROW
from modeltel._outcomes import EVENT_OUTCOME, OUTCOME_LABEL
from modeltel.loop._collector import telemetry_files

__all__ = ["EVENT_PREDICTIONS", "TRUTH_KEYS", "load_labels", "load_telemetry", "sql_string"]

EVENT_PREDICTIONS: Final = n.EVENT_RECORDS
EVENT_FEATURES: Final = n.EVENT_FEATURES
TRUTH_KEYS: Final = n.TRUTH_KEYS

_SCALARS = "stringValue VARCHAR, doubleValue VARCHAR, intValue VARCHAR, boolValue BOOLEAN"
_AV = f"STRUCT({_SCALARS})"
# A scalar or a list of scalars: attribute values, a batch feature record's columns (a value per
# row) and its per-row violation lists.
_ATTR_VALUE = f'STRUCT({_SCALARS}, arrayValue STRUCT("values" {_AV}[]))'
_KV = f"STRUCT(key VARCHAR, value {_ATTR_VALUE})"
_BODY_VALUE = f'STRUCT(arrayValue STRUCT("values" {_ATTR_VALUE}[]), kvlistValue STRUCT("values" {_KV}[]))'
_BODY = (
    f'STRUCT(stringValue VARCHAR, kvlistValue STRUCT("values" STRUCT(key VARCHAR, value {_BODY_VALUE})[]))'
)
_RECORD = (
    "STRUCT(timeUnixNano VARCHAR, observedTimeUnixNano VARCHAR, eventName VARCHAR, "
    f"attributes STRUCT(key VARCHAR, value {_ATTR_VALUE})[], body {_BODY})"
)
_LOGS_SCHEMA = f"STRUCT(scopeLogs STRUCT(logRecords {_RECORD}[])[])[]"

# An attribute or body column by key; numbers arrive as strings (OTLP-JSON int64) or JSON
# numbers, NaN/Infinity as strings, so every scalar is read as text and cast once.
_MACROS = (
    "CREATE OR REPLACE MACRO mt_attr(attrs, k) AS list_filter(attrs, lambda a: a.key = k)[1].value",
    "CREATE OR REPLACE MACRO mt_num(v) AS coalesce(TRY_CAST(v.doubleValue AS DOUBLE), "
    "TRY_CAST(v.intValue AS DOUBLE), CASE WHEN v.boolValue THEN 1.0 WHEN NOT v.boolValue THEN 0.0 END)",
    "CREATE OR REPLACE MACRO mt_str(v) AS coalesce(v.stringValue, v.intValue, v.doubleValue, "
    "CAST(v.boolValue AS VARCHAR))",
    "CREATE OR REPLACE MACRO mt_col(body, k) AS "
    'list_filter(body.kvlistValue."values", lambda x: x.key = k)[1]'
    '.value.arrayValue."values"',
    # A body that is JSON text (modeltel's bodies since they stopped being maps of arrays), parsed
    # into the shape ``t`` describes; NULL when the text is not JSON. Its values are read by
    # JSON type with the rules of mt_num and mt_str (mirrored in modeltel.loop._values): a
    # number or a boolean is a number, text is not; null (a NaN score too) is NULL.
    "CREATE OR REPLACE MACRO mt_json(body, t) AS "
    "CASE WHEN json_valid(body.stringValue) THEN json_transform(body.stringValue, t) END",
    "CREATE OR REPLACE MACRO mt_jnum(v) AS "
    "CASE WHEN json_type(v) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN') THEN TRY_CAST(v AS DOUBLE) END",
    "CREATE OR REPLACE MACRO mt_jstr(v) AS "
    "CASE WHEN json_type(v) NOT IN ('ARRAY', 'OBJECT') THEN v ->> '$' END",
    # A column of a records body: an array (a value per row) or one value shared by every row.
    "CREATE OR REPLACE MACRO mt_jlist(v) AS "
    "CASE WHEN json_type(v) = 'ARRAY' THEN CAST(v AS JSON[]) ELSE [] END",
    "CREATE OR REPLACE MACRO mt_jsingle(v) AS CASE WHEN json_type(v) <> 'ARRAY' THEN v END",
    "CREATE OR REPLACE MACRO mt_jnanos(v) AS coalesce("
    "CASE WHEN json_type(v) IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(v AS BIGINT) END, "
    "TRY_CAST(mt_jnum(v) AS BIGINT))",
)
# The JSON text bodies, as json_transform shapes: every value kept as JSON, typed by the macros.
_RECORDS_JSON = "{" + ", ".join(f'"{c}": ["JSON"]' for c in COLUMNS) + "}"
# A large batch call's records, values shared by its rows written once: any column an array or not.
_SHARED_RECORDS_JSON = "{" + ", ".join(f'"{c}": "JSON"' for c in (*COLUMNS, "row")) + "}"
_FEATURES_JSON = (
    '{"features": "JSON", "row": ["JSON"], "prediction_id": ["JSON"], "violations": [["VARCHAR"]]}'
)

_EMPTY_PREDICTIONS = (
    "CREATE OR REPLACE TABLE predictions (model VARCHAR, version VARCHAR, tenant VARCHAR, "
    "prediction_id VARCHAR, payload_hash VARCHAR, score DOUBLE, decision VARCHAR, outcome VARCHAR, "
    "ts BIGINT, duration_s DOUBLE, cost DOUBLE)"
)
_TRUTH_COLUMNS = ", ".join(f"{key} VARCHAR" for key in TRUTH_KEYS)
_EMPTY = (
    _EMPTY_PREDICTIONS,
    f"CREATE OR REPLACE TABLE model_info (model VARCHAR, version VARCHAR, {_TRUTH_COLUMNS})",
    "CREATE OR REPLACE TABLE outcomes (prediction_id VARCHAR, payload_hash VARCHAR, model VARCHAR, "
    "label_num DOUBLE, label_str VARCHAR, at_ns BIGINT, seq BIGINT, source VARCHAR)",
    "CREATE OR REPLACE TABLE feature_values (model VARCHAR, version VARCHAR, tenant VARCHAR, ts BIGINT, "
    "prediction_id VARCHAR, feature VARCHAR, num DOUBLE, str VARCHAR, violations VARCHAR[])",
)


def sql_string(text: str | Path) -> str:
    """``text`` as a single-quoted SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def load_telemetry(
    con: Any, folder: Path, *, convert: bool = True, window: tuple[int | None, int | None] = (None, None)
) -> dict[str, int]:
    """Create the loop's tables from ``folder``'s ``logs*.jsonl`` (OTLP-JSON), what a Collector
    wrote there (see :mod:`modeltel.loop._collector`) and ``predictions*.parquet``.

    With ``convert`` (and pyarrow installed) the logs' prediction records go through the
    converted Parquet cache (:mod:`modeltel.loop._cache`), otherwise DuckDB parses the JSON.
    A line that is not JSON (a truncated last line after a full disk or a partial copy) is
    skipped; returns how many were, per logs file name (empty when none). Collector partitions
    outside ``window`` are not read (see :mod:`modeltel.loop._collector`).
    """
    for statement in (*_MACROS, *_EMPTY):
        con.execute(statement)
    skipped: dict[str, int] = {}
    with telemetry_files(folder, window) as logs:
        if logs and convert and _has_pyarrow():
            skipped = _load_converted_logs(con, logs)
        elif logs:
            skipped = _load_logs(con, logs, count_skipped=True)
    tables = sorted(folder.glob("predictions*.parquet"))
    if tables:
        _load_prediction_tables(con, tables)
    return skipped


def _has_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


def _load_converted_logs(con: Any, files: Sequence[Path]) -> dict[str, int]:
    from modeltel.loop._cache import converted

    with converted(files) as (tables, other, skipped):
        if other:
            _load_logs(con, other)
        if tables:
            _load_prediction_tables(con, tables)
    return skipped


def _load_logs(con: Any, files: Sequence[Path], *, count_skipped: bool = False) -> dict[str, int]:
    """Load OTLP-JSON log files through DuckDB's JSON reader, skipping lines that are not JSON;
    with ``count_skipped``, return how many were skipped per file name."""
    paths = "[" + ", ".join(sql_string(p) for p in files) + "]"
    events = ", ".join(sql_string(e) for e in (EVENT_PREDICTIONS, EVENT_FEATURES, EVENT_OUTCOME))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE raw_logs AS
        SELECT coalesce(r.eventName, mt_str(mt_attr(r.attributes, 'event.name'))) AS event,
               coalesce(TRY_CAST(r.timeUnixNano AS BIGINT), TRY_CAST(r.observedTimeUnixNano AS BIGINT),
                        0) AS ts,
               r.attributes AS attributes, r.body AS body
        FROM (SELECT unnest(sl.logRecords) AS r
              FROM (SELECT unnest(rl.scopeLogs) AS sl
                    FROM (SELECT unnest(resourceLogs) AS rl
                          FROM read_json({paths}, format = 'newline_delimited', ignore_errors = true,
                                         columns = {{'resourceLogs': '{_LOGS_SCHEMA}'}}))))
        WHERE coalesce(r.eventName, mt_str(mt_attr(r.attributes, 'event.name'))) IN ({events})
    """)
    _insert_predictions(con)
    _insert_model_info(con)
    _insert_logged_outcomes(con)
    _insert_features(con)
    con.execute("DROP TABLE raw_logs")
    return _skipped_lines(con, paths) if count_skipped else {}


def _skipped_lines(con: Any, paths: str) -> dict[str, int]:
    # The JSON reader reads a line that is not JSON as a row of NULL (blank lines as nothing).
    found = con.execute(f"""
        SELECT filename, count(*)
        FROM read_json_objects({paths}, format = 'newline_delimited', ignore_errors = true, filename = true)
        WHERE json IS NULL GROUP BY filename
    """).fetchall()
    return {Path(name).name: int(count) for name, count in found}


def _insert_predictions(con: Any) -> None:
    columns = ("prediction_id", "payload_hash", "tenant", "score", "decision", "outcome")
    unnests = ", ".join(f"unnest(mt_col(body, '{c}')) AS {c}_v" for c in columns)
    # Bodies written as OTLP maps of arrays (before modeltel wrote JSON text).
    con.execute(f"""
        INSERT INTO predictions
        SELECT model, version, coalesce(mt_str(tenant_v), ''), mt_str(prediction_id_v),
               mt_str(payload_hash_v),
               mt_num(score_v), mt_str(decision_v), mt_str(outcome_v),
               coalesce(TRY_CAST(time_v.intValue AS BIGINT), CAST(mt_num(time_v) AS BIGINT), ts),
               mt_num(duration_v), coalesce(mt_num(cost_v), 0)
        FROM (SELECT mt_str(mt_attr(attributes, 'ml.model.name')) AS model,
                     mt_str(mt_attr(attributes, 'ml.model.version')) AS version, ts, {unnests},
                     unnest(mt_col(body, 'time_unix_nano')) AS time_v,
                     unnest(mt_col(body, 'duration_s')) AS duration_v,
                     unnest(mt_col(body, 'cost')) AS cost_v
              FROM raw_logs WHERE event = '{EVENT_PREDICTIONS}' AND body.stringValue IS NULL)
    """)
    # Bodies written as JSON text: parsed once per record, then unnested column by column.
    records = f"FROM raw_logs WHERE event = '{EVENT_PREDICTIONS}' AND body.stringValue IS NOT NULL"
    # try(): json_type raises on text that is not JSON; such a body gives no rows either way.
    shared = "try(json_type(body.stringValue, '$.prediction_id')) = 'VARCHAR'"
    json_unnests = ", ".join(f"unnest(c.{c}) AS {c}_v" for c in COLUMNS)
    con.execute(f"""
        INSERT INTO predictions
        SELECT model, version, coalesce(mt_jstr(tenant_v), ''), mt_jstr(prediction_id_v),
               mt_jstr(payload_hash_v), mt_jnum(score_v), mt_jstr(decision_v), mt_jstr(outcome_v),
               coalesce(mt_jnanos(time_unix_nano_v), ts), mt_jnum(duration_s_v), coalesce(mt_jnum(cost_v), 0)
        FROM (SELECT model, version, ts, {json_unnests}
              FROM (SELECT mt_str(mt_attr(attributes, 'ml.model.name')) AS model,
                           mt_str(mt_attr(attributes, 'ml.model.version')) AS version, ts,
                           mt_json(body, '{_RECORDS_JSON}') AS c
                    {records} AND ({shared}) IS NOT TRUE))
    """)
    _insert_shared_value_records(con, f"{records} AND {shared}")


def _insert_shared_value_records(con: Any, records: str) -> None:
    """Bodies with a single prediction_id, a large batch call's: a column is an array (unnested,
    shorter ones padded with NULL) or one value for every row; row i is "<id>/<row[i]>" (row
    absent: 0..n-1). Each record is split into its lists and its single values first: carrying
    the parsed record itself next to the unnested rows would copy its lists once per row."""
    columns = (*COLUMNS, "row")
    lists = ", ".join(f"mt_jlist(c.{col}) AS {col}_l" for col in columns)
    singles = ", ".join(f"mt_jsingle(c.{col}) AS {col}_s" for col in COLUMNS)
    items = ", ".join(f"unnest({col}_l) AS {col}_i" for col in columns)
    value = {col: f"coalesce({col}_i, {col}_s)" for col in COLUMNS}
    con.execute(f"""
        INSERT INTO predictions
        SELECT model, version, coalesce(mt_jstr({value["tenant"]}), ''),
               mt_jstr(prediction_id_s) || '/' || coalesce(mt_jstr(row_i), CAST(index_i AS VARCHAR)),
               mt_jstr({value["payload_hash"]}), mt_jnum({value["score"]}),
               mt_jstr({value["decision"]}), mt_jstr({value["outcome"]}),
               coalesce(mt_jnanos({value["time_unix_nano"]}), ts), mt_jnum({value["duration_s"]}),
               coalesce(mt_jnum({value["cost"]}), 0)
        FROM (SELECT model, version, ts, {", ".join(f"{col}_s" for col in COLUMNS)}, {items},
                     unnest(range(len(payload_hash_l))) AS index_i
              FROM (SELECT model, version, ts, {lists}, {singles}
                    FROM (SELECT mt_str(mt_attr(attributes, 'ml.model.name')) AS model,
                                 mt_str(mt_attr(attributes, 'ml.model.version')) AS version, ts,
                                 mt_json(body, '{_SHARED_RECORDS_JSON}') AS c
                          {records})))
    """)


def _insert_model_info(con: Any) -> None:
    # The latest declaration wins, so a corrected owner or budget replaces the old one.
    declared = ", ".join(
        f"arg_max(mt_str(mt_attr(attributes, 'ml.model.{key}')), "
        f"CASE WHEN mt_attr(attributes, 'ml.model.{key}') IS NULL THEN NULL ELSE ts END)"
        for key in TRUTH_KEYS
    )
    con.execute(f"""
        INSERT INTO model_info
        SELECT mt_str(mt_attr(attributes, 'ml.model.name')), mt_str(mt_attr(attributes, 'ml.model.version')),
               {declared}
        FROM raw_logs WHERE event = '{EVENT_PREDICTIONS}' GROUP BY ALL
    """)


def _insert_logged_outcomes(con: Any) -> None:
    con.execute(f"""
        INSERT INTO outcomes
        SELECT prediction_id, payload_hash, model, {_label_number("mt_num(label_v)", "label")}, label, ts,
               row_number() OVER (ORDER BY ts), 'logs'
        FROM (SELECT mt_str(mt_attr(attributes, 'ml.prediction.id')) AS prediction_id,
                     mt_str(mt_attr(attributes, 'ml.payload.hash')) AS payload_hash,
                     mt_str(mt_attr(attributes, 'ml.model.name')) AS model,
                     mt_attr(attributes, '{OUTCOME_LABEL}') AS label_v, mt_str(label_v) AS label, ts
              FROM raw_logs WHERE event = '{EVENT_OUTCOME}')
    """)


def _label_number(numeric: str, text: str) -> str:
    return f"coalesce({numeric}, CASE lower({text}) WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 END)"


def _insert_features(con: Any) -> None:
    # Both shapes of ml.features (see modeltel._features): a single call's record holds one
    # {feature: value} mapping; a batch call's record holds {feature: [value per row]} beside
    # per-row "row", "prediction_id" and "violations" columns, unnested here in step. A body is
    # an OTLP map (a single call's; a batch's before it became JSON text) or JSON text (jb).
    con.execute(f"""
        INSERT INTO feature_values
        WITH records AS (
            SELECT mt_str(mt_attr(attributes, 'ml.model.name')) AS model,
                   mt_str(mt_attr(attributes, 'ml.model.version')) AS version,
                   coalesce(mt_str(mt_attr(attributes, 'ml.tenant')), '') AS tenant, ts,
                   mt_str(mt_attr(attributes, 'ml.prediction.id')) AS call_id,
                   mt_str(mt_attr(attributes, '{BATCH_ROW}')) AS legacy_row,
                   list_transform(mt_attr(attributes, 'ml.contract.violations').arrayValue."values",
                                  lambda v: v.stringValue) AS violations,
                   list_filter(body.kvlistValue."values", lambda x: x.key = 'features')[1]
                       .value.kvlistValue."values" AS features,
                   mt_col(body, 'row') AS rows_v, mt_col(body, 'prediction_id') AS ids_v,
                   mt_col(body, 'violations') AS row_violations_v,
                   mt_json(body, '{_FEATURES_JSON}') AS jb
            FROM raw_logs WHERE event = '{EVENT_FEATURES}'
        ),
        single AS (
            SELECT model, version, tenant, ts,
                   CASE WHEN legacy_row IS NULL THEN call_id ELSE call_id || '/' || legacy_row END AS pid,
                   violations, unnest(features) AS f
            FROM records WHERE rows_v IS NULL
        ),
        single_json AS (
            SELECT model, version, tenant, ts, call_id AS pid, violations,
                   unnest(map_entries(json_transform(jb.features, '"MAP(VARCHAR, JSON)"'))) AS f
            FROM records WHERE jb IS NOT NULL AND jb.row IS NULL
        ),
        batch_columns AS (
            SELECT model, version, tenant, ts, call_id, rows_v, ids_v, row_violations_v,
                   unnest(features) AS f
            FROM records WHERE rows_v IS NOT NULL
        ),
        batch AS (
            SELECT model, version, tenant, ts, call_id, f.key AS feature,
                   unnest(f.value.arrayValue."values") AS v, unnest(rows_v) AS row_v,
                   unnest(ids_v) AS id_v, unnest(row_violations_v) AS violations_v
            FROM batch_columns
        ),
        batch_json_columns AS (
            SELECT model, version, tenant, ts, call_id, jb,
                   unnest(map_entries(json_transform(jb.features, '"MAP(VARCHAR, JSON[])"'))) AS f
            FROM records WHERE jb.row IS NOT NULL
        ),
        batch_json AS (
            SELECT model, version, tenant, ts, call_id, f.key AS feature,
                   unnest(f.value) AS v, unnest(jb.row) AS row_v,
                   unnest(jb.prediction_id) AS id_v, unnest(jb.violations) AS violations_v
            FROM batch_json_columns
        )
        SELECT model, version, tenant, ts, pid, f.key, mt_num(f.value), mt_str(f.value), violations
        FROM single
        UNION ALL
        SELECT model, version, tenant, ts, pid, f.key, mt_jnum(f.value), mt_jstr(f.value), violations
        FROM single_json
        UNION ALL
        SELECT model, version, tenant, ts, coalesce(mt_str(id_v), call_id || '/' || mt_str(row_v)), feature,
               mt_num(v), mt_str(v), list_transform(violations_v.arrayValue."values", lambda x: x.stringValue)
        FROM batch WHERE feature IS NOT NULL
        UNION ALL
        SELECT model, version, tenant, ts, coalesce(mt_jstr(id_v), call_id || '/' || mt_jstr(row_v)), feature,
               mt_jnum(v), mt_jstr(v), violations_v
        FROM batch_json WHERE feature IS NOT NULL
    """)


def _load_prediction_tables(con: Any, files: Sequence[Path]) -> None:
    paths = "[" + ", ".join(sql_string(p) for p in files) + "]"
    con.execute(f"""
        INSERT INTO predictions
        SELECT model, version, coalesce(tenant, ''), prediction_id, payload_hash, score, decision, outcome,
               time_unix_nano, duration_s, coalesce(cost, 0)
        FROM read_parquet({paths}, union_by_name = true)
    """)
    con.execute("""
        INSERT INTO model_info (model, version)
        SELECT DISTINCT model, version FROM predictions
        WHERE (model, version) NOT IN (SELECT (model, version) FROM model_info)
    """)


def load_labels(con: Any, path: Path) -> int:
    """Add the outcomes in a CSV, Parquet or JSON labels file; returns how many rows it held.

    Rows are keyed by a ``prediction_id`` or ``payload_hash`` column, carry a ``label`` and
    optionally ``at`` (a timestamp, ISO text or Unix seconds) and ``model``.
    """
    source = _reader(path)
    columns = {
        row[0]: str(row[1]).upper() for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    }
    if "label" not in columns or not ({"prediction_id", "payload_hash"} & columns.keys()):
        raise ValueError(
            f"{path}: a labels file needs a label column and a prediction_id or payload_hash column"
        )
    before = con.execute("SELECT coalesce(max(seq), 0) FROM outcomes").fetchone()[0]
    text = 'CAST("label" AS VARCHAR)'
    con.execute(f"""
        INSERT INTO outcomes
        SELECT {_optional(columns, "prediction_id")}, {_optional(columns, "payload_hash")},
               {_optional(columns, "model")}, {_label_number('TRY_CAST("label" AS DOUBLE)', text)}, {text},
               {_at_ns(columns.get("at"))}, {before} + row_number() OVER (), {sql_string(path.name)}
        FROM {source} WHERE "label" IS NOT NULL
    """)
    return int(con.execute(f"SELECT count(*) FROM outcomes WHERE seq > {before}").fetchone()[0])


def _reader(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return f"read_parquet({sql_string(path)})"
    if suffix in {".json", ".jsonl", ".ndjson"}:
        return f"read_json_auto({sql_string(path)})"
    if suffix in {".csv", ".tsv", ".txt"}:
        return f"read_csv({sql_string(path)}, auto_detect = true)"
    raise ValueError(f"{path}: labels must be .csv, .parquet or .json/.jsonl")


def _optional(columns: dict[str, str], name: str) -> str:
    return f'CAST("{name}" AS VARCHAR)' if name in columns else "NULL"


def _at_ns(kind: str | None) -> str:
    if kind is None:
        return "NULL"
    if kind.startswith(("TIMESTAMP", "DATE")):
        return 'epoch_ns(CAST("at" AS TIMESTAMPTZ))'
    if kind in {"VARCHAR", "JSON"}:
        return 'epoch_ns(TRY_CAST("at" AS TIMESTAMPTZ))'
    return 'CAST(round(CAST("at" AS DOUBLE) * 1e6) AS BIGINT) * 1000'
