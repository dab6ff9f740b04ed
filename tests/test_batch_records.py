"""Batch calls: per-row hashes, sampled rows, one ml.features record per call, per-row records.

Every reader of ``ml.features`` (capture helpers, replay, summary, the loop's DuckDB load, plain
and converted) sees a batch's sampled rows one by one, as it sees single calls.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from pydantic import BaseModel, Field

import modeltel
from hash_reference import recipe2
from modeltel import _names as n
from modeltel._export.otlp_json import OtlpJsonFileLogExporter
from modeltel.cli.replay import feature_records
from modeltel.cli.summary import summarize
from modeltel.loop._engine import connect
from modeltel.loop._load import load_telemetry
from modeltel.loop._synthetic import append_records, feature_batch_record, feature_record
from modeltel.testing import Capture, capture

# The loop needs its extra; the oldest-versions CI run installs the core only.
needs_duckdb = pytest.mark.skipif(importlib.util.find_spec("duckdb") is None, reason="needs modeltel[loop]")

NAMES = ["zeta", "alpha", "mid"]  # not sorted: the hash orders values by name
MAX_ROWS = 100  # MAX_ROWS_PER_CALL


def _matrix(rows: int, seed: int = 3) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).uniform(0, 1, (rows, len(NAMES)))


def _as_rows(matrix: np.ndarray[Any, Any]) -> list[dict[str, float]]:
    return [dict(zip(NAMES, row, strict=True)) for row in matrix.tolist()]


def _records_rows(cap: Capture) -> list[dict[str, Any]]:
    return cap.prediction_rows()


def _feature_logs(cap: Capture) -> list[Any]:
    return [r.log_record for r in cap.logs if r.log_record.event_name == n.EVENT_FEATURES]


def _scorer(**options: Any) -> Any:
    @modeltel.instrument(model="bm", version="1", tenant="tenant", batch=True, **options)
    def score(rows: Any, tenant: str = "acme") -> Any:
        if isinstance(rows, np.ndarray):
            return rows[:, 1] if rows.ndim == 2 and rows.shape[1] > 1 else np.full(len(rows), 0.5)
        return [0.5] * len(rows)

    return score


# ---------------------------------------------------------------- hashes


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m,  # float64, columns out of name order
        lambda m: np.asfortranarray(m),
        lambda m: m.astype(np.float32),
        lambda m: (m * 100).astype(np.int64),
        lambda m: m > 0.5,
        lambda m: pd.DataFrame(m, columns=NAMES),
        lambda m: _as_rows(m),
    ],
    ids=["float64", "fortran", "float32", "int64", "bool", "dataframe", "dicts"],
)
def test_each_row_hashes_like_the_row_alone(make: Any) -> None:
    """Whatever the batch type, row i's hash is payload_hash(row i as a dict), bit for bit."""
    features = make(_matrix(257))
    score = _scorer(columns=NAMES)
    with capture():
        score(features)
        p = modeltel.current_prediction()
    assert p is not None
    plain = pd.DataFrame(features).to_numpy() if not isinstance(features, list) else None
    expected = [
        modeltel.payload_hash(row if plain is None else dict(zip(NAMES, plain[i].tolist(), strict=True)))
        for i, row in enumerate(features if plain is None else range(len(plain)))
    ]
    assert list(p.row_hashes) == expected
    assert p.payload_hash == expected[0]


def test_keyed_hashes_match_single_rows() -> None:
    """With a hash key, batch rows use the same keyed hash as single calls."""
    matrix = _matrix(5)
    score = _scorer(columns=NAMES)
    with capture(hash_key="s3cret"):
        score(matrix)
        p = modeltel.current_prediction()
    assert p is not None
    assert list(p.row_hashes) == [modeltel.payload_hash(r, key="s3cret") for r in _as_rows(matrix)]
    assert list(p.row_hashes) != [modeltel.payload_hash(r) for r in _as_rows(matrix)]


def _mixed_rows(count: int) -> list[dict[str, Any]]:
    """Rows with a category, a number and an Optional number that is sometimes None."""
    values = np.random.default_rng(5).uniform(0, 1, count).tolist()
    return [
        {"zeta": v, "alpha": "DE" if v < 0.5 else "FR", "mid": None if v < 0.3 else int(v * 10)}
        for v in values
    ]


