"""An application that runs OpenTelemetry itself: its own providers exporting OTLP/HTTP, modeltel
recording through them. The app-provider tests run it as a subprocess.

``python app_otel_app.py CALLS flush|shutdown``: CALLS predictions, then ``modeltel.force_flush()``
or ``modeltel.shutdown()``, whose result it prints; then, once a line arrives on stdin, one span of
the application's own flushed by the application, and a hard exit that skips every exit hook.
"""

from __future__ import annotations

import json
import os
import sys

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

HOUR_MS = 3_600_000  # nothing exports on a timer during the run

tracer_provider = TracerProvider()
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=HOUR_MS))
meter_provider = MeterProvider(
    metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=HOUR_MS)]
)
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(
    BatchLogRecordProcessor(OTLPLogExporter(), schedule_delay_millis=HOUR_MS)
)
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(meter_provider)
_logs.set_logger_provider(logger_provider)

import modeltel  # noqa: E402  (after the providers, as in an app that had OTel first)


@modeltel.instrument(model="appotel", version="1", tenant="tenant", decision=lambda s: "yes")
def predict(features: dict[str, float], tenant: str) -> float:
    with trace.get_tracer("app").start_as_current_span("inside predict"):
        return features["x"] / 2


def main() -> None:
    calls, mode = int(sys.argv[1]), sys.argv[2]
    for i in range(calls):
        predict({"x": float(i)}, tenant="acme")
    done = modeltel.force_flush() if mode == "flush" else modeltel.shutdown()
    print(json.dumps({"modeltel": done}), flush=True)
    sys.stdin.readline()  # the test has read the receiver
    with trace.get_tracer("app").start_as_current_span("after modeltel"):
        pass
    print(json.dumps({"app": tracer_provider.force_flush()}), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
