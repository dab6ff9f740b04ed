"""Per-call prediction records: every call (or a set share) as one compact row, no features."""

from __future__ import annotations

import numpy as np

import modeltel
from modeltel import _names as n
from modeltel.testing import capture


@modeltel.instrument(model="rec", version="3", tenant="tenant", decision=lambda s: "yes", owner="risk")
def predict(features: dict[str, float], tenant: str) -> float:
    return features["x"] / 10


def test_every_call_gets_one_row_with_its_identity() -> None:
    """Each call becomes a row with its id, hash, tenant, score, decision, outcome, time, duration."""
    with capture() as c:
        ids = []
        for i in range(50):
            predict({"x": float(i)}, tenant="acme")
            p = modeltel.current_prediction()
            assert p is not None
            ids.append((p.prediction_id, p.payload_hash))
        rows = c.prediction_rows()
        (rec,) = {
            r.log_record.event_name: r for r in c.logs if r.log_record.event_name == n.EVENT_RECORDS
        }.values()
    assert [(r["prediction_id"], r["payload_hash"]) for r in rows] == ids
    assert rows[7]["score"] == 0.7 and rows[7]["decision"] == "yes" and rows[7]["outcome"] == "ok"
    assert rows[7]["tenant"] == "acme" and rows[7]["duration_s"] > 0 and rows[7]["time_unix_nano"] > 0
    assert dict(rec.log_record.attributes or {}) == {
        "ml.model.name": "rec",
        "ml.model.version": "3",
        "ml.payload.hash.recipe": 2,
        "ml.model.owner": "risk",
    }
    assert "features" not in repr(rec.log_record.body)


def test_records_can_be_turned_down_deterministically() -> None:
    """prediction_records=0.25 keeps about a quarter, the same payloads every time; 0 keeps none."""
    payloads = [{"x": float(i)} for i in range(400)]

    def kept(rate: float) -> list[str]:
        with capture(prediction_records=rate) as c:
            for p in payloads:
                predict(p, tenant="t")
            return [str(r["payload_hash"]) for r in c.prediction_rows()]

    first = kept(0.25)
    assert first == kept(0.25) and 50 < len(first) < 150
    assert kept(0.0) == []


def test_batch_rows_each_get_a_record() -> None:
    """A batch of 3 rows gives 3 rows with ids '<call id>/<row>' and per-row hashes and scores."""

    @modeltel.instrument(model="recb", version="1", batch=True, columns=["a", "b"])
    def score(rows: np.ndarray) -> np.ndarray:
        return rows[:, 0]

    with capture() as c:
        score(np.array([[0.1, 1.0], [0.2, 2.0], [0.3, 3.0]]))
        p = modeltel.current_prediction()
        rows = c.prediction_rows()
    assert p is not None
    assert [r["prediction_id"] for r in rows] == [f"{p.prediction_id}/{i}" for i in range(3)]
    assert [r["score"] for r in rows] == [0.1, 0.2, 0.3]
    assert rows[1]["payload_hash"] == modeltel.payload_hash({"a": 0.2, "b": 2.0})


def test_batch_decision_is_applied_per_row() -> None:
    """decision= on a batch maps each row's score; the records carry one decision per row."""

    @modeltel.instrument(
        model="recd", version="1", batch=True, columns=["a"], decision=lambda s: "hi" if s > 0.5 else "lo"
    )
    def score(rows: np.ndarray) -> np.ndarray:
        return rows[:, 0]

    with capture() as c:
        score(np.array([[0.2], [0.9], [0.6]]))
        rows = c.prediction_rows()
    assert [r["decision"] for r in rows] == ["lo", "hi", "hi"]
