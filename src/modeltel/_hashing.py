"""Payload hashes: the same logical features give the same 16-hex-char hash in any process.

Canonical form (documented in the README so a hash can be recomputed offline). Three cases,
chosen by the payload's content, so one logical payload always takes the same one. This is
recipe 2, which spans and records say in ``ml.payload.hash.recipe``; recipe 1 (records without
that attribute, modeltel before recipe 2) had no typed case, so its numeric and JSON cases are
these ones, and ``payload_hash(features, recipe=1)`` still computes it. Text (keys, strings) is
UTF-8 in every case; a lone surrogate, which no UTF-8 can hold, is written as its ``\\udcXX``
escape text, as ``str.encode("utf-8", "backslashreplace")`` does.

**Numeric mappings** (string keys, every value a number: bool, int, float, numpy scalars; the
usual model input, hashed without building text): ``xxh3_64(values, seed=xxh3_64(keys))`` where
``keys`` is the UTF-8 of the sorted keys joined by ``\\x1f`` and ``values`` the values in that key
order as little-endian IEEE-754 float64. Booleans count as 0 and 1; integers past 2**53 lose
precision, as they do in any float64 feature vector. Unchanged from recipe 1.

**Typed mappings** (recipe 2; string keys, every value a number, a string or None, at least one
string or None: a feature dict with categories): each sorted key has a kind, ``d`` (number), ``s``
(string, subclasses such as ``StrEnum`` by their characters) or ``n`` (None), and ``kinds`` is
those letters in key order. The hash is ``xxh3_64(numbers + texts, seed=xxh3_64(keys + "\\x1e"
+ kinds))`` where ``keys`` is the sorted keys joined by ``\\x1f``, ``numbers`` the numbers in key
order as little-endian float64 (as above) and ``texts`` the strings in key order, each UTF-8,
joined by the byte ``0xFF`` (which UTF-8 never contains, so the split is unambiguous). None adds
no bytes: its place is in ``kinds``.

**Everything else** (nested values, lists, bytes, dates, non-string keys, pydantic models and
dataclasses passed as such): ``xxh3_64`` (seed 0) of the payload normalised and written by
orjson as compact JSON with sorted keys, UTF-8:

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

A flat mapping falls to the JSON case as a whole when one value is of none of the three kinds,
or is a number float64 cannot hold (an integer past float range).

With ``MODELTEL_HASH_KEY`` the digest is keyed BLAKE2b-64 over ``seed (8 bytes LE) + data``
instead of xxh3: xxh3 is not a keyed PRF (its seed is 64 bits and it makes no cryptographic
claim), so it cannot stop a dictionary attack on low-entropy payloads; keyed BLAKE2b can.

Speed: a plan per payload shape (key set and kinds) pulls each kind's values with one
``operator.itemgetter`` and packs the numbers with a precompiled struct. The last two plans are
tried first (an Optional feature that is sometimes None alternates two shapes); any mismatch
raises inside a plan (struct.error, TypeError, KeyError) and the payload's own shape decides, so
a mismatch can cost time, never a wrong hash.
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
    """For one key set of numbers: how to pull the values in sorted-key order and pack them as
    float64 LE, and that key set's seed."""

    __slots__ = ("getter", "pack", "seed", "single", "size")

    def __init__(self, ordered: list[str]) -> None:
        self.size = len(ordered)
        self.single = self.size == 1
        self.getter = operator.itemgetter(*ordered)
        self.pack = struct.Struct(f"<{self.size}d").pack  # twice as fast as array("d", values)
        self.seed = key_seed(ordered)

    def data(self, features: dict[str, Any]) -> bytes:
        values = self.getter(features)
        return self.pack(values) if self.single else self.pack(*values)


NUMBER, TEXT, NONE = "d", "s", "n"


def kinds_seed(ordered: list[str], kinds: str) -> int:
    """The seed of a typed payload's hash (recipe 2): xxh3-64 of its sorted keys joined by
    ``\\x1f``, then ``\\x1e`` and its kinds, as UTF-8 (lone surrogates as escape text)."""
    return _xxh3(("\x1f".join(ordered) + "\x1e" + kinds).encode("utf-8", "backslashreplace"))


