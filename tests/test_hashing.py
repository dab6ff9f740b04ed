"""Payload hashes: one logical payload, one hash, in any process."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
import struct
import subprocess
import sys

import numpy as np
import orjson
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import modeltel
from hash_reference import recipe2
from modeltel._hashing import PayloadHasher, canonical_json, normalize

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
    """Nested payloads hash the sorted compact JSON of the normalised payload."""
    payload = {"country": "DE", "amount": 2.0, "tags": ["a", 1.0]}
    expected = xxhash.xxh3_64_intdigest(
        orjson.dumps({"amount": 2, "country": "DE", "tags": ["a", 1]}, option=orjson.OPT_SORT_KEYS)
    )
    assert modeltel.payload_hash(payload) == f"{expected:016x}"


def test_mixed_payload_hash_matches_the_documented_recipe() -> None:
    """A flat payload with categories, a bool and a None hashes by recipe 2: float64 numbers and
    0xFF-joined UTF-8 strings, seeded by the keys and their kinds; keyed, BLAKE2b of the same."""
    payload = {"amount": 12.5, "country": "DE", "age": 30, "flag": True, "note": None, "city": ""}
    keys = ["age", "amount", "city", "country", "flag", "note"]
    seed = xxhash.xxh3_64_intdigest(("\x1f".join(keys) + "\x1e" + "ddssdn").encode())
    data = struct.pack("<3d", 30.0, 12.5, 1.0) + b"\xff".join([b"", b"DE"])  # city, country
    assert modeltel.payload_hash(payload) == f"{xxhash.xxh3_64_intdigest(data, seed):016x}"
    keyed = hashlib.blake2b(seed.to_bytes(8, "little") + data, key=b"s3cret", digest_size=8)
    assert modeltel.payload_hash(payload, key="s3cret") == keyed.hexdigest()
    assert modeltel.payload_hash(payload) == recipe2(payload)


def test_recipe_1_is_the_json_hash_of_flat_payloads_with_strings() -> None:
    """payload_hash(recipe=1) gives what modeltel recorded before recipe 2: a flat payload with a
    string or None as sorted compact JSON (bools 0/1, integral floats as integers); numeric
    payloads hash alike in both recipes."""
    payload = {"country": "DE", "amount": 2.0, "age": 30, "flag": True, "note": None}
    old = xxhash.xxh3_64_intdigest(
        orjson.dumps(
            {"age": 30, "amount": 2, "country": "DE", "flag": 1, "note": None}, option=orjson.OPT_SORT_KEYS
        )
    )
    assert modeltel.payload_hash(payload, recipe=1) == f"{old:016x}"
    assert modeltel.payload_hash(payload) != f"{old:016x}"
    keyed_old = hashlib.blake2b(
        bytes(8) + orjson.dumps(normalize(payload), option=orjson.OPT_SORT_KEYS), key=b"k", digest_size=8
    )
    assert modeltel.payload_hash(payload, key="k", recipe=1) == keyed_old.hexdigest()
    numeric = {"b": 2, "a": 0.5}
    assert modeltel.payload_hash(numeric, recipe=1) == modeltel.payload_hash(numeric) == recipe2(numeric)
    with pytest.raises(ValueError, match="recipe=3"):
        modeltel.payload_hash(payload, recipe=3)


def test_mixed_payloads_ignore_key_order_number_spelling_and_string_subclasses() -> None:
    """Key order, 1 vs 1.0 vs True, numpy vs Python numbers and str subclasses (a StrEnum, numpy's
    str_) do not change a mixed payload's hash."""

    class Country(enum.StrEnum):
        DE = "DE"

    base = {"country": "DE", "n": 1, "x": 2.5, "note": None}
    same = [
        {"note": None, "x": 2.5, "n": 1.0, "country": "DE"},
        {"x": np.float64(2.5), "n": np.int64(1), "country": np.str_("DE"), "note": None},
        {"country": Country.DE, "n": True, "x": np.float32(2.5), "note": None},
    ]
    assert {modeltel.payload_hash(p) for p in same} == {modeltel.payload_hash(base)}


def test_kind_flips_give_other_hashes_and_never_raise() -> None:
    """A string where a number was, a number where a string was, None for either, "1" vs 1, ""
    vs None: each is another payload with its own hash, through one hasher in any order."""
    base = {"a": 1.0, "b": "x", "c": None}
    flips = [
        base,
        {"a": "1.0", "b": "x", "c": None},
        {"a": "1", "b": "x", "c": None},
        {"a": 1.0, "b": 1.0, "c": None},
        {"a": 1.0, "b": None, "c": None},
        {"a": None, "b": "x", "c": None},
        {"a": 1.0, "b": "x", "c": 0.0},
        {"a": 1.0, "b": "x", "c": ""},
        {"a": 1.0, "b": "x", "c": "x"},
        {"a": 1.0, "b": "", "c": None},
        {"a": 1.0, "b": "x\xffy", "c": None},
        {"a": 1.0, "b": "x", "c": None, "d": None},
    ]
    hashes = [modeltel.payload_hash(p) for p in flips]
    assert len(set(hashes)) == len(flips)
    one = PayloadHasher()
    for p in flips + flips[::-1] + flips:
        assert one.hexdigest(p) == modeltel.payload_hash(p) == recipe2(p)


