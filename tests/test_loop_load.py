"""Loading OTLP-JSON logs: the converted (Parquet) path gives exactly the SQL path's tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from modeltel.loop import _cache
from modeltel.loop._cache import CACHE_DIR, converted
from modeltel.loop._engine import connect
from modeltel.loop._join import build_joined
from modeltel.loop._load import load_labels, load_telemetry
from modeltel.loop._synthetic import (
    append_records,
    feature_record,
    generate,
    outcome_record,
    prediction_record,
)

DAY = 86_400 * 1_000_000_000
T0 = 1_704_067_200 * 1_000_000_000 + 123_456_789  # odd nanoseconds: a DOUBLE round trip would show
TABLES = ("predictions", "model_info", "outcomes", "feature_values")


def _odd_records(kvlist: bool = False) -> list[dict[str, Any]]:
    """Records in every shape the SQL path accepts: unscored rows, NaN, short and missing columns;
    bodies as JSON text, or (``kvlist``, ids starting with "k") as the OTLP maps written before."""
    k = "k" if kvlist else ""
    full: dict[str, list[Any]] = {
        "prediction_id": [f"{k}o-1", f"{k}o-2", f"{k}o-3", f"{k}o-4"],
        "payload_hash": ["h1", "h2", "h3", "h4"],
        "tenant": ["acme", None, 7, True],
        "score": [0.25, None, math.nan, math.inf],
        "decision": ["approve", "review", None, "approve"],
        "outcome": ["ok", "error", "ok", "ok"],
        "time_unix_nano": [T0, T0 + 1, None, 2.5e18],
        "duration_s": [0.001, 2, False, -math.inf],
        "cost": [0.5, 0.5, 0.5, 0.5],
    }
    short: dict[str, list[Any]] = {
        "prediction_id": [f"{k}s-1", f"{k}s-2", f"{k}s-3"],
        "score": [1, 0.5],
        "time_unix_nano": [T0 + 7],
    }
    targets = {"owner": "risk", "latency_budget_ms": 5}
    return [
        prediction_record("fraud", "3", full, targets=targets, time_ns=T0, kvlist=kvlist),
        prediction_record("fraud", "3", short, time_ns=T0 + DAY, kvlist=kvlist),
        prediction_record("fraud", "3", {}, time_ns=T0, kvlist=kvlist),
        feature_record(
            "fraud",
            "3",
            {"amount": 12.5, "country": "NL"},
            time_ns=T0,
            prediction_id="o-1",
            tenant="acme",
            violations=["amount:range"],
        ),
        outcome_record(1, at_ns=T0 + DAY, prediction_id="o-1"),
        outcome_record(True, at_ns=T0 + DAY, payload_hash="h2", model="fraud"),
        outcome_record(0.5, at_ns=T0 + 2 * DAY, prediction_id="s-1"),
    ]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    generate(tmp_path, 5_000, batch=700, days=10)
    append_records(tmp_path, _odd_records(), per_line=3)
    append_records(tmp_path, _odd_records(kvlist=True), per_line=3)
    return tmp_path


def _tables(folder: Path, *, convert: bool) -> dict[str, list[tuple[Any, ...]]]:
    con = connect()
    try:
        load_telemetry(con, folder, convert=convert)
        load_labels(con, folder / "labels.parquet")
        build_joined(con, as_of=T0 + 30 * DAY, maturation=DAY, period=DAY)
        return {t: _rows(con, t) for t in (*TABLES, "joined")}
    finally:
        con.close()


def _rows(con: Any, table: str) -> list[tuple[Any, ...]]:
    # NaN != NaN, so rows are compared through their text form.
    return [tuple(map(repr, row)) for row in con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()]


def test_converted_logs_load_exactly_what_the_sql_path_loads(folder: Path) -> None:
    fast, slow = _tables(folder, convert=True), _tables(folder, convert=False)
    assert len(fast["predictions"]) == 5_000 + 2 * (4 + 3)
    for table in (*TABLES, "joined"):
        assert fast[table] == slow[table], table


def test_nanosecond_times_are_exact(folder: Path) -> None:
    con = connect()
    load_telemetry(con, folder)
    times = dict(
        con.execute(
            "SELECT prediction_id, ts FROM predictions WHERE prediction_id SIMILAR TO 'k?[os]-.'"
        ).fetchall()
    )
    expected = {
        "o-1": T0,
        "o-2": T0 + 1,
        "o-3": T0,
        "o-4": 2_500_000_000_000_000_000,
        "s-1": T0 + 7,
        "s-2": T0 + DAY,
        "s-3": T0 + DAY,
    }
    assert times == {**expected, **{f"k{pid}": ts for pid, ts in expected.items()}}


@pytest.mark.parametrize("convert", [False, True], ids=["sql", "converted"])
def test_values_of_both_body_shapes(folder: Path, convert: bool) -> None:
    """JSON text and the older OTLP maps load alike, except that JSON has no NaN or infinity:
    a non-finite score (or duration) was written as null, read as missing."""
    con = connect()
    load_telemetry(con, folder, convert=convert)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT prediction_id, tenant, score, decision, outcome, duration_s, cost FROM predictions "
            "WHERE prediction_id SIMILAR TO 'k?[os]-.'"
        ).fetchall()
    }
    assert rows["o-1"] == rows["ko-1"] == ("acme", 0.25, "approve", "ok", 0.001, 0.5)
    assert rows["o-2"] == rows["ko-2"] == ("", None, "review", "error", 2.0, 0.5)
    assert rows["o-3"] == ("7", None, None, "ok", 0.0, 0.5)
    assert rows["ko-3"][0] == "7" and math.isnan(rows["ko-3"][1])
    assert rows["o-4"] == ("true", None, "approve", "ok", None, 0.5)
    assert rows["ko-4"] == ("true", math.inf, "approve", "ok", -math.inf, 0.5)
    assert rows["s-1"] == rows["ks-1"] == ("", 1.0, None, None, None, 0.0)


def test_worker_processes_split_a_file_by_lines(folder: Path) -> None:
    logs = [folder / "logs.jsonl"]
    with converted(logs, chunk_bytes=50_000, workers=2) as (tables, other, _):
        assert len(tables) > 2
        split = _loaded(tables, other)
    with converted(logs, chunk_bytes=1 << 40, workers=1) as (tables, other, _):
        assert len(tables) == 1
        assert _loaded(tables, other) == split


def _loaded(tables: list[Path], other: list[Path]) -> tuple[list[tuple[Any, ...]], list[bytes]]:
    con = connect()
    listing = "[" + ", ".join(f"'{p}'" for p in tables) + "]"
    rows = [
        tuple(map(repr, r))
        for r in con.execute(f"SELECT * FROM read_parquet({listing}) ORDER BY ALL").fetchall()
    ]
    con.close()
    return rows, sorted(line for path in other for line in path.read_bytes().splitlines())


def test_a_large_file_is_cached_and_reconverted_when_it_changes(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs, cached = [folder / "logs.jsonl"], folder / CACHE_DIR / "logs.jsonl"
    with converted(logs, cache_min_bytes=0) as (first, _, _):
        pass
    (entry,) = cached.iterdir()
    assert first[0].parent == entry

    def no_conversion(jobs: list[Any], workers: int) -> None:
        assert not jobs, "a cached file was converted again"

    monkeypatch.setattr(_cache, "convert_all", no_conversion)
    with converted(logs, cache_min_bytes=0) as (again, _, _):
        assert again == first
    monkeypatch.undo()

    append_records(folder, [outcome_record(1, at_ns=T0, prediction_id="late")])
    with converted(logs, cache_min_bytes=0) as (after, _, _):
        (fresh,) = cached.iterdir()
        assert fresh != entry and after[0].parent == fresh


def test_a_small_file_is_converted_without_a_cache(folder: Path) -> None:
    with converted([folder / "logs.jsonl"]) as (tables, _, _):
        assert tables and CACHE_DIR not in str(tables[0])
    assert not (folder / CACHE_DIR).exists()


@pytest.mark.parametrize("convert", [False, True], ids=["sql", "converted"])
def test_lines_that_are_not_json_are_skipped_and_counted(folder: Path, convert: bool) -> None:
    """A torn line mid-file and a truncated last line are skipped and counted per file; every
    other record loads as from the intact file (main: ValueError, nothing loaded)."""
    intact = _tables(folder, convert=convert)
    logs = folder / "logs.jsonl"
    lines = logs.read_bytes().splitlines(keepends=True)
    torn = b"".join([*lines[:3], lines[3][:50] + b"\n", *lines[3:], lines[-1][: len(lines[-1]) // 2]])
    logs.write_bytes(torn)

    con = connect()
    skipped = load_telemetry(con, folder, convert=convert)
    con.close()

    assert skipped == {"logs.jsonl": 2}
    assert _tables(folder, convert=convert) == intact
