"""Payload hashes: the same logical features give the same 16-hex-char hash in any process.

Canonical form (documented in the README so a hash can be recomputed offline). Two cases, chosen
by the payload's content, so one logical payload always takes the same one:

**Numeric mappings** (every value a bool, int or float, numpy scalars included: the usual model
input, hashed without building text): ``xxh3_64(values, seed=xxh3_64(keys))`` where ``keys`` is
the UTF-8 of the sorted keys joined by ``\\x1f`` and ``values`` the values in that key order as
little-endian IEEE-754 float64. Booleans count as 0 and 1; integers past 2**53 lose precision,
as they do in any float64 feature vector.

**Everything else**: ``xxh3_64`` (seed 0) of the payload normalised and written by orjson as
compact JSON with sorted keys, UTF-8:

* booleans are the numbers 0 and 1, as in the numeric case
* mappings: keys as strings, sorted; pydantic models and dataclasses as their field mappings
* integral finite floats within 64-bit range become integers, so ``1`` and ``1.0`` agree;
  other floats use the shortest round-trip decimal (Ryu)
* NaN, inf and -inf become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
* integers beyond 64 bits become their decimal string
* numpy scalars become Python numbers, arrays nested lists; tuples become lists
* bytes become lowercase hex strings; dates and times their ISO 8601 text
* a lone surrogate in a string or key (text no UTF-8 can hold) is written as its ``\\udcXX``
  escape text, as in ``str.encode("utf-8", "backslashreplace")``

With ``MODELTEL_HASH_KEY`` the digest is keyed BLAKE2b-64 over ``seed (8 bytes LE) + data``
instead of xxh3: xxh3 is not a keyed PRF (its seed is 64 bits and it makes no cryptographic
claim), so it cannot stop a dictionary attack on low-entropy payloads; keyed BLAKE2b can.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import math
import operator
import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import orjson
import xxhash
from pydantic import BaseModel

_INT64 = 2**63
_xxh3: Callable[..., int] = xxhash.xxh3_64_intdigest


def _norm_float(v: float) -> Any:
    if v.is_integer():
        return int(v) if -_INT64 < v < _INT64 else v
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def normalize(value: Any) -> Any:
    """Turn a payload into the plain JSON values of the canonical form."""
    t = type(value)
    if t is float:
        return _norm_float(value)
    if t is int:
        return value if -_INT64 <= value < _INT64 else str(value)
    if t is str or value is None:
        return value
    if t is bool:
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    return _normalize_other(value)


def _normalize_other(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, np.ndarray):
        return normalize(value.tolist())
    if isinstance(value, np.generic):
        return normalize(value.item())
    if isinstance(value, BaseModel):
        return normalize(dict(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return normalize({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return _norm_float(float(value))
    if isinstance(value, int):
        return normalize(int(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    raise TypeError(f"cannot hash a feature value of type {type(value).__name__}")


def canonical_json(features: Any) -> bytes:
    """The JSON canonical form, used for every payload that is not a numeric mapping."""
    plain = normalize(features)
    try:
        return orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # a lone surrogate (else orjson raises the same again)
        return orjson.dumps(_escaped(plain), option=orjson.OPT_SORT_KEYS)


def utf8_text(text: str) -> str:
    """``text`` as valid UTF-8 can hold it: each lone surrogate written as its escape text."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def _escaped(plain: Any) -> Any:
    if type(plain) is str:
        return utf8_text(plain)
    if type(plain) is list:
        return [_escaped(v) for v in plain]
    if type(plain) is dict:
        return {utf8_text(k): _escaped(v) for k, v in plain.items()}
    return plain


def key_seed(keys: list[str] | tuple[str, ...]) -> int:
    """The seed of a numeric payload's hash: xxh3-64 of its sorted keys joined by ``\\x1f``."""
    return _xxh3("\x1f".join(sorted(keys)).encode("utf-8", "backslashreplace"))


