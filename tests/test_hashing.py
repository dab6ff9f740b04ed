"""Payload hashes: one logical payload, one hash, in any process."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
from pydantic import BaseModel

import modeltel

PAYLOAD = {"amount": 12.5, "country": "DE", "age": 30, "flag": True, "note": None}


def test_hash_is_16_hex_chars() -> None:
    """ml.payload.hash is 16 lowercase hex characters."""
    h = modeltel.payload_hash(PAYLOAD)
    assert len(h) == 16 and int(h, 16) >= 0 and h == h.lower()


def test_same_payload_same_hash_in_another_process() -> None:
    """A fresh interpreter computes the same hash (no per-process seed)."""
    code = f"import modeltel; print(modeltel.payload_hash({PAYLOAD!r}))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other == modeltel.payload_hash(PAYLOAD)


def test_dict_order_and_int_float_spelling_do_not_matter() -> None:
    """Key order, 30 vs 30.0 and numpy vs Python numbers give the same hash."""
    reordered = {"note": None, "flag": True, "age": 30.0, "country": "DE", "amount": 12.5}
    assert modeltel.payload_hash(reordered) == modeltel.payload_hash(PAYLOAD)
    numeric = {"a": 1, "b": 2.5}
    assert modeltel.payload_hash({"b": np.float64(2.5), "a": np.int64(1)}) == modeltel.payload_hash(numeric)
    assert modeltel.payload_hash({"b": 2.5, "a": 1.0}) == modeltel.payload_hash(numeric)


def test_different_payloads_differ() -> None:
    """Changing one value changes the hash."""
    assert modeltel.payload_hash({**PAYLOAD, "amount": 12.6}) != modeltel.payload_hash(PAYLOAD)
    assert modeltel.payload_hash({"a": 1.0, "b": 2.0}) != modeltel.payload_hash({"a": 2.0, "b": 1.0})


def test_hash_key_changes_the_hash() -> None:
    """A key gives a different, stable hash; another key another one."""
    plain = modeltel.payload_hash(PAYLOAD)
    keyed = modeltel.payload_hash(PAYLOAD, key="s3cret")
    assert keyed != plain
    assert keyed == modeltel.payload_hash(dict(reversed(PAYLOAD.items())), key="s3cret")
    assert keyed != modeltel.payload_hash(PAYLOAD, key="other")


def test_pydantic_models_dataclasses_and_nested_values() -> None:
    """Model instances, dataclasses and their dict form hash alike; nesting is canonical too."""

    class Features(BaseModel):
        amount: float
        tags: list[str]

    @dataclasses.dataclass
    class Row:
        amount: float
        tags: list[str]

    as_dict = {"amount": 3.0, "tags": ["a", "b"]}
    assert modeltel.payload_hash(Features(amount=3, tags=["a", "b"])) == modeltel.payload_hash(as_dict)
    assert modeltel.payload_hash(Row(amount=3.0, tags=["a", "b"])) == modeltel.payload_hash(as_dict)
    nested = {"x": {"b": 1, "a": [1.0, np.float32(2)]}}
    assert modeltel.payload_hash(nested) == modeltel.payload_hash({"x": {"a": [1, 2], "b": 1.0}})


def test_numeric_payload_hash_matches_the_documented_recipe() -> None:
    """The README recipe recomputes a numeric payload's hash with xxhash and struct alone."""
    import struct

    import xxhash

    payload = {"b": 2, "a": 0.5}
    keys = sorted(payload)
    seed = xxhash.xxh3_64_intdigest("\x1f".join(keys).encode())
    data = struct.pack(f"<{len(keys)}d", *(float(payload[k]) for k in keys))
    assert f"{xxhash.xxh3_64_intdigest(data, seed):016x}" == modeltel.payload_hash(payload)


def test_json_payload_hash_matches_the_documented_recipe() -> None:
    """Non-numeric payloads hash the sorted compact JSON of the normalised payload."""
    import orjson
    import xxhash

    payload = {"country": "DE", "amount": 2.0}
    expected = xxhash.xxh3_64_intdigest(
        orjson.dumps({"amount": 2, "country": "DE"}, option=orjson.OPT_SORT_KEYS)
    )
    assert modeltel.payload_hash(payload) == f"{expected:016x}"


def test_batch_rows_hash_like_single_rows(cap: object) -> None:
    """A 2-D array row hashes like the same row passed alone as a dict."""
    from modeltel.testing import capture

    @modeltel.instrument(model="b", version="1", batch=True, columns=["x", "y"])
    def score(rows: np.ndarray) -> np.ndarray:
        return rows[:, 0]

    with capture(feature_sample_rate=1.0) as c:
        score(np.array([[1.0, 2.0], [3.0, 4.0]]))
        hashes = [
            r.log_record.attributes["ml.payload.hash"] for r in c.feature_records() if r.log_record.attributes
        ]
    assert hashes == [modeltel.payload_hash({"x": 1.0, "y": 2.0}), modeltel.payload_hash({"x": 3, "y": 4})]


def test_one_runtime_hashes_changing_payload_shapes_like_fresh_hashes() -> None:
    """Predictions whose key sets change from call to call (same size, other keys, a subset, a
    superset, non-numeric values, non-string keys) each carry the hash payload_hash() gives the
    payload alone: no shape is hashed as the one before it."""
    from modeltel.testing import capture

    payloads: list[dict[object, object]] = [
        {"a": 1.0, "b": 2.0},
        {"a": 1.0, "c": 2.0},
        {"b": 2.0, "a": 1.0},
        {"a": "x", "b": 2.0},
        {"a": 1.0, "b": 2.0, "c": 3.0},
        {"a": 1.0},
        {"a": None},
        {1: 2.0, 3: 4.0},
        {"a": 10**400, "b": 1.0},
        {"a": np.float32(0.5), "b": True},
    ]

    @modeltel.instrument(model="shapes", version="1")
    def predict(features: dict[object, object]) -> float:
        return 0.5

    with capture() as c:
        for features in payloads + payloads[::-1]:
            predict(features)
        hashes = [span.attributes["ml.payload.hash"] for span in c.spans if span.attributes]
    expected = [modeltel.payload_hash(p) for p in payloads + payloads[::-1]]
    assert hashes == expected