def _mixed_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([r[name] for r in rows], dtype=object) for name in NAMES}).astype(
        {"zeta": float}
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda rows: rows,
        lambda rows: _mixed_frame(rows),
        lambda rows: np.array([[r[name] for name in NAMES] for r in rows], dtype=object),
    ],
    ids=["dicts", "dataframe", "object-ndarray"],
)
def test_rows_with_categories_hash_like_the_row_alone(make: Any) -> None:
    """Batch rows with a category and an Optional feature (None in some rows): row i's hash is the
    hash the same row gets passed alone to a single-row predict, and recipe 2's."""
    rows = _mixed_rows(64)
    features = make(rows)
    score = _scorer(columns=NAMES)

    @modeltel.instrument(model="single", version="1")
    def single(row: dict[str, Any]) -> float:
        return 0.5

    alone = []
    with capture():
        score(features)
        p = modeltel.current_prediction()
        for row in rows:
            single(row)
            one = modeltel.current_prediction()
            assert one is not None
            alone.append(one.payload_hash)
    assert p is not None
    assert list(p.row_hashes) == alone == [recipe2(r) for r in rows]


# ---------------------------------------------------------------- sampling


def _sampled_rows(cap: Capture) -> list[int]:
    return [row["row"] for row in cap.feature_rows()]


def test_sampled_rows_are_the_rows_whose_hash_is_below_the_rate() -> None:
    """A row is sampled exactly when its 64-bit hash < rate x 2^64, as for a single call."""
    matrix = _matrix(400)
    score = _scorer(columns=NAMES)
    with capture(feature_sample_rate=0.25) as c:
        score(matrix)
        p = modeltel.current_prediction()
        sampled = _sampled_rows(c)
    assert p is not None
    expected = [i for i, h in enumerate(p.row_hashes) if int(h, 16) < int(0.25 * 2**64)]
    assert sampled == expected[:MAX_ROWS] and len(expected) > 40


@pytest.mark.parametrize(("rate", "expected"), [(1.0, list(range(MAX_ROWS))), (0.0, [])])
def test_rate_one_and_zero(rate: float, expected: list[int]) -> None:
    """Rate 1 samples the first 100 rows (the per-call cap); rate 0 none."""
    with capture(feature_sample_rate=rate) as c:
        _scorer(columns=NAMES)(_matrix(300))
        assert _sampled_rows(c) == expected


class Bounded(BaseModel):
    zeta: float = Field(le=1.0)
    alpha: float
    mid: float


def test_rows_breaking_the_contract_are_always_sampled_with_their_violations() -> None:
    """At rate 0, the bad rows are still sampled, each with its own violations."""
    matrix = _matrix(50)
    matrix[[7, 31], 0] = 5.0
    matrix[31, 2] = np.nan
    with capture(feature_sample_rate=0.0) as c:
        _scorer(columns=NAMES, contract=Bounded)(matrix)
        rows = c.feature_rows()
        (log,) = _feature_logs(c)
    assert [r["row"] for r in rows] == [7, 31]
    assert rows[0]["violations"] == ["zeta:range"]
    assert sorted(rows[1]["violations"]) == ["mid:non_finite", "zeta:range"]
    assert rows[1]["features"]["mid"] == "NaN"  # non-finite values are logged as text
    assert sorted(log.attributes[n.CONTRACT_VIOLATIONS]) == ["mid:non_finite", "zeta:range"]


# ---------------------------------------------------------------- the ml.features record


def test_one_columnar_feature_record_per_batch_call() -> None:
    """A batch call writes one ml.features record: a column per feature, per-row ids, hashes, scores."""
    matrix = _matrix(6)
    with capture(feature_sample_rate=1.0) as c:
        _scorer(columns=NAMES)(matrix, tenant="globex")
        p = modeltel.current_prediction()
        (log,) = _feature_logs(c)
    assert p is not None
    assert isinstance(log.body, str)  # JSON text: one OTLP string value, not an AnyValue per value
    assert orjson.loads(log.body) == {
        "features": {name: matrix[:, j].tolist() for j, name in enumerate(NAMES)},
        "row": list(range(6)),
        "prediction_id": [f"{p.prediction_id}/{i}" for i in range(6)],
        "payload_hash": list(p.row_hashes),
        "score": matrix[:, 1].tolist(),
    }
    assert dict(log.attributes or {}) == {
        n.MODEL_NAME: "bm",
        n.MODEL_VERSION: "1",
        n.PAYLOAD_HASH_RECIPE: 2,
        n.TENANT: "globex",
        n.PREDICTION_ID: p.prediction_id,
        n.OUTCOME: "ok",
        n.BATCH_SIZE: 6,
    }


def test_sensitive_features_are_left_out_of_batch_records() -> None:
    """sensitive= drops the column; a canary in it appears in no log."""
    rows = [{"email": f"canary-{i}@example.com", "amount": float(i)} for i in range(4)]
    with capture(feature_sample_rate=1.0) as c:
        _scorer(sensitive=["email"])(rows)
        everything = repr([(r.log_record.body, dict(r.log_record.attributes or {})) for r in c.logs])
        (log,) = _feature_logs(c)
    assert "canary" not in everything
    assert orjson.loads(log.body)["features"] == {"amount": [0.0, 1.0, 2.0, 3.0]}


