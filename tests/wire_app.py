"""A model service configured by environment variables only; the wire tests run it as a subprocess.

Prints one JSON line: the results it got back, and the slowest single call in seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import modeltel

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 30


@modeltel.instrument(
    model="wire", version="2.0.0", tenant="tenant", decision=lambda s: "yes" if s > 0.5 else "no"
)
def predict(features: dict[str, float], tenant: str) -> float:
    if features["x"] < 0:
        raise ValueError("negative x")
    return features["x"] / CALLS


def _faulty_score(output: float) -> float:
    raise RuntimeError("a score extractor with a bug")


@modeltel.instrument(model="faulty", version="1", score=_faulty_score)
def faulty(features: dict[str, float]) -> float:
    return 0.5


def _deep(depth: int) -> float:
    if depth:
        return _deep(depth - 1)
    raise ValueError("storm " + "x" * 8_000)


@modeltel.instrument(model="storm", version="1")
def storm(features: dict[str, float]) -> float:
    return _deep(200)  # a deep stack and a long message: each span carries ~20 KB of exception text


def main() -> None:
    # WIRE_STORM=N: N calls that raise, each span at its exception text's bounds.
    for _ in range(int(os.environ.get("WIRE_STORM", "0"))):
        with contextlib.suppress(ValueError):
            storm({"x": 1.0})
    # WIRE_FAULTS=N: N calls whose score extractor raises (swallowed and counted as internal errors).
    for _ in range(int(os.environ.get("WIRE_FAULTS", "0"))):
        faulty({"x": 1.0})
    results, slowest = [], 0.0
    for i in range(CALLS):
        t0 = time.perf_counter()
        try:
            results.append(
                predict({"x": float(i if i % 10 else -1)}, tenant=("acme", "globex", "initech")[i % 3])
            )
        except ValueError:
            results.append("error")
        slowest = max(slowest, time.perf_counter() - t0)
    print(json.dumps({"results": results, "slowest_call_s": slowest}), flush=True)


if __name__ == "__main__":
    main()
