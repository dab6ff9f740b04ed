"""Joining outcomes to predictions: late, never, twice, by hash, from files, and maturation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeltel.loop import EvaluateOptions, evaluate
from modeltel.loop._durations import format_instant
from modeltel.loop._engine import connect
from modeltel.loop._join import build_joined
from modeltel.loop._load import load_labels, load_telemetry
from modeltel.loop._synthetic import append_records, outcome_record, prediction_record

DAY = 86_400 * 1_000_000_000
DAY0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00Z
AS_OF = DAY0 + 8 * DAY
MATURATION = 7 * DAY
# prediction id -> (time, payload hash, score)
PREDICTIONS = {
    "p-ok": (DAY0, "h-ok", 0.9),
    "p-late": (DAY0, "h-late", 0.8),
    "p-never": (DAY0, "h-never", 0.2),
    "p-twice": (DAY0, "h-twice", 0.7),
    "p-hash": (DAY0, "h-shared", 0.3),
    "p-young": (DAY0 + 5 * DAY, "h-young", 0.6),
}


def _write(folder: Path) -> None:
    ids = list(PREDICTIONS)
    columns = {
        "prediction_id": ids,
        "payload_hash": [PREDICTIONS[i][1] for i in ids],
        "tenant": ["acme"] * len(ids),
        "score": [PREDICTIONS[i][2] for i in ids],
        "decision": ["approve"] * len(ids),
        "outcome": ["ok"] * len(ids),
        "time_unix_nano": [PREDICTIONS[i][0] for i in ids],
        "duration_s": [0.001] * len(ids),
        "cost": [0.0] * len(ids),
    }
    outcomes = [
        outcome_record(1, at_ns=DAY0 + DAY, prediction_id="p-ok"),
        outcome_record(1, at_ns=DAY0 + 10 * DAY, prediction_id="p-late"),  # after as_of
        outcome_record(1, at_ns=DAY0 + 2 * DAY, prediction_id="p-twice"),  # later, written first
        outcome_record(0, at_ns=DAY0 + 1 * DAY, prediction_id="p-twice"),
        outcome_record(0, at_ns=DAY0 + DAY, payload_hash="h-shared"),
        outcome_record(1, at_ns=DAY0 + 6 * DAY, prediction_id="p-young"),
    ]
    append_records(folder, [prediction_record("fraud", "1", columns), *outcomes])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write(tmp_path)
    return tmp_path


@pytest.fixture
def con(folder: Path) -> Iterator[Any]:
    connection = connect()
    load_telemetry(connection, folder)
    yield connection
    connection.close()


def _labels(con: Any) -> dict[str, tuple[bool, float | None]]:
    build_joined(con, as_of=AS_OF, maturation=MATURATION, period=DAY)
    rows = con.execute("SELECT prediction_id, matured, label_num FROM joined").fetchall()
    return {pid: (matured, label) for pid, matured, label in rows}


def test_an_outcome_arriving_after_as_of_does_not_count(con: Any) -> None:
    """A label known only after as_of leaves its prediction unlabelled."""
    assert _labels(con)["p-late"] == (True, None)


def test_a_prediction_never_labelled_stays_unlabelled(con: Any) -> None:
    """No outcome: matured, no label."""
    assert _labels(con)["p-never"] == (True, None)


def test_the_later_of_two_outcomes_wins(con: Any) -> None:
    """Two outcomes for one prediction: the later ``at`` wins whatever the file order."""
    assert _labels(con)["p-twice"] == (True, 1.0)


def test_an_outcome_keyed_by_payload_hash_labels_the_prediction(con: Any) -> None:
    """An outcome naming only the payload hash joins on it."""
    assert _labels(con)["p-hash"] == (True, 0.0)


def test_predictions_younger_than_maturation_are_not_matured(con: Any) -> None:
    """A 3-day-old prediction is not matured under a 7-day window, even when labelled."""
    assert _labels(con)["p-young"] == (False, 1.0)


def test_a_labels_file_outcome_later_than_the_logged_one_wins(con: Any, tmp_path: Path) -> None:
    """A CSV correction with a later ``at`` replaces the logged label."""
    path = tmp_path / "labels.csv"
    path.write_text(f"prediction_id,label,at\np-ok,0,{format_instant(DAY0 + 3 * DAY)}\n", encoding="utf-8")
    assert load_labels(con, path) == 1
    assert _labels(con)["p-ok"] == (True, 0.0)


def test_parquet_labels_keyed_by_payload_hash(con: Any, tmp_path: Path) -> None:
    """A Parquet labels file keyed by payload hash, ``at`` in Unix seconds."""
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"payload_hash": ["h-never"], "label": [1], "at": [(DAY0 + DAY) / 1e9]}), path)
    load_labels(con, path)
    assert _labels(con)["p-never"] == (True, 1.0)


def test_json_labels_without_at_always_count(con: Any, tmp_path: Path) -> None:
    """A JSON-lines labels file without ``at`` labels regardless of as_of."""
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"prediction_id": "p-late", "label": 0}) + "\n", encoding="utf-8")
    load_labels(con, path)
    assert _labels(con)["p-late"] == (True, 0.0)


def test_a_labels_file_without_a_key_column_is_rejected(con: Any, tmp_path: Path) -> None:
    """Labels need prediction_id or payload_hash."""
    path = tmp_path / "labels.csv"
    path.write_text("id,label\np-ok,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="prediction_id or payload_hash"):
        load_labels(con, path)


def test_evaluate_reports_label_coverage_over_matured_predictions(folder: Path) -> None:
    """Coverage = labelled matured (ok, twice, hash) / matured (all but the young one)."""
    result = evaluate(folder, EvaluateOptions(as_of=format_instant(AS_OF), maturation="7d"))
    (group,) = result.groups
    assert (group.counts.matured, group.counts.labelled) == (5, 3)
    assert group.counts.label_coverage == 3 / 5


def test_evaluate_scores_only_matured_labelled_predictions(folder: Path) -> None:
    """The base rate is over ok (1), twice (1, the later label) and hash (0)."""
    result = evaluate(folder, EvaluateOptions(as_of=format_instant(AS_OF), maturation="7d"))
    metrics = result.groups[0].classification
    assert metrics is not None
    assert (metrics.n, metrics.base_rate) == (3, 2 / 3)
