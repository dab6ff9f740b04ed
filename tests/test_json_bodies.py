"""Bulk log bodies as JSON text: ``ml.prediction.records`` and a batch call's ``ml.features``.

Each body is one OTLP string value holding the object it used to hold as a map of arrays (same
keys, same columns). A score that was NaN or infinite is written as null and read back as missing.
A batch call of ``SHARED_AT`` rows or more gets a records body of its own where the values shared
by its rows are written once. Every reader (capture helpers, replay, summary, the loop's DuckDB
load on the SQL and converted paths) reads the JSON text in both shapes, and still reads the
map-shaped bodies written before.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

import modeltel
from modeltel import _names as n
from modeltel._export.otlp_json import OtlpJsonFileLogExporter
from modeltel._export.records import BODY_ROWS, COLUMNS, SHARED_AT
from modeltel.cli.replay import feature_records
from modeltel.cli.summary import summarize
from modeltel.loop._engine import connect
from modeltel.loop._load import load_telemetry
from modeltel.testing import Capture, capture

# The loop needs its extra; the oldest-versions CI run installs the core only.
needs_duckdb = pytest.mark.skipif(importlib.util.find_spec("duckdb") is None, reason="needs modeltel[loop]")

SHARE = 0.3
NON_FINITE = (math.nan, math.inf, -math.inf)


@modeltel.instrument(model="js", version="1", tenant="tenant", decision=lambda s: "hi" if s > 0.5 else "lo")
def predict(features: dict[str, float], tenant: str = "acme") -> float:
    return features["x"]


@modeltel.instrument(model="js", version="1", batch=True, columns=["x", "y"])
def score_batch(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return rows[:, 0]


@modeltel.instrument(model="raw", version="1")
def raw_output(features: dict[str, Any]) -> Any:
    return features["out"]


def _record_bodies(cap: Capture) -> list[dict[str, list[Any]]]:
    """The records' bodies as equally long columns, checked to be JSON text of one object in one
    of the two shapes: every column an array, or a batch call's with its shared values once."""
    bodies = []
    for r in cap.logs:
        if r.log_record.event_name == n.EVENT_RECORDS:
            body = r.log_record.body
            assert isinstance(body, str)
            decoded = orjson.loads(body)
            if isinstance(decoded["prediction_id"], str):
                decoded = _expanded(decoded)
            assert list(decoded) == list(COLUMNS)
            assert len({len(column) for column in decoded.values()}) == 1
            bodies.append(decoded)
    return bodies


def _expanded(body: dict[str, Any]) -> dict[str, list[Any]]:
    """A shared-value body as arrays: row i is "<call>/<row[i]>"; a single value is every row's."""
    call, hashes = body["prediction_id"], body["payload_hash"]
    rows = body.get("row", list(range(len(hashes))))
    assert isinstance(hashes, list) and len(rows) == len(hashes) >= SHARED_AT
    columns: dict[str, list[Any]] = {"prediction_id": [f"{call}/{i}" for i in rows]}
    for name in COLUMNS[1:]:
        value = body[name]
        columns[name] = value if isinstance(value, list) else [value] * len(rows)
    return columns


def _column(bodies: list[dict[str, list[Any]]], name: str) -> list[Any]:
    return [value for body in bodies for value in body[name]]


def _in_share(payload_hash: str) -> bool:
    return int(payload_hash, 16) < int(SHARE * 2**64)


# ---------------------------------------------------------------- ml.prediction.records


def test_single_row_records_are_json_text_with_one_entry_per_prediction() -> None:
    """Every column of the JSON object holds one value per call, in call order."""
    with capture() as c:
        calls = []
        for i in range(40):
            predict({"x": i / 40}, tenant=("acme", "globex")[i % 2])
            p = modeltel.current_prediction()
            assert p is not None
            calls.append(p)
        bodies = _record_bodies(c)
    assert _column(bodies, "prediction_id") == [p.prediction_id for p in calls]
    assert _column(bodies, "payload_hash") == [p.payload_hash for p in calls]
    assert _column(bodies, "tenant") == ["acme", "globex"] * 20
    assert _column(bodies, "score") == [i / 40 for i in range(40)]
    assert _column(bodies, "decision") == ["hi" if i / 40 > 0.5 else "lo" for i in range(40)]
    assert set(_column(bodies, "outcome")) == {"ok"}
    assert all(type(t) is int and t > 0 for t in _column(bodies, "time_unix_nano"))
    assert all(d > 0 for d in _column(bodies, "duration_s"))
    assert _column(bodies, "cost") == [0.0] * 40


