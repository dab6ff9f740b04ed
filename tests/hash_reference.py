"""The payload hash of a flat mapping, recomputed from its documented definition (README, "The
payload hash") with struct, xxhash and hashlib alone, as a reader does offline: the slow
reference the fast path is held to."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import xxhash


def kind(value: Any) -> str:
    """``n`` for None, ``s`` for a string, ``d`` for a number."""
    return "n" if value is None else "s" if isinstance(value, str) else "d"


def recipe2(payload: dict[str, Any], key: bytes = b"") -> str:
    """Recipe 2 of a mapping of numbers, strings and None (the numeric case when all are numbers)."""
    keys = sorted(payload)
    kinds = "".join(kind(payload[k]) for k in keys)
    seed_text = "\x1f".join(keys) + ("" if kinds == "d" * len(kinds) else "\x1e" + kinds)
    seed = xxhash.xxh3_64_intdigest(seed_text.encode("utf-8", "backslashreplace"))
    pairs = list(zip(keys, kinds, strict=True))
    numbers = [float(payload[k]) for k, c in pairs if c == "d"]
    texts = [payload[k].encode("utf-8", "backslashreplace") for k, c in pairs if c == "s"]
    data = struct.pack(f"<{len(numbers)}d", *numbers) + b"\xff".join(texts)
    if key:
        digest = hashlib.blake2b(seed.to_bytes(8, "little") + data, key=key, digest_size=8).digest()
        return f"{int.from_bytes(digest, 'big'):016x}"
    return f"{xxhash.xxh3_64_intdigest(data, seed):016x}"
