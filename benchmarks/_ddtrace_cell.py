"""The ddtrace peer cell, run by ``matrix.py`` with the Python of its own virtualenv (``.venv-ddtrace``,
``make ddtrace-venv``), so ddtrace can never patch the process modeltel is measured in.

    .venv-ddtrace/bin/python benchmarks/_ddtrace_cell.py CALLS WARMUP

Datadog's tracer as its users write it: ``@tracer.wrap`` on predict, the same ``ml.*`` tags the
hand-written OTel span carries (model, version, tenant, outcome, and the score as a metric),
sending to the stand-in agent in ``sink.py`` (``DD_TRACE_AGENT_URL``). ddtrace keeps every trace
by default (100%). Timed like every other cell: CALLS calls plus ``tracer.flush()``, process CPU
and wall clock per call; prints one JSON line. Imports nothing but ddtrace and the standard library.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time
from itertools import cycle, islice
from typing import Any

from ddtrace.trace import tracer

MODEL, VERSION, TENANT = "fraud", "3.2.0", "acme"
NUMERIC = tuple(f"f{i}" for i in range(19))


def payload_pool(size: int = 4096) -> list[dict[str, Any]]:
    """The same shape of payload as the other cells: 19 numbers and a country."""
    rng = random.Random(0)
    pool = []
    for _ in range(size):
        row: dict[str, Any] = {name: rng.random() for name in NUMERIC}
        row["country"] = rng.choice(("DE", "FR"))
        pool.append(row)
    return pool


@tracer.wrap(name="predict " + MODEL, service="bench")
def predict(features: dict[str, Any], tenant: str) -> float:
    """The model, with the span's tags set as a ddtrace user sets them."""
    score = 0.5 * features["f3"] + (0.25 if features["country"] == "DE" else 0.2)
    span = tracer.current_span()
    if span is not None:
        span.set_tags(
            {"ml.model.name": MODEL, "ml.model.version": VERSION, "ml.tenant": tenant, "ml.outcome": "ok"}
        )
        span.set_metric("ml.prediction.score", score)
    return score


def calls(pool: list[dict[str, Any]], n: int) -> None:
    for features in islice(cycle(pool), n):
        predict(features, TENANT)


def main(argv: list[str]) -> None:
    n, warmup = int(argv[0]), int(argv[1])
    pool = payload_pool()
    calls(pool, warmup)
    tracer.flush()
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    calls(pool, n)
    tracer.flush()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result = {"cpu_s": cpu / n, "wall_s": wall / n, "flushed": True, "impl": "ddtrace", "owner": "ddtrace"}
    print(json.dumps({**result, "calls": n, "warmup": warmup, "drops": []}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