def test_lone_surrogates_hash_as_their_escape_text() -> None:
    """A string with a lone surrogate (what a broken client can send) never raises: it hashes as
    its \\udcXX escape text, as the JSON case writes it, keyed or not. A key with one hashes too
    (keys are sorted as given, then written as escape text)."""
    hasher, keyed = PayloadHasher(), PayloadHasher("s3cret")
    for odd, escaped in [
        ({"country": "\ud800", "amount": 1.0}, {"country": "\\ud800", "amount": 1.0}),
        ({"country": "DE\udc80", "tags": ["\udc80"]}, {"country": "DE\\udc80", "tags": ["\\udc80"]}),
    ]:
        assert hasher.hexdigest(odd) == modeltel.payload_hash(escaped)
        assert keyed.hexdigest(odd) == modeltel.payload_hash(escaped, key="s3cret")
    odd_key = {"\udcff": "x", "a": None}
    assert hasher.hexdigest(odd_key) == recipe2(odd_key)
    assert keyed.hexdigest(odd_key) == recipe2(odd_key, key=b"s3cret")


def test_values_outside_the_kinds_send_the_whole_payload_to_json() -> None:
    """A list, bytes, a date or an int past float range among flat values: the JSON case, whichever
    shape the hasher saw before."""
    one = PayloadHasher()
    for odd in ([1, 2], b"\x01", datetime.date(2024, 1, 2), 10**400):
        payload = {"a": 1.0, "b": "x", "c": odd}
        expected = xxhash.xxh3_64_intdigest(canonical_json(payload))
        one.hash_int({"a": 1.0, "b": "x", "c": 2.0})  # a typed shape with the same keys first
        assert one.hash_int(payload) == expected
        assert modeltel.payload_hash(payload) == f"{expected:016x}"


_TEXT = st.characters(exclude_categories=[])  # lone surrogates included
_KEYS = st.lists(st.text(_TEXT, max_size=6), min_size=1, max_size=10, unique=True)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(_TEXT, max_size=8),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**62), 2**62).map(np.int64),
    st.booleans().map(np.bool_),
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fast_path_equals_the_documented_recipe(data: st.DataObject) -> None:
    """Any flat payload of numbers, strings and None, hashed after other payloads of the same keys
    (so through the last shape's plan, matching or not), keyed or not, equals the reference
    computed from the documented definition."""
    keys = data.draw(_KEYS)
    payloads = data.draw(st.lists(st.fixed_dictionaries({k: _VALUES for k in keys}), min_size=1, max_size=6))
    plain, keyed = PayloadHasher(), PayloadHasher("s3cret")
    for payload in payloads:
        shuffled = dict(data.draw(st.permutations(list(payload.items()))))
        assert plain.hexdigest(shuffled) == recipe2(payload)
        assert keyed.hexdigest(shuffled) == recipe2(payload, key=b"s3cret")


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


def test_spans_and_records_say_which_recipe_made_the_hash() -> None:
    """Spans, feature records and prediction records carry ml.payload.hash.recipe = 2 beside a
    hash that recipe 2 recomputes; records name the recipe once per record, not per row."""
    from modeltel import _names as n
    from modeltel.testing import capture

    @modeltel.instrument(model="recipe", version="1")
    def predict(features: dict[str, object]) -> float:
        return 0.5

    payloads = [{"amount": float(i), "country": "DE" if i % 2 else "FR", "note": None} for i in range(5)]
    with capture(feature_sample_rate=1.0) as c:
        for payload in payloads:
            predict(payload)
        rows = c.prediction_rows()
        spans = [s.attributes for s in c.spans if s.attributes]
        features = [r.log_record.attributes for r in c.feature_records() if r.log_record.attributes]
        records = [
            r.log_record.attributes
            for r in c.logs
            if r.log_record.event_name == n.EVENT_RECORDS and r.log_record.attributes
        ]
    expected = [recipe2(p) for p in payloads]
    assert [s["ml.payload.hash"] for s in spans] == expected
    assert [r["payload_hash"] for r in rows] == expected
    assert [f["ml.payload.hash"] for f in features] == expected
    assert records
    for attributes in [*spans, *features, *records]:
        assert attributes["ml.payload.hash.recipe"] == 2
