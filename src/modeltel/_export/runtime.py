"""The process-wide runtime: settings plus the OTel objects predictions are recorded through.

``configure()`` builds it (lazily on the first prediction otherwise). Where the application
already installed OTel providers, modeltel uses them; where it did not, modeltel installs SDK
providers with exporters chosen from the environment, owns them, and flushes them at exit
within ``MODELTEL_SHUTDOWN_TIMEOUT`` whatever the collector does.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, TypeVar

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from modeltel import _names as n
from modeltel._config import Settings, load_settings
from modeltel._errors import ConfigurationError
from modeltel._export.aggregate import Aggregator
from modeltel._export.app_sdk import AppMetricPipeline, Unsupported, app_metric_pipeline, sampling_gate
from modeltel._export.exporters import BorrowedMetricExporter, MergingMetricExporter, Sinks, sinks_from_env
from modeltel._export.guarded import GuardedLogExporter, GuardedSpanExporter, export_failures
from modeltel._export.queues import (
    LOG_QUEUE,
    SPAN_QUEUE,
    Backlog,
    CountingLogRecordProcessor,
    CountingSpanProcessor,
    queue_size,
)
from modeltel._export.recorders import ApiRecorder, LocalRecorder, Recorder
from modeltel._export.records import RecordSink
from modeltel._hashing import PayloadHasher
from modeltel._internal import error_counts, logger
from modeltel._lean_span import LeanSpans, processor_count
from modeltel._sampling import sampler_from_env
from modeltel._shadow import ShadowRunner
from modeltel._tenants import TenantCap
from modeltel._version import __version__


@dataclass
class Runtime:
    """Everything a prediction needs at call time; replaced as a whole by ``configure()``."""

    settings: Settings
    tracer: trace.Tracer
    otel_logger: _logs.Logger
    recorder: Recorder
    hasher: PayloadHasher
    tenants: TenantCap
    sinks_description: str = "none"
    owned: list[Any] = field(default_factory=list)  # providers modeltel installed and must flush
    sink_factory: Any = None  # makes this runtime's sinks again (a forked child builds its own)
    span_gate: Any = None  # predicts the sampler's decision where modeltel knows the sampler
    span_unsampled: Any = None  # makes an unsampled span current where the gate drops a call
    lean: Any = None  # makes modeltel's own spans where it owns the TracerProvider (see _lean_span)
    records: Any = None  # the RecordSink of per-call prediction records
    classes: Any = None  # the cap on ml.prediction.class values
    shadows: Any = None  # runs challenger models off the request path
    log_room: Any = None  # the log queue's Backlog, which outcomes wait on, where modeltel built it
    # In a forked child: the parent's tracer and logger providers, still global and used by the
    # application; their exporters rebound to this process (see _guarded), so we flush them too.
    inherited: list[Any] = field(default_factory=list)
    # Providers the application installed that modeltel records through: flushed, never shut down.
    foreign: list[Any] = field(default_factory=list)
    _shutdown_done: bool = False

    @property
    def disabled(self) -> bool:
        return self.settings.disabled

    def force_flush(self, timeout_s: float | None = None) -> bool:
        """Export everything recorded so far, through whichever providers record it; True when
        every one flushed in time."""
        deadline = monotonic() + self._deadline(timeout_s)
        meters, tracers, loggers = _by_signal([*self.owned, *self.inherited, *self.foreign])

        def flush_logs() -> bool:
            self._drain(stop=False)
            return all(_flush(p) for p in loggers)

        flushes = [functools.partial(_flush, p) for p in (*meters, *tracers)]
        return _all_in_time([*flushes, flush_logs], deadline)

    def shutdown(self, timeout_s: float | None = None) -> bool:
        """Flush everything recorded and stop the providers modeltel installed, within a bounded
        time; the application's own providers are flushed, never shut down.

        Counts go first: metrics are exported while spans and logs drain (each signal on a thread
        of its own, so a slow span flush cannot starve the others), and once more at the end, when
        they include what the others failed to send.
        """
        if self._shutdown_done:
            return True
        self._shutdown_done = True
        deadline = monotonic() + self._deadline(timeout_s)
        meters, tracers, loggers = _by_signal([*self.owned, *self.inherited])
        app_meters, app_tracers, app_loggers = _by_signal(self.foreign)

        def stop_logs() -> bool:
            self._drain(stop=True)
            return _shutdown_all(loggers) and all(_flush(p) for p in app_loggers)

        first: list[Callable[[], bool]] = [
            *(functools.partial(_flush, p) for p in (*meters, *app_meters, *app_tracers)),
            *(functools.partial(_shutdown_all, [p]) for p in tracers),
            stop_logs,
        ]
        in_time = _all_in_time(first, deadline)
        return _all_in_time([lambda: _shutdown_all(meters)], deadline) and in_time

    def _drain(self, stop: bool) -> None:
        # Shadows add records and records add log records: both go before the logs flush.
        if self.shadows is not None:
            self.shadows.drain(self._deadline(None))
        if self.records is not None:
            if stop:
                self.records.stop()
            else:
                self.records.flush()

    def _deadline(self, timeout_s: float | None) -> float:
        return self.settings.shutdown_timeout_s if timeout_s is None else timeout_s


def _by_signal(providers: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """``providers`` split into meter, tracer and logger providers."""
    return (
        [p for p in providers if isinstance(p, metrics.MeterProvider)],
        [p for p in providers if isinstance(p, trace.TracerProvider)],
        [p for p in providers if isinstance(p, _logs.LoggerProvider)],
    )


def _flush(provider: Any) -> bool:
    # API providers that are not the SDK's may have no force_flush: nothing to wait for then.
    flush = getattr(provider, "force_flush", None)
    return flush is None or flush() is not False


def _shutdown_all(providers: list[Any]) -> bool:
    for provider in providers:
        provider.shutdown()
    return True


def _all_in_time(tasks: list[Callable[[], bool]], deadline: float) -> bool:
    """Run each task on a daemon thread of its own and wait for all until ``deadline``
    (``time.monotonic()``): a dead or hung collector must never hold the process past it.
    True when every task finished in time and none returned False."""
    results: list[bool] = []

    def run(task: Callable[[], bool]) -> None:
        try:
            results.append(task() is not False)
        except Exception as exc:
            logger.warning("modeltel: flush failed: %s", exc)
            results.append(False)

    workers = [threading.Thread(target=run, args=(t,), name="modeltel-flush", daemon=True) for t in tasks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - monotonic()))
    if any(worker.is_alive() for worker in workers):
        logger.warning("modeltel: flush did not finish within its deadline; giving up")
        return False
    return len(results) == len(tasks) and all(results)


def build_runtime(
    settings: Settings,
    sinks: Sinks | None = None,
    install_globals: bool = True,
    export_interval_millis: float | None = None,
) -> Runtime:
    """Create the runtime for ``settings``; ``sinks`` overrides the exporters (tests, a forked
    child). ``export_interval_millis`` defaults to ``OTEL_METRIC_EXPORT_INTERVAL``; ``math.inf``
    means export only on flush."""
    hasher = PayloadHasher(settings.hash_key)
    tenants = TenantCap(settings.max_tenants)
    if settings.disabled:
        return Runtime(
            settings,
            trace.NoOpTracer(),
            _logs.NoOpLogger("modeltel"),
            LocalRecorder(Aggregator()),
            hasher,
            tenants,
        )
    resource = Resource.create({"service.instance.id": uuid.uuid4().hex})
    own_all = sinks is not None
    if sinks is None and not _all_foreign():
        sinks = sinks_from_env(settings.output)
    owned: list[Any] = []
    if own_all:
        factory: Any = _same_sinks(sinks)
    else:
        factory = functools.partial(sinks_from_env, settings.output)
    guarded = _guard(sinks, factory) if sinks is not None else None
    gates: list[Any] = []
    leans: list[LeanSpans] = []
    tracer = _tracer(resource, guarded, own_all, install_globals, owned, gates, leans)
    rooms: list[Backlog] = []
    otel_logger = _logger(resource, guarded, own_all, install_globals, owned, rooms)
    recorder = _recorder(settings, resource, guarded, own_all, install_globals, owned, export_interval_millis)
    description = sinks.description if sinks else "the application's OpenTelemetry providers"
    runtime = Runtime(settings, tracer, otel_logger, recorder, hasher, tenants, description, owned, factory)
    if gates:
        runtime.span_gate, runtime.span_unsampled = gates[0].admit, gates[0].unsampled
    runtime.lean = leans[0] if leans else None
    runtime.foreign = [] if own_all else _foreign_providers()
    runtime.log_room = rooms[0] if rooms else None
    runtime.classes = TenantCap(settings.max_classes)
    runtime.shadows = ShadowRunner()
    if settings.prediction_records > 0:
        runtime.records = RecordSink(otel_logger, runtime.log_room, settings.outcome_wait_s)
    return runtime


def _same_sinks(sinks: Sinks | None) -> Any:
    return lambda: sinks


def _guard(sinks: Sinks, factory: Any) -> Sinks:
    # In a forked child, span and log exporters rebuild from the factory (see _guarded).
    spans = GuardedSpanExporter(sinks.spans, lambda: factory().spans)
    logs = GuardedLogExporter(sinks.logs, lambda: factory().logs)
    return Sinks(spans, sinks.metrics, logs, sinks.description)


def _all_foreign() -> bool:
    return all(
        _foreign(get())
        for get in (trace.get_tracer_provider, metrics.get_meter_provider, _logs.get_logger_provider)
    )


def _foreign_providers() -> list[Any]:
    found = (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider())
    return [provider for provider in found if _foreign(provider)]


def _foreign(provider: Any) -> bool:
    """Whether the application (not modeltel, not the API's default proxy) installed this provider."""
    return not isinstance(provider, _PROXY_TYPES) and id(provider) not in _installed_by_us


# The API's placeholders before anyone installs a provider; the API exports no public name for
# two of them, so they are found where the API keeps them.
_PROXY_TYPES = (
    trace.ProxyTracerProvider,
    metrics._internal._ProxyMeterProvider,
    _logs._internal.ProxyLoggerProvider,
)


_installed_by_us: set[int] = set()
_P = TypeVar("_P")


def _sdk_processor(make: Callable[[], _P], prefix: str) -> _P:
    """A batch processor the SDK configures from ``prefix*`` variables; values it refuses (a
    queue smaller than a batch) fail at start-up naming the variables, as ours do."""
    try:
        return make()
    except ValueError as exc:
        found = ", ".join(f"{k}={v!r}" for k, v in sorted(os.environ.items()) if k.startswith(prefix))
        raise ConfigurationError(f"{found or prefix + '*'} is invalid: {exc}") from None


def _tracer(
    resource: Resource,
    sinks: Sinks | None,
    own: bool,
    install: bool,
    owned: list[Any],
    gates: list[Any],
    leans: list[LeanSpans],
) -> trace.Tracer:
    current = trace.get_tracer_provider()
    if not own and (_foreign(current) or sinks is None):
        tracer = current.get_tracer("modeltel", __version__)
        gate = sampling_gate(tracer)
        if gate is not None:
            gates.append(gate)
        return tracer
    sampler, gate, ids = sampler_from_env()
    provider = TracerProvider(resource=resource, sampler=sampler, id_generator=ids, shutdown_on_exit=False)
    assert sinks is not None  # the return above took every case without sinks
    spans = sinks.spans
    assert isinstance(spans, GuardedSpanExporter)  # _guard wrapped it
    backlog = Backlog("traces", queue_size("OTEL_BSP_MAX_QUEUE_SIZE", SPAN_QUEUE))
    processor = _sdk_processor(lambda: CountingSpanProcessor(spans, backlog), "OTEL_BSP_")
    provider.add_span_processor(processor)
    spans.on_taken = backlog.take
    gates.append(gate)
    if gate is not None:
        scope = InstrumentationScope("modeltel", __version__)
        leans.append(
            LeanSpans(
                resource, scope, processor.on_end, gate.parent_based, gate.bound, processor_count(provider)
            )
        )
    owned.append(provider)
    _maybe_install(install, provider, trace.set_tracer_provider, current)
    return provider.get_tracer("modeltel", __version__)


def _logger(
    resource: Resource,
    sinks: Sinks | None,
    own: bool,
    install: bool,
    owned: list[Any],
    rooms: list[Backlog],
) -> _logs.Logger:
    current = _logs.get_logger_provider()
    if not own and (_foreign(current) or sinks is None):
        return current.get_logger("modeltel", __version__)
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    assert sinks is not None  # the return above took every case without sinks
    logs = sinks.logs
    assert isinstance(logs, GuardedLogExporter)  # _guard wrapped it
    backlog = Backlog("logs", queue_size("OTEL_BLRP_MAX_QUEUE_SIZE", LOG_QUEUE))
    provider.add_log_record_processor(
        _sdk_processor(lambda: CountingLogRecordProcessor(logs, backlog), "OTEL_BLRP_")
    )
    logs.on_taken = backlog.take
    rooms.append(backlog)
    owned.append(provider)
    _maybe_install(install, provider, _logs.set_logger_provider, current)
    return provider.get_logger("modeltel", __version__)


def _recorder(
    settings: Settings,
    resource: Resource,
    sinks: Sinks | None,
    own: bool,
    install: bool,
    owned: list[Any],
    interval: float | None,
) -> Recorder:
    current = metrics.get_meter_provider()
    if not own and (_foreign(current) or sinks is None):
        if settings.metrics_path == "local":
            try:
                return _mirror(settings, app_metric_pipeline(current), owned, interval)
            except Unsupported as exc:
                _say_once(
                    "modeltel: recording metrics through the application's MeterProvider one "
                    f"measurement at a time (the per-record API path): {exc}"
                )
        meter = current.get_meter("modeltel", __version__)
        _register_internal_errors(meter)
        return ApiRecorder(meter, settings.currency)
    aggregator = Aggregator(settings.currency)
    exporter = MergingMetricExporter(sinks.metrics, aggregator, resource)  # type: ignore[union-attr]
    readers: list[Any] = [PeriodicExportingMetricReader(exporter, export_interval_millis=interval)]
    if settings.prometheus_port:
        # Imported here: the exporter is an optional extra, and users without it must not break.
        from modeltel._export.prometheus import start_prometheus

        readers.append(start_prometheus(settings.prometheus_port, aggregator, resource))
    provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    # The SDK skips an export when none of its own instruments has data; this one always has.
    _register_internal_errors(provider.get_meter("modeltel", __version__))
    owned.append(provider)
    _maybe_install(install, provider, metrics.set_meter_provider, current)
    return LocalRecorder(aggregator)


def _mirror(settings: Settings, app: AppMetricPipeline, owned: list[Any], interval: float | None) -> Recorder:
    """Local aggregates exported by a MeterProvider of modeltel's whose readers mirror the
    application's: same exporters (borrowed, never shut down), intervals, temporality, resource."""
    aggregator = Aggregator(settings.currency)
    readers = [
        PeriodicExportingMetricReader(
            MergingMetricExporter(BorrowedMetricExporter(r.exporter), aggregator, app.resource, r.delta),
            export_interval_millis=r.interval_ms if interval is None else interval,
            export_timeout_millis=r.timeout_ms,
        )
        for r in app.readers
    ]
    provider = MeterProvider(resource=app.resource, metric_readers=readers, shutdown_on_exit=False)
    _register_internal_errors(provider.get_meter("modeltel", __version__))
    owned.append(provider)
    return LocalRecorder(aggregator)


_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        logger.warning("%s", message)


def _register_internal_errors(meter: metrics.Meter) -> None:
    def observe(_: CallbackOptions) -> list[Observation]:
        return [Observation(error_counts.total())]

    def observe_exports(_: CallbackOptions) -> list[Observation]:
        return [Observation(v, {"signal": s}) for s, v in export_failures.snapshot().items()]

    meter.create_observable_counter(
        n.M_INTERNAL_ERRORS,
        callbacks=[observe],
        unit="{error}",
        description="Failures inside modeltel, swallowed",
    )
    meter.create_observable_counter(
        n.M_EXPORT_FAILURES,
        callbacks=[observe_exports],
        unit="{item}",
        description="Spans, log records and metric exports that failed to send",
    )


def _maybe_install(install: bool, provider: Any, setter: Any, current: Any) -> None:
    if install and not _foreign(current) and id(current) not in _installed_by_us:
        setter(provider)
        _installed_by_us.add(id(provider))


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runtime: Runtime | None = None
        self.overrides: dict[str, Any] | None = None
        self.exit_hook = False
        self.parent: Runtime | None = None  # in a forked child: the runtime to rebuild from

    def after_fork_in_child(self) -> None:
        # The inherited pipeline (threads, connections, maybe a lock held mid-export) is left
        # inert by its guarded exporters; the child builds its own on first use, with a fresh
        # service.instance.id and empty aggregates, so no pre-fork count is exported twice.
        self.lock = threading.Lock()
        runtime = self.runtime
        if runtime is not None and runtime.owned:
            self.parent, self.runtime = runtime, None


_state = _State()
os.register_at_fork(after_in_child=_state.after_fork_in_child)


def configure(**overrides: Any) -> Runtime:
    """Set modeltel up from keyword overrides and ``MODELTEL_*`` / ``OTEL_*`` variables.

    Optional: the first prediction configures from the environment. Calling it again with the
    same arguments does nothing; with different ones it flushes the old runtime and builds anew.

    >>> import modeltel
    >>> rt = modeltel.configure(feature_sample_rate=0.05)
    """
    with _state.lock:
        if _state.runtime is not None and _state.overrides == overrides:
            return _state.runtime
        settings = load_settings(overrides)
        return _install(build_runtime(settings), overrides)


def install_runtime(runtime: Runtime) -> Runtime | None:
    """Make ``runtime`` current (the testing helpers use this); returns the previous one."""
    with _state.lock:
        previous = _state.runtime
        _state.runtime = runtime
        _state.overrides = None
        return previous


def _install(runtime: Runtime, overrides: Mapping[str, Any] | None) -> Runtime:
    old = _state.runtime
    _state.runtime, _state.overrides = runtime, dict(overrides or {})
    if old is not None and old is not runtime:
        old.shutdown()
    if not _state.exit_hook:
        atexit.register(_shutdown_at_exit)
        _state.exit_hook = True
    return runtime


def get_runtime() -> Runtime:
    """The current runtime, configured from the environment on first use."""
    runtime = _state.runtime
    if runtime is not None:
        return runtime
    with _state.lock:
        if _state.runtime is None:
            parent = _state.parent
            if parent is not None:
                _state.parent = None
                # Where the application installed providers, the child looks at them afresh.
                sinks = None if parent.foreign else parent.sink_factory()
                child = build_runtime(parent.settings, sinks, install_globals=False)
                child.inherited = [p for p in parent.owned if not isinstance(p, MeterProvider)]
                _install(child, {})
            else:
                _install(build_runtime(load_settings()), {})
        assert _state.runtime is not None
        return _state.runtime


def shutdown(timeout_s: float | None = None) -> bool:
    """Flush everything recorded and stop exporting (also runs at interpreter exit)."""
    runtime = _state.runtime
    return True if runtime is None else runtime.shutdown(timeout_s)


def force_flush(timeout_s: float | None = None) -> bool:
    """Export everything recorded so far without stopping."""
    runtime = _state.runtime
    return True if runtime is None else runtime.force_flush(timeout_s)


def _shutdown_at_exit() -> None:
    runtime = _state.runtime
    if runtime is not None:
        runtime.shutdown()