def test_row_decisions_ride_along() -> None:
    """decision= on a batch gives each sampled row its own decision, in records and features."""
    matrix = _matrix(20)
    with capture(feature_sample_rate=1.0) as c:
        _scorer(columns=NAMES, decision=lambda s: "yes" if s > 0.5 else "no")(matrix)
        rows = c.feature_rows()
        records = _records_rows(c)
    expected = ["yes" if s > 0.5 else "no" for s in matrix[:, 1]]
    assert [r["decision"] for r in rows] == expected
    assert [r["decision"] for r in records] == expected


def test_a_batch_past_max_feature_bytes_is_split_and_oversized_rows_dropped() -> None:
    """Records stay within max_feature_bytes; a row that alone passes it is dropped and counted."""
    rows = [{"blob": "x" * 300, "i": float(i)} for i in range(10)]
    rows[4] = {"blob": "y" * 5_000, "i": 4.0}
    with capture(feature_sample_rate=1.0, max_feature_bytes=1_000) as c:
        _scorer()(rows)
        logs = _feature_logs(c)
        sampled = _sampled_rows(c)
        dropped = c.counter("modeltel.features.dropped", reason="too_large")
    assert len(logs) > 1
    assert sampled == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert dropped == 1


def test_feature_records_helper_splits_a_batch_into_per_row_records() -> None:
    """Capture.feature_records() gives one record per sampled row, shaped as a single call's."""
    matrix = _matrix(3)
    with capture(feature_sample_rate=1.0) as c:
        _scorer(columns=NAMES)(matrix)
        p = modeltel.current_prediction()
        records = c.feature_records()
    assert p is not None
    assert [r.log_record.body for r in records] == [{"features": row} for row in _as_rows(matrix)]
    first = dict(records[1].log_record.attributes or {})
    assert first[n.PAYLOAD_HASH] == p.row_hashes[1]
    assert first["ml.batch.row"] == 1 and first[n.SCORE] == matrix[1, 1]
    assert first[n.PREDICTION_ID] == p.prediction_id


# ---------------------------------------------------------------- prediction records


def test_every_batch_row_gets_a_record_with_its_row_id() -> None:
    """Records: one row per batch row, id '<call id>/<row>', the row's hash and score."""
    matrix = _matrix(3000)
    with capture() as c:
        _scorer(columns=NAMES)(matrix)
        p = modeltel.current_prediction()
        rows = _records_rows(c)
    assert p is not None
    assert [r["prediction_id"] for r in rows] == [f"{p.prediction_id}/{i}" for i in range(3000)]
    assert [r["payload_hash"] for r in rows] == list(p.row_hashes)
    assert [r["score"] for r in rows] == matrix[:, 1].tolist()
    assert {(r["tenant"], r["outcome"], r["decision"]) for r in rows} == {("acme", "ok", None)}


def test_a_share_of_records_keeps_each_rows_own_id() -> None:
    """prediction_records < 1 keeps the rows whose hash is in the share, under their own row ids."""
    matrix = _matrix(500)
    with capture(prediction_records=0.3) as c:
        _scorer(columns=NAMES)(matrix)
        p = modeltel.current_prediction()
        rows = _records_rows(c)
    assert p is not None
    kept = [i for i, h in enumerate(p.row_hashes) if int(h, 16) < int(0.3 * 2**64)]
    assert [r["prediction_id"] for r in rows] == [f"{p.prediction_id}/{i}" for i in kept]
    assert [r["payload_hash"] for r in rows] == [p.row_hashes[i] for i in kept]
    assert [r["score"] for r in rows] == matrix[kept, 1].tolist()


def test_row_ids_past_the_suffix_cache() -> None:
    """Ids stay '<call id>/<row>' for batches larger than the cached row suffixes."""
    matrix = _matrix(70_000)
    with capture() as c:
        _scorer(columns=NAMES)(matrix)
        p = modeltel.current_prediction()
        rows = _records_rows(c)
    assert p is not None
    assert [r["prediction_id"] for r in rows[-3:]] == [
        f"{p.prediction_id}/{i}" for i in range(69_997, 70_000)
    ]


def test_changing_the_outputs_after_the_call_does_not_change_the_records() -> None:
    """Scores and hashes are taken when the call ends, not when the records thread runs."""
    scores = np.array([0.1, 0.2, 0.3])

    @modeltel.instrument(model="bm", version="1", batch=True, columns=NAMES)
    def score(rows: Any) -> Any:
        return scores

    with capture() as c:
        score(_matrix(3))
        p = modeltel.current_prediction()
        assert p is not None
        hashes = list(p.row_hashes)
        scores[:] = 9.0
        p.row_hashes[0] = "changed"  # type: ignore[index]
        rows = _records_rows(c)
    assert [r["score"] for r in rows] == [0.1, 0.2, 0.3]
    assert [r["payload_hash"] for r in rows] == hashes