def test_batch_and_single_rows_with_a_share_of_records() -> None:
    """prediction_records < 1: the JSON holds exactly the kept predictions, batch rows by row id."""
    matrix = np.random.default_rng(5).uniform(0, 1, (300, 2))
    with capture(prediction_records=SHARE) as c:
        singles = []
        for i in range(100):
            predict({"x": i / 100})
            p = modeltel.current_prediction()
            assert p is not None
            singles.append(p)
        score_batch(matrix)
        batch = modeltel.current_prediction()
        assert batch is not None
        bodies = _record_bodies(c)
        rows = c.prediction_rows()
    kept_singles = [p for p in singles if _in_share(p.payload_hash)]
    kept_rows = [i for i, h in enumerate(batch.row_hashes) if _in_share(h)]
    assert 10 < len(kept_singles) < 60 and 50 < len(kept_rows) < 150
    expected_ids = [p.prediction_id for p in kept_singles] + [f"{batch.prediction_id}/{i}" for i in kept_rows]
    assert sorted(_column(bodies, "prediction_id")) == sorted(expected_ids)
    by_id = {row["prediction_id"]: row for row in rows}
    assert [by_id[f"{batch.prediction_id}/{i}"]["score"] for i in kept_rows] == matrix[kept_rows, 0].tolist()
    assert [by_id[f"{batch.prediction_id}/{i}"]["payload_hash"] for i in kept_rows] == [
        batch.row_hashes[i] for i in kept_rows
    ]
    assert {by_id[p.prediction_id]["score"] for p in kept_singles} <= {i / 100 for i in range(100)}
    assert len(rows) == len(expected_ids)


def _records_logs(cap: Capture) -> list[dict[str, Any]]:
    return [orjson.loads(r.log_record.body) for r in cap.logs if r.log_record.event_name == n.EVENT_RECORDS]


def test_a_large_batch_writes_its_shared_values_once() -> None:
    """At SHARED_AT rows a batch call has a record of its own: the call's id, its rows' hashes and
    scores, and the tenant, outcome, time, duration and cost once; smaller batches join the
    single-row record's columns."""
    big = np.random.default_rng(9).uniform(0, 1, (SHARED_AT, 2))
    with capture(cost_per_1k=2.0) as c:
        predict({"x": 0.3}, tenant="globex")
        score_batch(big[: SHARED_AT - 1])
        small = modeltel.current_prediction()
        score_batch(big)
        large = modeltel.current_prediction()
        assert small is not None and large is not None
        merged, shared = _records_logs(c)
    assert len(merged["prediction_id"]) == SHARED_AT  # the single call and the small batch's rows
    assert merged["prediction_id"][1:] == [f"{small.prediction_id}/{i}" for i in range(SHARED_AT - 1)]
    assert shared["prediction_id"] == large.prediction_id and "row" not in shared
    assert shared["payload_hash"] == list(large.row_hashes)
    assert shared["score"] == big[:, 0].tolist()
    assert (shared["tenant"], shared["decision"], shared["outcome"]) == ("", None, "ok")  # no tenant=
    assert shared["cost"] == pytest.approx(2.0 / 1000)
    assert type(shared["time_unix_nano"]) is int and shared["duration_s"] > 0


def test_a_share_of_a_large_batch_lists_its_rows() -> None:
    """With prediction_records < 1 the shared-value body lists the rows it kept in "row"."""
    matrix = np.random.default_rng(5).uniform(0, 1, (1000, 2))
    with capture(prediction_records=SHARE) as c:
        score_batch(matrix)
        p = modeltel.current_prediction()
        assert p is not None
        (body,) = _records_logs(c)
        rows = c.prediction_rows()
    kept = [i for i, h in enumerate(p.row_hashes) if _in_share(h)]
    assert body["row"] == kept and len(kept) >= SHARED_AT
    assert body["payload_hash"] == [p.row_hashes[i] for i in kept]
    assert [r["prediction_id"] for r in rows] == [f"{p.prediction_id}/{i}" for i in kept]
    assert [r["score"] for r in rows] == matrix[kept, 0].tolist()
    assert {r["tenant"] for r in rows} == {""} and {r["outcome"] for r in rows} == {"ok"}


