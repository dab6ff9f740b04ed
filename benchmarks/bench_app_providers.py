"""modeltel inside an application that installed its own TracerProvider and MeterProvider.

Run: ``.venv/bin/python benchmarks/bench_app_providers.py [--calls N] [--repeats R] [--ratio 0.01]``.

The application's providers export OTLP/HTTP (traces sampled parent-based at ``--ratio``) to a
local sink process that reads each request and answers 200, so the export's CPU is counted and the
sink's is not. Two cases, interleaved within each repeat: hand-written OpenTelemetry on the
application's providers (span + duration and score histograms + counter) and "modeltel full"
(20-field contract, payload hash, 1% feature sample, rate limit, budget, per-call records). A
figure is process CPU per call over N calls plus every pipeline's flush; the ratio is the median
of the per-repeat ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

SINK = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


def start_sink() -> tuple[subprocess.Popen[str], str]:
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    return sink, f"http://127.0.0.1:{sink.stdout.readline().strip()}"


def install_app_providers(ratio: float) -> tuple[Callable[[], None], Callable[[], None]]:
    """The application's OTel, as an app set up by hand or by ``opentelemetry-instrument`` has it;
    returns its flush and its shutdown."""
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    tracer_provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=60_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    def flush() -> None:
        tracer_provider.force_flush()
        meter_provider.force_flush()

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return flush, shutdown


def hand_written(predict: Callable[..., float]) -> Callable[..., float]:
    from time import perf_counter

    from opentelemetry import metrics, trace

    from modeltel import _names as n

    tracer = trace.get_tracer("hand")
    meter = metrics.get_meter("hand")
    duration = meter.create_histogram(
        "hand.duration", unit="s", explicit_bucket_boundaries_advisory=list(n.DURATION_BOUNDS)
    )
    score_h = meter.create_histogram(
        "hand.score", unit="1", explicit_bucket_boundaries_advisory=list(n.SCORE_BOUNDS)
    )
    counter = meter.create_counter("hand.predictions", unit="{prediction}")

    def wrapper(features: dict[str, float], tenant: str) -> float:
        attrs = {"ml.model.name": "bench", "ml.model.version": "1", "ml.tenant": tenant}
        with tracer.start_as_current_span("predict bench", attributes=attrs) as span:
            t0 = perf_counter()
            score = predict(features, tenant)
            elapsed = perf_counter() - t0
            span.set_attributes({"ml.prediction.score": score, "ml.outcome": "ok"})
        metric_attrs = {**attrs, "ml.outcome": "ok"}
        duration.record(elapsed, metric_attrs)
        score_h.record(score, metric_attrs)
        counter.add(1, metric_attrs)
        return score

    return wrapper


def measure(fn: Callable[..., Any], pool: list[dict[str, float]], n: int, flush: Callable[[], None]) -> float:
    """Process CPU seconds per call over ``n`` calls plus the flush."""
    cpu0 = time.process_time()
    for i in range(n):
        fn(pool[i % len(pool)], "acme")
    flush()
    return (time.process_time() - cpu0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ratio", type=float, default=0.01)
    args = parser.parse_args()

    sink, endpoint = start_sink()
    os.environ.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "MODELTEL_FEATURE_SAMPLE_RATE": "0.01",
            "MODELTEL_COST_PER_1K": "0.40",
            "MODELTEL_RATE_LIMITS": "*=1000000000/s burst 1000000000",
            "MODELTEL_BUDGETS": "*=1000000000/day",
        }
    )
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import _cases as c

        app_flush, app_shutdown = install_app_providers(args.ratio)
        import modeltel

        def flush() -> None:
            app_flush()
            modeltel.force_flush(timeout_s=30)

        contract = c.feature_contract()
        options = {} if contract is None else {"contract": contract}
        cases = {
            "hand-written OTel": hand_written(c.predict),
            "modeltel full": modeltel.instrument(model="bench", version="1", tenant="tenant", **options)(
                c.predict
            ),
        }
        pool = c.payload_pool()
        for fn in cases.values():  # warm-up: decoration-time work, first series, connections
            measure(fn, pool, 500, flush)
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                cpu[name].append(measure(fn, pool, args.calls, flush))
        ratios = [m / h for m, h in zip(cpu["modeltel full"], cpu["hand-written OTel"], strict=True)]
        print(
            f"app-installed TracerProvider + MeterProvider, traces at {args.ratio:.0%}, OTLP/HTTP to a sink"
        )
        print(f"modeltel {modeltel.__file__}")
        for name, values in cpu.items():
            print(f"  {name:<20} {statistics.median(values) * 1e6:7.1f} us/call CPU")
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"  ratio modeltel/hand  {statistics.median(ratios):7.2f}  (per repeat: {each})")
        modeltel.shutdown()
        app_shutdown()
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