# ---------------------------------------------------------------- readers


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """OTLP-JSON written by the real exporter: one batch call (rows 2 and 5 break the contract),
    then one single call of the same model."""
    matrix = _matrix(8)
    matrix[[2, 5], 0] = 5.0
    score = _scorer(columns=NAMES, contract=Bounded)
    with capture(feature_sample_rate=0.0) as c:
        score(matrix, tenant="acme")
        p = modeltel.current_prediction()
        assert p is not None
        single = _single(c)
        OtlpJsonFileLogExporter(tmp_path).export(c.logs)
    tmp_path.joinpath("expected.txt").write_text(
        f"{p.prediction_id}\n{p.row_hashes[2]}\n{p.row_hashes[5]}\n{single}\n"
    )
    yield tmp_path


def _single(c: Capture) -> str:
    @modeltel.instrument(model="bm", version="1", tenant="tenant", contract=Bounded)
    def one(features: dict[str, float], tenant: str) -> float:
        return 0.5

    one({"zeta": 9.0, "alpha": 0.5, "mid": 0.5}, tenant="acme")
    p = modeltel.current_prediction()
    assert p is not None
    return p.prediction_id


def _expected(folder: Path) -> tuple[str, str, str, str]:
    call, hash2, hash5, single = folder.joinpath("expected.txt").read_text().split()
    return call, hash2, hash5, single


def test_replay_reads_a_batch_record_row_by_row(folder: Path) -> None:
    """Replay yields each sampled batch row with its own id, hash and features."""
    call, hash2, hash5, single = _expected(folder)
    records = list(feature_records(folder, "bm"))
    assert [(r["prediction_id"], r["payload_hash"]) for r in records[:2]] == [
        (f"{call}/2", hash2),
        (f"{call}/5", hash5),
    ]
    assert records[0]["features"]["zeta"] == 5.0 and records[0]["tenant"] == "acme"
    assert records[2]["prediction_id"] == single and records[2]["features"]["zeta"] == 9.0


def test_summary_counts_sampled_rows(folder: Path) -> None:
    """The summary's features column counts sampled predictions: two batch rows and one call."""
    (row, *_) = [r for r in summarize(folder).rows if r.tenant is None]
    assert row.feature_records == 3


@needs_duckdb
@pytest.mark.parametrize("convert", [False, True], ids=["sql", "converted"])
def test_loop_loads_a_batch_record_row_by_row(folder: Path, convert: bool) -> None:
    """feature_values gets a row per (sampled batch row, feature), with the row's id and violations."""
    call, _, _, single = _expected(folder)
    con = connect()
    load_telemetry(con, folder, convert=convert)
    rows = con.execute(
        "SELECT prediction_id, feature, num, violations FROM feature_values ORDER BY prediction_id, feature"
    ).fetchall()
    batch = [r for r in rows if r[0].startswith(call)]
    assert [(r[0], r[1]) for r in batch] == [(f"{call}/{i}", name) for i in (2, 5) for name in sorted(NAMES)]
    assert {r[0]: r[3] for r in batch} == {f"{call}/2": ["zeta:range"], f"{call}/5": ["zeta:range"]}
    assert [(r[1], r[2]) for r in rows if r[0] == single] == [("alpha", 0.5), ("mid", 0.5), ("zeta", 9.0)]
    ids = {r[0] for r in con.execute("SELECT prediction_id FROM predictions").fetchall()}
    assert {r[0] for r in batch} <= ids  # feature rows join the prediction records


@needs_duckdb
def test_loop_reads_synthetic_batch_and_legacy_per_row_records(tmp_path: Path) -> None:
    """The synthetic batch shape loads like the SDK's; older per-row batch records get row ids too."""
    legacy = feature_record("m", "1", {"x": 1.0}, time_ns=10, prediction_id="old")
    legacy["attributes"].append({"key": "ml.batch.row", "value": {"intValue": "4"}})
    batch = feature_batch_record(
        "m", "1", {0: {"x": 2.0}, 3: {"x": 3.0, "y": "b"}}, time_ns=20, prediction_id="new", batch_size=5
    )
    append_records(tmp_path, [legacy, batch])
    con = connect()
    load_telemetry(con, tmp_path, convert=False)
    rows = con.execute(
        "SELECT prediction_id, feature, num, str FROM feature_values ORDER BY prediction_id, feature"
    ).fetchall()
    assert rows == [
        ("new/0", "x", 2.0, "2.0"),
        ("new/0", "y", None, None),
        ("new/3", "x", 3.0, "3.0"),
        ("new/3", "y", None, "b"),
        ("old/4", "x", 1.0, "1.0"),
    ]