def test_no_body_holds_more_than_body_rows() -> None:
    """A batch call past BODY_ROWS kept rows is split into bodies of at most BODY_ROWS rows, in
    order: the first lists no "row" (rows 0..n-1), the others list theirs; so are single-row
    predictions past BODY_ROWS. Every row is read back once, as written."""
    rows = 2 * BODY_ROWS + 10
    matrix = np.random.default_rng(4).uniform(0, 1, (rows, 2))
    with capture() as c:
        score_batch(matrix)
        batch = modeltel.current_prediction()
        assert batch is not None
        bodies = _records_logs(c)
        read = c.prediction_rows()
    assert [len(b["payload_hash"]) for b in bodies] == [BODY_ROWS, BODY_ROWS, 10]
    assert "row" not in bodies[0] and bodies[1]["row"] == list(range(BODY_ROWS, 2 * BODY_ROWS))
    assert {b["prediction_id"] for b in bodies} == {batch.prediction_id}
    assert [r["prediction_id"] for r in read] == [f"{batch.prediction_id}/{i}" for i in range(rows)]
    assert [r["payload_hash"] for r in read] == list(batch.row_hashes)
    assert [r["score"] for r in read] == matrix[:, 0].tolist()

    with capture() as c:
        for i in range(BODY_ROWS + 1):
            predict({"x": i / 10}, tenant="acme")
        sizes = [len(b["prediction_id"]) for b in _records_logs(c)]
        assert len(c.prediction_rows()) == BODY_ROWS + 1
    assert max(sizes) <= BODY_ROWS and sum(sizes) == BODY_ROWS + 1  # how the thread's takes fell


@needs_duckdb
def test_non_finite_and_missing_scores_are_null_and_read_as_missing(tmp_path: Path) -> None:
    """NaN, infinities and outputs without a score are written null: no NaN token in the JSON."""
    outputs = [0.25, *NON_FINITE, None, "no score"]
    with capture() as c:
        for out in outputs:
            raw_output({"out": out})
        bodies = _record_bodies(c)
        text = "".join(r.log_record.body for r in c.logs if r.log_record.event_name == n.EVENT_RECORDS)
        rows = c.prediction_rows(model="raw")
        OtlpJsonFileLogExporter(tmp_path).export(c.logs)
    assert _column(bodies, "score") == [0.25, None, None, None, None, None]
    assert "NaN" not in text and "Infinity" not in text
    assert [row["score"] for row in rows] == [0.25, None, None, None, None, None]
    for convert in (False, True):
        con = connect()
        load_telemetry(con, tmp_path, convert=convert)
        found = con.execute("SELECT score FROM predictions ORDER BY prediction_id").fetchall()
        scores = [r[0] for r in found]
        assert scores == [0.25, None, None, None, None, None], convert


def test_non_finite_batch_scores_are_null_in_records_and_features(tmp_path: Path) -> None:
    """A batch's NaN or infinite scores: null in the records and in the feature record's "score"."""
    matrix = np.array([[0.5, 1.0], [math.nan, 2.0], [math.inf, 3.0], [-math.inf, 4.0]])
    with capture(feature_sample_rate=1.0) as c:
        score_batch(matrix)
        p = modeltel.current_prediction()
        assert p is not None
        records = c.prediction_rows()
        features = c.feature_rows()
        split = c.feature_records()
        (log,) = [r.log_record for r in c.logs if r.log_record.event_name == n.EVENT_FEATURES]
        OtlpJsonFileLogExporter(tmp_path).export(c.logs)
    assert isinstance(log.body, str) and orjson.loads(log.body)["score"] == [0.5, None, None, None]
    assert [r["score"] for r in records] == [0.5, None, None, None]
    assert [r["score"] for r in features] == [0.5, None, None, None]
    assert [dict(r.log_record.attributes or {}).get(n.SCORE) for r in split] == [0.5, None, None, None]
    assert [r["score"] for r in feature_records(tmp_path, "js")] == [0.5, None, None, None]
    # The feature values stay as written before: not-finite floats as text.
    assert [r["features"]["x"] for r in features] == [0.5, "NaN", "Infinity", "-Infinity"]


