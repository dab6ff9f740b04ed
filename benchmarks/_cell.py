"""One cell of the benchmark matrix, in a fresh interpreter (``matrix.py`` starts it).

    python benchmarks/_cell.py IMPL OWNER CALLS WARMUP

IMPL is ``hand`` (hand-written OpenTelemetry) or ``modeltel`` ("modeltel full"); OWNER says who
installed the global OpenTelemetry providers before the first prediction (see ``OWNERS``). The
exporters, the trace sampler and the queues come from the ``OTEL_*`` variables ``matrix.py`` sets,
read by the SDK's own constructors: every pipeline exports OTLP/HTTP to the sink process.

Timed: CALLS predictions, then a forced flush of every pipeline (``modeltel.force_flush()`` and
each application provider's ``force_flush()``), measured with the process CPU clock (all threads,
so the export threads' work is counted) and the wall clock. Prints one JSON line.

Only public API is used: ``modeltel.instrument``, ``modeltel.configure``, ``modeltel.force_flush``
and the OpenTelemetry API and SDK.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from itertools import cycle, islice
from typing import Any, Literal

MODEL, VERSION, TENANT = "fraud", "3.2.0", "acme"
NUMERIC = tuple(f"f{i}" for i in range(19))  # with "country": a 20-feature payload
COUNTRIES = ("DE", "FR")
POOL = 4096  # distinct payloads, so the hash-based feature sample sees varied input
HUGE_RATE = "*=1000000000/s burst 1000000000"
HUGE_BUDGET = "*=1000000000/day"

# Which providers the application installs globally before modeltel is configured.
OWNERS: dict[str, tuple[str, ...]] = {
    "modeltel": (),
    "app": ("tracer", "meter", "logger"),
    "app-tracer": ("tracer",),
    "app-meter": ("meter",),
}
# Hand-written OTel needs a tracer and a meter whoever else is there: it installs both itself.
HAND_PROVIDERS = ("tracer", "meter")


def payload_pool() -> list[dict[str, Any]]:
    """Payloads with 19 numbers in [0, 1] and one categorical, ``country``."""
    rng = random.Random(0)
    pool = []
    for _ in range(POOL):
        row: dict[str, Any] = {name: rng.random() for name in NUMERIC}
        row["country"] = rng.choice(COUNTRIES)
        pool.append(row)
    return pool


def predict(features: dict[str, Any], tenant: str) -> float:
    """The model: cheap, so what is measured is the instrumentation."""
    return 0.5 * features["f3"] + (0.25 if features["country"] == "DE" else 0.2)


def feature_contract() -> Any:
    """The 20-field contract: 19 ranged floats and ``country: Literal["DE", "FR"]``."""
    from pydantic import Field, create_model

    fields: dict[str, Any] = {name: (float, Field(ge=0.0, le=1.0)) for name in NUMERIC}
    fields["country"] = (Literal["DE", "FR"], ...)
    return create_model("Features", **fields)


# ---------------------------------------------------------------- the application's providers


def install_app_providers(kinds: tuple[str, ...]) -> list[Any]:
    """The application's own SDK providers (OTLP/HTTP exporters, configured from ``OTEL_*``),
    installed globally as ``opentelemetry-instrument`` or a hand-written set-up does."""
    from opentelemetry import _logs, metrics, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    providers: list[Any] = []
    if "tracer" in kinds:
        tracer_provider = TracerProvider()  # sampler from OTEL_TRACES_SAMPLER(_ARG)
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(tracer_provider)
        providers.append(tracer_provider)
    if "meter" in kinds:
        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        meter_provider = MeterProvider(metric_readers=[reader])
        metrics.set_meter_provider(meter_provider)
        providers.append(meter_provider)
    if "logger" in kinds:
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
        _logs.set_logger_provider(logger_provider)
        providers.append(logger_provider)
    return providers


# ---------------------------------------------------------------- the two implementations


def hand_written(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The hand-written reference (benchmarks/_hand.py) through the global providers."""
    from _hand import hand_written as by_hand
    from opentelemetry import metrics, trace

    return by_hand(fn, trace.get_tracer("hand"), metrics.get_meter("hand"), MODEL, VERSION)


def modeltel_full(fn: Callable[..., Any]) -> Callable[..., Any]:
    """modeltel full: a contract with a categorical, payload hash, 1% feature sample, a rate limit
    and a budget, cost, a per-call prediction record."""
    import modeltel

    modeltel.configure(feature_sample_rate=0.01, cost_per_1k=0.40)
    decorate = modeltel.instrument(
        model=MODEL,
        version=VERSION,
        tenant="tenant",
        contract=feature_contract(),
        rate_limits=HUGE_RATE,
        budgets=HUGE_BUDGET,
    )
    return decorate(fn)


# ---------------------------------------------------------------- measuring


class DropWatch(logging.Handler):
    """Catches "dropping" warnings (a full span or log queue): dropped telemetry was never
    exported, so the cell says so rather than report a flattering figure."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if "dropp" in record.getMessage().lower():
            self.seen.add(record.getMessage())


def flusher(impl: str, providers: list[Any]) -> Callable[[], bool]:
    """Flush every pipeline: modeltel's (when measured), then each application provider; True
    when every flush succeeded (all of them run either way)."""
    flushes: list[Callable[[], bool]] = [provider.force_flush for provider in providers]
    if impl == "modeltel":
        import modeltel

        flushes.insert(0, modeltel.force_flush)
    return lambda: all([flush() for flush in flushes])


def calls(fn: Callable[..., Any], pool: list[dict[str, Any]], n: int) -> None:
    for features in islice(cycle(pool), n):
        fn(features, TENANT)


def timed(
    fn: Callable[..., Any], pool: list[dict[str, Any]], n: int, flush: Callable[[], bool]
) -> dict[str, Any]:
    """CPU and wall seconds per call over ``n`` calls plus the flush."""
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    calls(fn, pool, n)
    flushed = flush()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu_s": cpu / n, "wall_s": wall / n, "flushed": flushed}


def run_cell(impl: str, owner: str, n: int, warmup: int) -> dict[str, Any]:
    """Set the cell up, warm it up (imports, caches, first export), time it."""
    watch = DropWatch()
    logging.getLogger("opentelemetry").addHandler(watch)
    logging.getLogger("modeltel").addHandler(watch)
    pool = payload_pool()
    kinds = HAND_PROVIDERS if impl == "hand" else OWNERS[owner]
    providers = install_app_providers(kinds)
    fn = hand_written(predict) if impl == "hand" else modeltel_full(predict)
    flush = flusher(impl, providers)
    calls(fn, pool, warmup)
    flush()
    # The timed calls continue where the warm-up stopped, so they see fresh payloads.
    start = warmup % len(pool)
    result = timed(fn, pool[start:] + pool[:start], n, flush)
    return {**result, "impl": impl, "owner": owner, "calls": n, "warmup": warmup, "drops": sorted(watch.seen)}


def main(argv: list[str]) -> None:
    impl, owner, n, warmup = argv[0], argv[1], int(argv[2]), int(argv[3])
    if impl not in ("hand", "modeltel") or owner not in OWNERS:
        sys.exit(f"usage: _cell.py hand|modeltel {'|'.join(OWNERS)} CALLS WARMUP (got {argv})")
    print(json.dumps(run_cell(impl, owner, n, warmup)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
