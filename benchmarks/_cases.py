"""The benchmark cases: what is called, how it is set up, and how its deferred work is flushed.

Every exporter here does what an OTLP exporter does before the network: it encodes what it is
given to the OTLP protobuf request (the same ``encode_spans`` / ``encode_metrics`` /
``encode_logs`` the OTLP exporters call) and serializes it to bytes, then drops the bytes. So a
figure counts the OTel SDK, the instrumentation and the export encoding, never I/O. Spans and logs
go through a ``BatchSpanProcessor`` / ``BatchLogRecordProcessor`` as in production (encoding on
their background thread, counted by the process CPU clock); metrics through a
``PeriodicExportingMetricReader`` that exports when flushed. Every case, hand-written OTel,
modeltel and Pydantic Logfire alike, gets its own set of these exporters.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import cycle, islice
from typing import Any

import numpy as np
from _hand import hand_written
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased

import modeltel
from modeltel._config import load_settings
from modeltel._export.exporters import Sinks
from modeltel._export.runtime import Runtime, build_runtime, install_runtime

FEATURES = 20
ROWS = 10_000
POOL = 4096  # distinct payloads, so hash-based feature sampling sees varied input
TENANT = "acme"
MODEL, VERSION = "fraud", "3.2.0"
COLUMNS = tuple(f"f{i}" for i in range(FEATURES))
WEIGHTS = np.linspace(0.01, 0.05, FEATURES)
HUGE_RATE = "*=1000000000/s burst 1000000000"
HUGE_BUDGET = "*=1000000000/day"
# Span and log batch queues (every BatchSpanProcessor / BatchLogRecordProcessor built in this
# process: hand-written OTel's, modeltel's, Logfire's) big enough that a tight benchmark loop never
# overflows them. With the default 2048, records the export thread cannot keep up with are dropped
# unencoded, which would flatter exactly the cases whose export is most expensive.
QUEUE_SIZE = 1_000_000
os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = os.environ["OTEL_BLRP_MAX_QUEUE_SIZE"] = str(QUEUE_SIZE)

# ---------------------------------------------------------------- exporters that encode, then discard


class EncodeSpans(SpanExporter):
    """Encodes a batch to an OTLP ExportTraceServiceRequest and serializes it, as the OTLP span
    exporters do before sending; the bytes are dropped (only their count is kept)."""

    def __init__(self) -> None:
        self.encoded = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.encoded += len(encode_spans(spans).SerializeToString())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class EncodeMetrics(MetricExporter):
    """Encodes collected metrics to an OTLP ExportMetricsServiceRequest and serializes it."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality={})
        self.encoded = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.encoded += len(encode_metrics(metrics_data).SerializeToString())
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


class EncodeLogs(LogRecordExporter):
    """Encodes a batch to an OTLP ExportLogsServiceRequest and serializes it."""

    def __init__(self) -> None:
        self.encoded = 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.encoded += len(encode_logs(batch).SerializeToString())
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


@dataclass
class Encoders:
    """One case's exporters, one per signal."""

    spans: EncodeSpans = field(default_factory=EncodeSpans)
    metrics: EncodeMetrics = field(default_factory=EncodeMetrics)
    logs: EncodeLogs = field(default_factory=EncodeLogs)

    def sinks(self) -> Sinks:
        return Sinks(self.spans, self.metrics, self.logs, "OTLP protobuf, encoded then discarded")

    def counters(self) -> dict[str, float]:
        """Bytes of serialized OTLP requests so far (read between measured runs)."""
        return {"OTLP bytes": float(self.spans.encoded + self.metrics.encoded + self.logs.encoded)}


# ---------------------------------------------------------------- inputs and predict functions


def payload_pool() -> list[dict[str, float]]:
    rng = np.random.default_rng(0)
    return [dict(zip(COLUMNS, row, strict=True)) for row in rng.uniform(0, 1, (POOL, FEATURES)).tolist()]


def feature_matrix() -> np.ndarray[Any, Any]:
    return np.random.default_rng(1).uniform(0, 1, (ROWS, FEATURES))