def test_records_json_survives_text_json_cannot_hold() -> None:
    """A tenant with an unpaired surrogate is written with a replacement, not dropped with its rows."""
    with capture() as c:
        predict({"x": 0.1}, tenant="bad\udcff")
        predict({"x": 0.2}, tenant="fine")
        rows = c.prediction_rows()
    assert [r["tenant"] for r in rows] == ["bad?", "fine"]
    assert [r["score"] for r in rows] == [0.1, 0.2]


# ---------------------------------------------------------------- old map-shaped bodies


CALL_OLD, CALL_NEW = "old-call", "new-call"
ROWS = [0, 3]
FEATURES = {"amount": [1.5, 2.5], "country": ["NL", None]}
HASHES = ["00000000000000aa", "00000000000000bb"]
VIOLATIONS = [["amount:range"], []]


def _batch_feature_body(call: str, scores: list[float | None]) -> dict[str, Any]:
    return {
        "features": FEATURES,
        "row": ROWS,
        "prediction_id": [f"{call}/{i}" for i in ROWS],
        "payload_hash": HASHES,
        "score": scores,
        "violations": VIOLATIONS,
    }


def _records_body(call: str, scores: list[float | None]) -> dict[str, list[Any]]:
    size = len(ROWS)
    return {
        "prediction_id": [f"{call}/{i}" for i in ROWS],
        "payload_hash": HASHES,
        "tenant": ["acme"] * size,
        "score": scores,
        "decision": ["approve", None],
        "outcome": ["ok"] * size,
        "time_unix_nano": [1_700_000_000_000_000_000 + i for i in range(size)],
        "duration_s": [0.001] * size,
        "cost": [0.5] * size,
    }


def _feature_attributes(call: str) -> dict[str, Any]:
    return {
        n.MODEL_NAME: "legacy",
        n.MODEL_VERSION: "1",
        n.TENANT: "acme",
        n.PREDICTION_ID: call,
        n.OUTCOME: "ok",
        n.BATCH_SIZE: 5,
        n.CONTRACT_VIOLATIONS: ["amount:range"],
    }


@contextmanager
def _file_logger(folder: Path) -> Iterator[Any]:
    """An SDK logger writing through modeltel's OTLP-JSON file exporter into ``folder``."""
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(OtlpJsonFileLogExporter(folder)))
    try:
        yield provider.get_logger("modeltel")
    finally:
        provider.shutdown()


def _predictions(con: Any) -> list[tuple[Any, ...]]:
    """The loop's predictions table, by prediction id."""
    return con.execute(
        "SELECT prediction_id, payload_hash, tenant, score, decision, outcome, ts, duration_s, cost "
        "FROM predictions ORDER BY prediction_id"
    ).fetchall()


@pytest.fixture
def both_shapes(tmp_path: Path) -> Path:
    """The same batch call written twice by the SDK's log pipeline and modeltel's file exporter:
    with map bodies, as versions before JSON text wrote them, and with JSON text bodies."""
    records_attrs = {n.MODEL_NAME: "legacy", n.MODEL_VERSION: "1"}
    with _file_logger(tmp_path) as logger:
        for call, as_json in ((CALL_OLD, False), (CALL_NEW, True)):
            scores = [0.75, math.nan] if not as_json else [0.75, None]
            bodies: list[Any] = [_records_body(call, scores), _batch_feature_body(call, scores)]
            if as_json:
                bodies = [orjson.dumps(b).decode() for b in bodies]
            logger.emit(event_name=n.EVENT_RECORDS, body=bodies[0], attributes=records_attrs, timestamp=10)
            logger.emit(
                event_name=n.EVENT_FEATURES,
                body=bodies[1],
                attributes=_feature_attributes(call),
                timestamp=10,
            )
    return tmp_path


def _same_rows(rows: list[dict[str, Any]], key: str) -> None:
    """Rows of the old call equal the new call's, ids aside; the old NaN score is the new None."""
    old = [{**r, key: r[key].replace(CALL_OLD, "")} for r in rows if r[key].startswith(CALL_OLD)]
    new = [{**r, key: r[key].replace(CALL_NEW, "")} for r in rows if r[key].startswith(CALL_NEW)]
    assert len(old) == len(new) == len(ROWS)
    assert math.isnan(old[1]["score"]) and new[1]["score"] is None
    assert [{**r, "score": None} for r in old] == [{**r, "score": None} for r in new]


