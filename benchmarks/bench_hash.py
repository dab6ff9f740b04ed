"""Payload hash cost per call: 20-field numeric payloads vs payloads with categories.

Run: python benchmarks/bench_hash.py  (prints the best and the median of interleaved repeats, µs per call)

The payloads are what a contract describes: 20 float features, and the same shape with
categories (17 numbers, 2 strings, 1 bool), with an Optional feature set to None in all, half
or none of the calls, and decoded JSON bodies (numbers as int or float at random, two Optional
features: four kind patterns). Each case cycles through a pool of distinct payloads, as a
model's traffic does. A batch case hashes a list of dicts with categories (µs per row).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from itertools import cycle, islice
from typing import Any

import numpy as np

from modeltel._hashing import PayloadHasher

FEATURES = 20
POOL = 1024
CALLS = 2_000
REPEATS = 41


def numeric_pool(rng: np.random.Generator) -> list[dict[str, Any]]:
    names = [f"f{i}" for i in range(FEATURES)]
    return [dict(zip(names, row, strict=True)) for row in rng.uniform(0, 1, (POOL, FEATURES)).tolist()]


def mixed_pool(rng: np.random.Generator, optional_none: float) -> list[dict[str, Any]]:
    """17 numbers (ints and floats), 2 categories, 1 bool; one number is None in a share
    ``optional_none`` of the payloads (an Optional feature)."""
    rows = []
    for row in rng.uniform(0, 1, (POOL, 17)).tolist():
        payload: dict[str, Any] = {f"f{i}": v for i, v in enumerate(row)}
        payload["f3"] = int(row[3] * 100)  # an integer feature
        payload["country"] = "DE" if row[0] < 0.5 else "FR"
        payload["channel"] = "web" if row[1] < 0.7 else "app"
        payload["returning"] = row[2] < 0.5
        if row[4] < optional_none:
            payload["f16"] = None
        rows.append(payload)
    return rows


def json_like_pool(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Decoded JSON bodies: each number an int or a float at random (JSON does not say which),
    two Optional features each None in half the payloads (four kind patterns)."""
    rows = []
    for payload in mixed_pool(rng, optional_none=0.0):
        for name, value in payload.items():
            if type(value) is float and rng.uniform() < 0.5:
                payload[name] = round(value * 100)
        for name in ("f15", "f16"):
            if rng.uniform() < 0.5:
                payload[name] = None
        rows.append(payload)
    return rows


def per_call(fn: Callable[[dict[str, Any]], Any], payloads: list[dict[str, Any]], number: int) -> float:
    """Mean seconds of one call over ``number`` calls cycling through ``payloads``."""
    inputs = list(islice(cycle(payloads), number))
    start = time.perf_counter()
    for payload in inputs:
        fn(payload)
    return (time.perf_counter() - start) / number


def per_row(fn: Callable[[list[dict[str, Any]]], Any], rows: list[dict[str, Any]], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn(rows)
    return (time.perf_counter() - start) / number / len(rows)


def main() -> None:
    rng = np.random.default_rng(0)
    plain, keyed = PayloadHasher(), PayloadHasher("bench-secret")
    pools = {
        "numeric, 20 floats": numeric_pool(rng),
        "mixed, 17 numbers + 2 str + 1 bool": mixed_pool(rng, optional_none=0.0),
        "mixed with a None": mixed_pool(rng, optional_none=1.0),
        "mixed, a None in half the calls": mixed_pool(rng, optional_none=0.5),
        "JSON bodies: int or float, 2 Optional features": json_like_pool(rng),
    }
    cases: dict[str, Callable[[], float]] = {}
    for name, pool in pools.items():
        cases[name] = lambda pool=pool: per_call(plain.hash_int, pool, CALLS)
        cases[f"{name}, keyed (BLAKE2b)"] = lambda pool=pool: per_call(keyed.hash_int, pool, CALLS)
    rows = pools["mixed, 17 numbers + 2 str + 1 bool"]
    cases["batch: list of 1024 mixed dicts, per row"] = lambda: per_row(
        lambda batch: [plain.hash_int(r) for r in batch], rows, 2
    )
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPEATS):  # interleaved, so load on the machine slows every case alike
        for name, run in cases.items():
            runs[name].append(run())
    # The best repeat is the least disturbed by other processes on a shared machine.
    print(f"PayloadHasher.hash_int, µs per call over {REPEATS} interleaved repeats of {CALLS:,} calls:")
    print(f"  {'case':<52}{'best':>7}{'median':>8}")
    for name, times in runs.items():
        print(f"  {name:<52}{min(times) * 1e6:7.3f}{statistics.median(times) * 1e6:8.3f}")


if __name__ == "__main__":
    main()