def predict(features: dict[str, float], tenant: str) -> float:
    return 0.5 * features["f3"] + 0.25


async def predict_async(features: dict[str, float], tenant: str) -> float:
    return 0.5 * features["f3"] + 0.25


def predict_batch(features: np.ndarray[Any, Any], tenant: str) -> np.ndarray[Any, Any]:
    return 1.0 / (1.0 + np.exp(-(features @ WEIGHTS)))


def passthrough(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def feature_contract() -> Any:
    """A 20-field pydantic contract with ranges; None when pydantic or the contract module is absent."""
    try:
        from pydantic import Field, create_model

        import modeltel._contract.contract  # noqa: F401
    except ImportError:
        return None
    fields: dict[str, Any] = {name: (float, Field(ge=0.0, le=1.0)) for name in COLUMNS}
    return create_model("Features", **fields)


# ---------------------------------------------------------------- the case type


@dataclass
class Case:
    """One measured thing: ``run(n)`` makes n calls, ``flush()`` forces the deferred work.

    ``counters()`` (optional) is read before and after each measured run, outside the timed
    region: monotonic totals (OTLP bytes encoded, Redis round trips...) reported per call. A case
    with ``skipped`` set is never run: the reason is shown in its row.
    """

    name: str
    run: Callable[[int], None]
    flush: Callable[[], None] = lambda: None
    activate: Callable[[], None] = lambda: None
    close: Callable[[], None] = lambda: None
    weight: str = "fast"  # how many calls a repeat makes: fast, mid, slow, batch
    bare: str | None = None  # the baseline whose cost is subtracted
    versus: str | None = None  # the hand-written OTel case its overhead is compared with
    counters: Callable[[], dict[str, float]] | None = None
    skipped: str | None = None


def skipped(name: str, reason: str, **kw: Any) -> Case:
    """A row that says why a case was not measured here."""

    def never(n: int) -> None:
        raise AssertionError(f"{name} is skipped: {reason}")

    return Case(name, never, skipped=reason, **kw)


def sync_driver(fn: Callable[..., Any], pool: list[dict[str, float]]) -> Callable[[int], None]:
    def run(n: int) -> None:
        for x in islice(cycle(pool), n):
            fn(x, TENANT)

    return run


def async_driver(fn: Callable[..., Any], pool: list[dict[str, float]]) -> Callable[[int], None]:
    loop = asyncio.new_event_loop()

    async def calls(n: int) -> None:
        for x in islice(cycle(pool), n):
            await fn(x, TENANT)

    def run(n: int) -> None:
        loop.run_until_complete(calls(n))

    return run


def batch_driver(fn: Callable[..., Any], matrix: np.ndarray[Any, Any]) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            fn(matrix, TENANT)

    return run


def threaded_driver(
    fn: Callable[..., Any], pool: list[dict[str, float]], threads: int = 4
) -> Callable[[int], None]:
    one = sync_driver(fn, pool)

    def run(n: int) -> None:
        workers = [threading.Thread(target=one, args=(n // threads,)) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    return run


# ---------------------------------------------------------------- hand-written OpenTelemetry


class HandOtel:
    """What a careful engineer writes by hand: span + duration and score histograms + counter."""

    def __init__(self, sampler: Sampler) -> None:
        resource = Resource.create({"service.instance.id": uuid.uuid4().hex})
        self.encoders = Encoders()
        self.tracer_provider = TracerProvider(sampler=sampler, resource=resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.encoders.spans))
        reader = PeriodicExportingMetricReader(self.encoders.metrics, export_interval_millis=math.inf)
        self.meter_provider = MeterProvider(
            resource=resource, metric_readers=[reader], shutdown_on_exit=False
        )
        self.tracer = self.tracer_provider.get_tracer("hand")
        self.meter = self.meter_provider.get_meter("hand")

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return hand_written(fn, self.tracer, self.meter, MODEL, VERSION)

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def ratio_sampler(ratio: float) -> Sampler:
    return ALWAYS_ON if ratio >= 1.0 else ParentBased(TraceIdRatioBased(ratio))


# ---------------------------------------------------------------- modeltel


@contextmanager
def traces_sampler(sampler: str, arg: str | None = None) -> Iterator[None]:
    """Set OTEL_TRACES_SAMPLER(_ARG) while a runtime builds its TracerProvider."""
    saved = {k: os.environ.get(k) for k in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")}
    os.environ["OTEL_TRACES_SAMPLER"] = sampler
    os.environ.pop("OTEL_TRACES_SAMPLER_ARG", None)
    if arg is not None:
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = arg
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def modeltel_runtime(
    sampler: str,
    arg: str | None = None,
    *,
    encoders: Encoders | None = None,
    environ: dict[str, str] | None = None,
    **settings: Any,
) -> Runtime:
    """A runtime exporting to ``encoders``, from ``settings`` and ``MODELTEL_*`` in ``environ``."""
    encoders = Encoders() if encoders is None else encoders
    with traces_sampler(sampler, arg):
        resolved = load_settings(settings, environ=environ or {})
        runtime = build_runtime(resolved, encoders.sinks(), install_globals=False)
    install_runtime(runtime)
    return runtime


@dataclass
class Full:
    """The options of "modeltel full" that this build of modeltel supports."""

    options: dict[str, Any]
    notes: list[str]


def full_options(sample_call: Callable[[dict[str, Any]], None]) -> Full:
    """Contract and limits when they work here (``sample_call`` decorates and calls once)."""
    options: dict[str, Any] = {}
    notes: list[str] = []
    contract = feature_contract()
    for key, value, label in (
        ("contract", contract, "20-field pydantic contract"),
        ("rate_limits", HUGE_RATE, "memory rate limit"),
        ("budgets", HUGE_BUDGET, "memory budget"),
    ):
        if value is None:
            notes.append(f"{label}: not measured (modeltel._contract.contract or pydantic missing)")
            continue
        try:
            sample_call({**options, key: value})
        except Exception as exc:
            notes.append(f"{label}: not measured ({type(exc).__name__}: {exc})")
        else:
            options[key] = value
    return Full(options, notes)


def instrumented(fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    return modeltel.instrument(model=MODEL, version=VERSION, tenant="tenant", **options)(fn)


def disabled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate with MODELTEL_DISABLED=true in the environment (the decorator returns ``fn``)."""
    saved = os.environ.get("MODELTEL_DISABLED")
    os.environ["MODELTEL_DISABLED"] = "true"
    try:
        return instrumented(fn)
    finally:
        os.environ.pop("MODELTEL_DISABLED") if saved is None else os.environ.__setitem__(
            "MODELTEL_DISABLED", saved
        )


# ---------------------------------------------------------------- the case list

FULL_SETTINGS: dict[str, Any] = {"feature_sample_rate": 0.01, "cost_per_1k": 0.40}
METRICS_ONLY_SETTINGS: dict[str, Any] = {"feature_sample_rate": 0.0}
SAMPLERS: dict[str, tuple[str, str | None]] = {
    "100%": ("always_on", None),
    "1%": ("parentbased_traceidratio", "0.01"),
    "off": ("always_off", None),
}
Driver = Callable[[Callable[..., Any]], Callable[[int], None]]


def probe_full() -> Full:
    """Which of contract / limits this modeltel accepts (tried once on a throwaway runtime)."""
    runtime = modeltel_runtime("always_off", **FULL_SETTINGS)
    row = payload_pool()[0]
    try:
        return full_options(lambda options: instrumented(predict, **options)(row, TENANT))
    finally:
        runtime.shutdown(timeout_s=5)


def modeltel_case(
    name: str,
    sampling: str,
    settings: dict[str, Any],
    run: Callable[[int], None],
    environ: dict[str, str] | None = None,
    **kw: Any,
) -> Case:
    """A case calling ``run`` with its own runtime (traces sampled at ``sampling``) installed."""
    encoders = Encoders()
    runtime = modeltel_runtime(*SAMPLERS[sampling], encoders=encoders, environ=environ, **settings)
    kw.setdefault("counters", encoders.counters)

    def flush() -> None:
        runtime.force_flush(timeout_s=30)

    def activate() -> None:
        install_runtime(runtime)

    def close() -> None:
        runtime.shutdown(timeout_s=5)

    return Case(name, run, flush, activate, close, **kw)


def hand_case(name: str, ratio: float, drive: Driver, **kw: Any) -> Case:
    hand = HandOtel(ratio_sampler(ratio))
    return Case(
        name, drive(hand.wrap(predict)), hand.flush, close=hand.close, counters=hand.encoders.counters, **kw
    )


REDIS_CASE = "modeltel full @1%, Redis limits backend"
LOGFIRE_ARGS = "Logfire @logfire.instrument @100%"
LOGFIRE_NO_ARGS = "Logfire @logfire.instrument(extract_args=False) @100%"


def single_row_cases(
    pool: list[dict[str, float]], full: Full, redis: Any = None, redis_skip: str = "no redis-server"
) -> tuple[list[Case], list[str]]:
    """The single-row cases, and notes for the header. ``redis`` is a started ``_redis.RedisServer``
    (or None, with ``redis_skip`` saying why)."""

    def drive(fn: Callable[..., Any]) -> Callable[[int], None]:
        return sync_driver(fn, pool)

    bare = "bare call"
    cases = [
        Case(bare, drive(predict)),
        Case("functools.wraps pass-through", drive(passthrough(predict)), bare=bare),
        Case("modeltel disabled", drive(disabled(predict)), bare=bare),
        hand_case("hand-written OTel @100%", 1.0, drive, weight="slow", bare=bare),
        hand_case("hand-written OTel @1%", 0.01, drive, weight="slow", bare=bare),
        modeltel_case(
            "modeltel metrics only",
            "off",
            METRICS_ONLY_SETTINGS,
            drive(instrumented(predict)),
            weight="mid",
            bare=bare,
            versus="hand-written OTel @1%",
        ),
    ]
    for sampling in ("100%", "1%"):
        run = drive(instrumented(predict, **full.options))
        versus = f"hand-written OTel @{sampling}"
        cases.append(
            modeltel_case(
                f"modeltel full @{sampling}",
                sampling,
                FULL_SETTINGS,
                run,
                weight="mid",
                bare=bare,
                versus=versus,
            )
        )
    cases.append(redis_case(drive, full, redis, redis_skip, bare=bare, versus="hand-written OTel @1%"))
    logfire, notes = logfire_cases(drive, bare=bare, versus="hand-written OTel @100%")
    return cases + logfire, notes


def redis_case(drive: Driver, full: Full, redis: Any, skip: str, **kw: Any) -> Case:
    """modeltel full @1% with ``MODELTEL_LIMITS_BACKEND`` pointing at ``redis``."""
    if redis is None:
        return skipped(REDIS_CASE, skip, **kw)
    if "rate_limits" not in full.options and "budgets" not in full.options:
        return skipped(REDIS_CASE, "this modeltel's full options have no limits", **kw)
    run = drive(instrumented(predict, **full.options))
    environ = {"MODELTEL_LIMITS_BACKEND": redis.url}
    case = modeltel_case(REDIS_CASE, "1%", FULL_SETTINGS, run, environ, weight="slow", **kw)
    encoded = case.counters
    assert encoded is not None
    case.counters = lambda: {**encoded(), **redis.counters()}
    return case


# ---------------------------------------------------------------- Pydantic Logfire


def logfire_cases(drive: Driver, **kw: Any) -> tuple[list[Case], list[str]]:
    """``@logfire.instrument`` with argument capture (its default) and without; skipped rows
    when logfire is not installed."""
    names = ((LOGFIRE_ARGS, True), (LOGFIRE_NO_ARGS, False))
    try:
        import logfire
    except ImportError:
        reason = "logfire not installed (pip install -e '.[bench]')"
        rows = [skipped(name, reason, **kw) for name, _ in names]
        return rows, [f"Pydantic Logfire: not measured, {reason}"]
    cases = [logfire_case(logfire, name, extract, drive, weight="slow", **kw) for name, extract in names]
    note = (
        f"Pydantic Logfire {logfire.VERSION}: `logfire.configure(local=True, send_to_logfire=False, "
        "console=False)` per case (its own providers, the global ones untouched), the same encoding "
        "exporters as every other case through `additional_span_processors`, a metric reader and "
        "a log processor; its default head sampling (100%), scrubbing on"
    )
    return cases, [note]


def logfire_case(logfire: Any, name: str, extract_args: bool, drive: Driver, **kw: Any) -> Case:
    """A local (non-global) Logfire instance exporting to its own encoders."""
    from opentelemetry import _logs, metrics, propagate, trace

    def globals_() -> tuple[Any, ...]:
        return (
            trace.get_tracer_provider(),
            metrics.get_meter_provider(),
            _logs.get_logger_provider(),
            propagate.get_global_textmap(),
        )

    before = globals_()
    encoders = Encoders()
    reader = PeriodicExportingMetricReader(encoders.metrics, export_interval_millis=math.inf)
    instance = logfire.configure(
        local=True,
        send_to_logfire=False,
        console=False,
        service_name="bench",
        additional_span_processors=[BatchSpanProcessor(encoders.spans)],
        metrics=logfire.MetricsOptions(additional_readers=[reader]),
        advanced=logfire.AdvancedOptions(log_record_processors=[BatchLogRecordProcessor(encoders.logs)]),
    )
    # configure() wraps the global propagator (a warning on extracting incoming trace context);
    # put it back, and check that the global providers the other cases could see are unchanged.
    # (It also patches concurrent.futures executors to carry context; no case here uses them.)
    propagate.set_global_textmap(before[3])
    if globals_() != before:
        raise RuntimeError("logfire.configure(local=True) replaced a global OpenTelemetry provider")
    fn = instance.instrument(extract_args=extract_args)(predict)

    def flush() -> None:
        instance.force_flush(timeout_millis=30_000)

    def close() -> None:
        instance.shutdown(timeout_millis=5_000)

    return Case(name, drive(fn), flush, close=close, counters=encoders.counters, **kw)


def async_cases(pool: list[dict[str, float]], full: Full) -> list[Case]:
    bare = "async bare call"
    run = async_driver(instrumented(predict_async, **full.options), pool)
    return [
        Case(bare, async_driver(predict_async, pool), weight="mid"),
        modeltel_case("async modeltel full @1%", "1%", FULL_SETTINGS, run, weight="mid", bare=bare),
    ]


BATCH_CORE = "batch modeltel contract + row hashes + score stats"
# What issue 5's batch target names: the contract, per-row hashes and score statistics, without
# the parts "full" adds (prediction records for every row, 1% feature sampling, limits).
BATCH_CORE_SETTINGS: dict[str, Any] = {"feature_sample_rate": 0.0, "prediction_records": 0.0}


def batch_cases(matrix: np.ndarray[Any, Any], full: Full) -> list[Case]:
    bare = "batch bare predict"
    options = {**full.options, "batch": True, "columns": COLUMNS}
    run = batch_driver(instrumented(predict_batch, **options), matrix)
    core_options = {k: v for k, v in options.items() if k not in ("rate_limits", "budgets")}
    core = batch_driver(instrumented(predict_batch, **core_options), matrix)
    return [
        Case(bare, batch_driver(predict_batch, matrix), weight="batch"),
        modeltel_case(BATCH_CORE, "1%", BATCH_CORE_SETTINGS, core, weight="batch", bare=bare),
        modeltel_case("batch modeltel full @1%", "1%", FULL_SETTINGS, run, weight="batch", bare=bare),
    ]


def thread_cases(pool: list[dict[str, float]], full: Full) -> list[Case]:
    def drive(fn: Callable[..., Any]) -> Callable[[int], None]:
        return threaded_driver(fn, pool)

    bare = "4 threads bare call"
    run = drive(instrumented(predict, **full.options))
    return [
        Case(bare, drive(predict)),
        hand_case("4 threads hand-written OTel @1%", 0.01, drive, weight="slow", bare=bare),
        modeltel_case("4 threads modeltel full @1%", "1%", FULL_SETTINGS, run, weight="mid", bare=bare),
    ]