def test_replay_reads_both_shapes(both_shapes: Path) -> None:
    rows = list(feature_records(both_shapes, "legacy"))
    _same_rows(rows, "prediction_id")
    assert rows[0] == {
        "features": {"amount": 1.5, "country": "NL"},
        "score": 0.75,
        "prediction_id": f"{CALL_OLD}/0",
        "tenant": "acme",
        "payload_hash": HASHES[0],
    }


def test_summary_counts_both_shapes(both_shapes: Path) -> None:
    (total,) = [r for r in summarize(both_shapes).rows if r.tenant is None]
    assert total.feature_records == 2 * len(ROWS)


@needs_duckdb
@pytest.mark.parametrize("convert", [False, True], ids=["sql", "converted"])
def test_loop_loads_both_shapes(both_shapes: Path, convert: bool) -> None:
    con = connect()
    load_telemetry(con, both_shapes, convert=convert)
    features = [
        (*r[:4], r[4] or [])  # an empty list crossed the old OTLP map as no value: NULL
        for r in con.execute(
            "SELECT prediction_id, feature, num, str, violations FROM feature_values ORDER BY ALL"
        ).fetchall()
    ]
    expected = [
        ("{}/0", "amount", 1.5, "1.5", ["amount:range"]),
        ("{}/0", "country", None, "NL", ["amount:range"]),
        ("{}/3", "amount", 2.5, "2.5", []),
        ("{}/3", "country", None, None, []),
    ]
    assert features == [(pid.format(call), *rest) for call in (CALL_NEW, CALL_OLD) for pid, *rest in expected]
    predictions = _predictions(con)
    new, old = predictions[:2], predictions[2:]
    assert [r[0] for r in new] == [f"{CALL_NEW}/{i}" for i in ROWS]
    assert (
        new[0][1:]
        == old[0][1:]
        == (HASHES[0], "acme", 0.75, "approve", "ok", 1_700_000_000_000_000_000, 0.001, 0.5)
    )
    assert new[1][3] is None and math.isnan(old[1][3])
    assert new[1][4:] == old[1][4:] == (None, "ok", 1_700_000_000_000_000_001, 0.001, 0.5)


def test_capture_reads_both_shapes() -> None:
    """Capture's helpers decode JSON text and read map bodies alike."""
    with capture() as c:
        logger = c.runtime.otel_logger
        for call, as_json in ((CALL_OLD, False), (CALL_NEW, True)):
            scores = [0.75, None]
            bodies: list[Any] = [_records_body(call, scores), _batch_feature_body(call, scores)]
            if as_json:
                bodies = [orjson.dumps(b).decode() for b in bodies]
            records_attrs = {n.MODEL_NAME: "legacy", n.MODEL_VERSION: "1"}
            logger.emit(event_name=n.EVENT_RECORDS, body=bodies[0], attributes=records_attrs)
            logger.emit(event_name=n.EVENT_FEATURES, body=bodies[1], attributes=_feature_attributes(call))
        records = c.prediction_rows(model="legacy")
        features = c.feature_rows()
        split = c.feature_records()
    assert records[:2] == [
        {**r, "prediction_id": r["prediction_id"].replace(CALL_NEW, CALL_OLD)} for r in records[2:]
    ]
    assert [r["prediction_id"] for r in features] == [
        f"{call}/{i}" for call in (CALL_OLD, CALL_NEW) for i in ROWS
    ]
    assert [r["features"] for r in features[:2]] == [r["features"] for r in features[2:]]
    assert [r["violations"] for r in features] == VIOLATIONS * 2
    assert [r.log_record.body for r in split[:2]] == [r.log_record.body for r in split[2:]]
    assert split[0].log_record.body == {"features": {"amount": 1.5, "country": "NL"}}


# ---------------------------------------------------------------- the shared-value shape

CALL_SHARED = "shared-call"


def _shared_body(call: str, scores: list[float | None]) -> dict[str, Any]:
    """``_records_body(call, scores)`` with its shared values written once, as a large batch's."""
    return {
        "prediction_id": call,
        "row": ROWS,
        "payload_hash": HASHES,
        "tenant": "acme",
        "score": scores,
        "decision": ["approve", None],
        "outcome": "ok",
        "time_unix_nano": [1_700_000_000_000_000_000 + i for i in range(len(ROWS))],
        "duration_s": 0.001,
        "cost": 0.5,
    }