def _tuple_of(keys: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A getter of ``keys``' values that always returns a tuple (C-level for two keys or more)."""
    if len(keys) > 1:
        return operator.itemgetter(*keys)
    if keys:
        key = keys[0]
        return lambda features: (features[key],)
    return lambda features: ()


class _TypedPlan:
    """For one key set whose values are numbers, strings and None in one pattern (recipe 2): the
    getters of each kind's values in sorted-key order, the struct of the numbers, and the seed,
    which holds the pattern."""

    __slots__ = ("none_key", "none_row", "nones", "numbers", "pack", "seed", "size", "texts")

    def __init__(self, ordered: list[str], kinds: str) -> None:
        self.size = len(ordered)
        pairs = list(zip(ordered, kinds, strict=True))
        of_kind = {c: [key for key, kind in pairs if kind == c] for c in (NUMBER, TEXT, NONE)}
        self.numbers = _tuple_of(of_kind[NUMBER])
        self.texts = _tuple_of(of_kind[TEXT])
        none_keys = of_kind[NONE]
        # One None (an unset Optional feature), checked inline; several through a C-level getter.
        self.none_key = none_keys[0] if len(none_keys) == 1 else None
        self.nones = operator.itemgetter(*none_keys) if len(none_keys) > 1 else None
        self.none_row = (None,) * len(none_keys)
        self.pack = struct.Struct(f"<{len(of_kind[NUMBER])}d").pack
        self.seed = kinds_seed(ordered, kinds)

    def data(self, features: dict[str, Any]) -> bytes:
        """The bytes hashed for ``features``; raises (KeyError, TypeError, struct.error...) when
        its key set or the kinds of its values are not this plan's."""
        if self.none_key is not None and features[self.none_key] is not None:
            raise TypeError("a value where this pattern has None")
        if self.nones is not None and not all(map(operator.is_, self.nones(features), self.none_row)):
            raise TypeError("a value where this pattern has None")
        numbers = self.pack(*self.numbers(features))
        try:
            # str.encode refuses anything but a str; 0xFF never occurs in UTF-8, so it separates.
            return numbers + b"\xff".join(map(str.encode, self.texts(features)))
        except UnicodeEncodeError:  # a lone surrogate: its escape text, as in the other cases
            texts = self.texts(features)
            return numbers + b"\xff".join([str.encode(t, "utf-8", "backslashreplace") for t in texts])


def _kind(t: type) -> str:
    """What a value of type ``t`` is in a typed payload; "" makes the payload JSON."""
    if t is type(None):
        return NONE
    if issubclass(t, str):
        return TEXT
    # What struct's "d" accepts: anything with __float__ or __index__ (numpy numbers included).
    if hasattr(t, "__float__") or hasattr(t, "__index__"):
        return NUMBER
    return ""


class _Kinds(dict[type, str]):
    """Kind by value type, found on first sight: a C-level lookup after that."""

    def __missing__(self, t: type) -> str:
        kind = _kind(t)
        if len(self) < 1024:  # types seen are few; the cap guards against classes made at run time
            self[t] = kind
        return kind


_kind_of = _Kinds().__getitem__


# Payload shapes seen per process are few (one or two per model); the cap only guards against
# a caller whose keys are data.
_MAX_PLANS = 256
_UNSEEN: Any = object()
RECIPE = 2
"""The payload hash recipe modeltel records (``ml.payload.hash.recipe``); 1 had no typed case."""

_Plan = _KeyPlan | _TypedPlan


class PayloadHasher:
    """Hashes payloads, keyed when a key is given. Safe to share between threads."""

    __slots__ = ("_key", "_last", "_plans", "_previous", "recipe")

    def __init__(self, key: str | bytes = b"", recipe: int = RECIPE) -> None:
        if recipe not in (1, 2):
            raise ValueError(f"recipe={recipe!r}: expected 1 or 2")
        raw = key.encode() if isinstance(key, str) else key
        # BLAKE2b takes keys up to 64 bytes; longer secrets are pre-hashed to fit.
        self._key = raw if len(raw) <= 64 else hashlib.blake2b(raw).digest()
        self.recipe = recipe
        # By (keys, kinds) in the payload's order: the plan, or None for the JSON case. Kinds,
        # not types: a JSON body's numbers come as int or float, and one plan serves them all.
        self._plans: dict[tuple[tuple[Any, ...], str], _Plan | None] = {}
        self._last: _Plan | None = None  # the shape hashed last, tried first
        # The one before, tried second: an Optional feature that is None in some calls makes
        # traffic alternate between two shapes.
        self._previous: _Plan | None = None

    @property
    def keyed(self) -> bool:
        """Whether a secret keys the hash."""
        return bool(self._key)

    def hash_int(self, features: Any) -> int:
        """The 64-bit hash as an integer (sampling decisions use it)."""
        if type(features) is dict and features:
            # The last shape's plan, inlined: it runs on every prediction. Any mismatch (another
            # key set, a value of another kind) raises, and the payload's own plan decides.
            plan = self._last
            if plan is not None and len(features) == plan.size:
                try:
                    if type(plan) is _KeyPlan:
                        values = plan.getter(features)
                        data = plan.pack(values) if plan.single else plan.pack(*values)
                    else:
                        data = plan.data(features)
                except Exception:
                    pass
                else:
                    return self.digest(data, plan.seed) if self._key else _xxh3(data, plan.seed)
            found = self._by_own_plan(features)
            if found is not None:
                return found
        return self.digest(canonical_json(features), 0)

    def _by_own_plan(self, features: dict[Any, Any]) -> int | None:
        """The hash of a flat payload of numbers, strings and None by the plan of its shape;
        None when it is not one (then the JSON case)."""
        plan = self._previous
        if plan is not None and len(features) == plan.size:
            try:
                data = plan.data(features)
            except Exception:
                pass
            else:
                self._previous, self._last = self._last, plan
                return self.digest(data, plan.seed)
        shape = (tuple(features), "".join(map(_kind_of, map(type, features.values()))))
        plan = self._plans.get(shape, _UNSEEN)
        if plan is _UNSEEN:
            plan = self._plan(shape)
        if plan is None:
            return None
        try:
            data = plan.data(features)
        except Exception:  # e.g. an int past float range, a numpy array of several values
            return None
        self._previous, self._last = self._last, plan
        return self.digest(data, plan.seed)

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

    def _plan(self, shape: tuple[tuple[Any, ...], str]) -> _Plan | None:
        plan = _new_plan(*shape, self.recipe)
        if len(self._plans) < _MAX_PLANS:
            self._plans[shape] = plan
        return plan

    def __reduce__(self) -> tuple[Any, ...]:
        return (PayloadHasher, (self._key, self.recipe))


def _new_plan(keys: tuple[Any, ...], kinds: str, recipe: int) -> _Plan | None:
    """The plan of a payload with ``keys`` whose values are of ``kinds`` (both in the payload's
    order); None for the JSON case."""
    if len(kinds) != len(keys) or not all(type(k) is str for k in keys):  # a kind "": JSON
        return None
    by_key = dict(zip(keys, kinds, strict=True))
    ordered = sorted(by_key)
    pattern = "".join(by_key[k] for k in ordered)
    if pattern == NUMBER * len(pattern):
        return _KeyPlan(ordered)
    return _TypedPlan(ordered, pattern) if recipe >= 2 else None


def payload_hash(features: Any, key: str | bytes = b"", recipe: int = RECIPE) -> str:
    """The payload hash modeltel records for ``features``; recompute it offline to join outcomes.

    ``recipe=1`` computes the hash of modeltel versions before recipe 2 (which hashed flat
    payloads with strings or None as JSON); ``ml.payload.hash.recipe`` says which one a record
    holds (absent: 1).

    >>> payload_hash({"b": 1, "a": 2.0}) == payload_hash({"a": 2, "b": 1.0})
    True
    """
    return PayloadHasher(key, recipe).hexdigest(features)