class _KeyPlan:
    """For one key set: how to pull the values in sorted-key order and pack them as float64 LE,
    and that key set's seed."""

    __slots__ = ("getter", "pack", "seed", "single", "size")

    def __init__(self, keys: tuple[str, ...]) -> None:
        ordered = sorted(keys)
        self.size = len(ordered)
        self.single = self.size == 1
        self.getter = operator.itemgetter(*ordered)
        self.pack = struct.Struct(f"<{self.size}d").pack  # twice as fast as array("d", values)
        self.seed = key_seed(ordered)


# Payload shapes seen per process are few (one or two per model); the cap only guards against
# a caller whose keys are data.
_MAX_PLANS = 256
_UNSEEN: Any = object()


class PayloadHasher:
    """Hashes payloads, keyed when a key is given. Safe to share between threads."""

    __slots__ = ("_key", "_last", "_plans")

    def __init__(self, key: str | bytes = b"") -> None:
        raw = key.encode() if isinstance(key, str) else key
        # BLAKE2b takes keys up to 64 bytes; longer secrets are pre-hashed to fit.
        self._key = raw if len(raw) <= 64 else hashlib.blake2b(raw).digest()
        self._plans: dict[tuple[Any, ...], _KeyPlan | None] = {}
        self._last: _KeyPlan | None = None  # the key set hashed last, tried first

    @property
    def keyed(self) -> bool:
        """Whether a secret keys the hash."""
        return bool(self._key)

    def hash_int(self, features: Any) -> int:
        """The 64-bit hash as an integer (sampling decisions use it)."""
        if type(features) is dict and features:
            # The numeric case, inlined: it runs on every prediction.
            found = self._values_of(features)
            if found is not None:
                plan, values = found
                try:
                    packed = plan.pack(values) if plan.single else plan.pack(*values)
                except struct.error:
                    pass  # not all numbers: the JSON case below
                else:
                    return self.digest(packed, plan.seed) if self._key else _xxh3(packed, plan.seed)
        return self.digest(canonical_json(features), 0)

    def _values_of(self, features: dict[Any, Any]) -> tuple[_KeyPlan, Any] | None:
        """The plan of ``features``' key set and its values in sorted-key order (None: not all
        keys are strings)."""
        last = self._last
        # Same size and every key of the last key set present: the same key set, found without
        # building and hashing a tuple of the keys.
        if last is not None and len(features) == last.size:
            try:
                return last, last.getter(features)
            except KeyError:
                pass
        keys = tuple(features)
        plan = self._plans.get(keys, _UNSEEN)
        if plan is _UNSEEN:
            plan = self._plan(keys)
        if plan is None:
            return None
        self._last = plan
        return plan, plan.getter(features)

    def hexdigest(self, features: Any) -> str:
        """The 16-hex-char hash that goes in ``ml.payload.hash``."""
        return f"{self.hash_int(features):016x}"

    def digest(self, data: bytes, seed: int) -> int:
        """Hash canonical bytes with a seed: xxh3-64, or keyed BLAKE2b-64 when keyed."""
        if self._key:
            h = hashlib.blake2b(seed.to_bytes(8, "little"), key=self._key, digest_size=8)
            h.update(data)
            return int.from_bytes(h.digest(), "big")
        return _xxh3(data, seed)

    def _plan(self, keys: tuple[Any, ...]) -> _KeyPlan | None:
        plan = _KeyPlan(keys) if all(type(k) is str for k in keys) else None
        if len(self._plans) < _MAX_PLANS:
            self._plans[keys] = plan
        return plan

    def __reduce__(self) -> tuple[Any, ...]:
        return (PayloadHasher, (self._key,))


def payload_hash(features: Any, key: str | bytes = b"") -> str:
    """The payload hash modeltel records for ``features``; recompute it offline to join outcomes.

    >>> payload_hash({"b": 1, "a": 2.0}) == payload_hash({"a": 2, "b": 1.0})
    True
    """
    return PayloadHasher(key).hexdigest(features)