@pytest.fixture
def shared_and_arrays(tmp_path: Path) -> Path:
    """The same batch call's records in the two JSON shapes, through modeltel's file exporter."""
    attrs = {n.MODEL_NAME: "legacy", n.MODEL_VERSION: "1"}
    with _file_logger(tmp_path) as logger:
        for body in (_records_body(CALL_NEW, [0.75, None]), _shared_body(CALL_SHARED, [0.75, None])):
            logger.emit(
                event_name=n.EVENT_RECORDS, body=orjson.dumps(body).decode(), attributes=attrs, timestamp=10
            )
    return tmp_path


@needs_duckdb
@pytest.mark.parametrize("convert", [False, True], ids=["sql", "converted"])
def test_loop_reads_the_shared_value_shape_as_the_arrays(shared_and_arrays: Path, convert: bool) -> None:
    con = connect()
    load_telemetry(con, shared_and_arrays, convert=convert)
    predictions = _predictions(con)
    arrays, shared = predictions[:2], predictions[2:]
    assert [r[0] for r in arrays] == [f"{CALL_NEW}/{i}" for i in ROWS]
    assert [r[0] for r in shared] == [f"{CALL_SHARED}/{i}" for i in ROWS]
    assert [r[1:] for r in shared] == [r[1:] for r in arrays]
    assert shared[0][1:] == (HASHES[0], "acme", 0.75, "approve", "ok", 1_700_000_000_000_000_000, 0.001, 0.5)


@needs_duckdb
@pytest.mark.parametrize("convert", [False, True], ids=["sql", "converted"])
def test_loop_derives_ids_for_every_row_without_a_row_list(tmp_path: Path, convert: bool) -> None:
    """A body without "row" holds rows 0..n-1; a score written once (null) is every row's."""
    body = {**_shared_body(CALL_SHARED, [0.0, 0.0]), "score": None, "time_unix_nano": 7}
    del body["row"]
    with _file_logger(tmp_path) as logger:
        logger.emit(
            event_name=n.EVENT_RECORDS, body=orjson.dumps(body).decode(), attributes={n.MODEL_NAME: "m"}
        )
    con = connect()
    load_telemetry(con, tmp_path, convert=convert)
    found = con.execute("SELECT prediction_id, score, ts FROM predictions ORDER BY ALL").fetchall()
    assert found == [(f"{CALL_SHARED}/0", None, 7), (f"{CALL_SHARED}/1", None, 7)]


def test_capture_reads_the_shared_value_shape_as_the_arrays() -> None:
    with capture() as c:
        attrs = {n.MODEL_NAME: "legacy", n.MODEL_VERSION: "1"}
        for body in (_records_body(CALL_NEW, [0.75, None]), _shared_body(CALL_SHARED, [0.75, None])):
            c.runtime.otel_logger.emit(
                event_name=n.EVENT_RECORDS, body=orjson.dumps(body).decode(), attributes=attrs
            )
        rows = c.prediction_rows(model="legacy")
    assert [r["prediction_id"] for r in rows[2:]] == [f"{CALL_SHARED}/{i}" for i in ROWS]
    assert [{**r, "prediction_id": None} for r in rows[2:]] == [
        {**r, "prediction_id": None} for r in rows[:2]
    ]


@needs_duckdb
@pytest.mark.parametrize("convert", [False, True], ids=["sql", "converted"])
def test_loop_skips_records_text_that_is_not_json(shared_and_arrays: Path, convert: bool) -> None:
    """A records body that is not JSON adds no rows and stops nothing: the others still load."""
    with _file_logger(shared_and_arrays) as logger:
        for text in ('{"prediction_id": "cut', "plain text", "[1, 2]"):
            logger.emit(event_name=n.EVENT_RECORDS, body=text, attributes={n.MODEL_NAME: "m"})
    con = connect()
    load_telemetry(con, shared_and_arrays, convert=convert)
    (count,) = con.execute("SELECT count(*) FROM predictions").fetchone() or (None,)
    assert count == 2 * len(ROWS)
