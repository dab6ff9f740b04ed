"""A fraud model served by FastAPI: async predict, tenant from a header, a contract, limits, a fallback.

    cd examples/fastapi_service && uvicorn app:app --port 8000

Configuration is the environment's (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``MODELTEL_*``); three switches
belong to this example: ``FRAUD_API_HTTP_SPANS=true`` adds OpenTelemetry's FastAPI instrumentation
(request spans, W3C ``traceparent`` honoured), ``FRAUD_API_APP_OTEL=true`` makes the application
install its own OpenTelemetry providers first (as ``opentelemetry-instrument`` or an existing OTel
set-up does; modeltel then records through them), and ``FRAUD_API_LOOP_PROBE=true`` measures how
late the event loop wakes, served at ``GET /debug/loop-lag``.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

import modeltel

PROBE_SLEEP_S = 0.005


class Transaction(BaseModel):
    """The features the model was trained on."""

    amount: float = Field(ge=0, le=1_000_000)
    country: Literal["DE", "FR", "US"]
    account_age_days: int = Field(ge=0)


WEIGHTS = {"amount": 0.002, "account_age_days": -0.01}
COUNTRY_BIAS = {"DE": -1.0, "FR": -0.5, "US": 0.0}


def rules_fallback(features: dict[str, Any], tenant: str) -> float:
    """The cheap model that answers inputs the real one must not see (contract violations)."""
    amount = features.get("amount")
    return 0.9 if isinstance(amount, (int, float)) and amount > 5_000 else 0.2


@modeltel.instrument(
    model="fraud",
    version="1.4.0",
    tenant="tenant",
    contract=Transaction,
    fallback=rules_fallback,
    decision=lambda score: "review" if score > 0.8 else "approve",
    cost=0.0004,  # USD per prediction; budgets are spent in it
    budgets={"trial": "0.01/day"},  # 25 predictions a day; rate limits come from MODELTEL_RATE_LIMITS
)
async def predict(features: dict[str, Any], tenant: str) -> float:
    """Fraud probability of one transaction (a logistic model small enough to inline)."""
    z = COUNTRY_BIAS[features["country"]] + sum(w * features[k] for k, w in WEIGHTS.items())
    return 1.0 / (1.0 + math.exp(-z))


class LoopLagProbe:
    """How late ``asyncio.sleep`` wakes: anything that blocks the loop shows up here."""

    def __init__(self) -> None:
        self.lags_ms: deque[float] = deque(maxlen=100_000)

    async def run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(PROBE_SLEEP_S)
            self.lags_ms.append((time.perf_counter() - t0 - PROBE_SLEEP_S) * 1000)

    def stats(self) -> dict[str, float]:
        lags = sorted(self.lags_ms)
        if not lags:
            return {"count": 0}
        p50, p99 = _pick(lags, 0.5), _pick(lags, 0.99)
        return {"count": len(lags), "p50_ms": p50, "p99_ms": p99, "max_ms": lags[-1]}


def _pick(ascending: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    return ascending[min(len(ascending) - 1, int(q * len(ascending)))]


probe = LoopLagProbe()


def install_app_otel() -> list[Any]:
    """The application's own OpenTelemetry: providers exporting over OTLP/HTTP, installed before
    ``modeltel.configure()``, as a service that already ran OTel before adopting modeltel has."""
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

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _logs.set_logger_provider(logger_provider)
    return [tracer_provider, meter_provider, logger_provider]


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Start the probe if asked; flush telemetry when the server stops.

    uvicorn re-raises SIGTERM after its graceful shutdown, which kills the process before
    ``atexit`` hooks run, so the flush belongs here.
    """
    task = asyncio.create_task(probe.run()) if _on("FRAUD_API_LOOP_PROBE") else None
    yield
    if task is not None:
        task.cancel()
    # Off the loop: the flush waits on the network, at most MODELTEL_SHUTDOWN_TIMEOUT seconds.
    # modeltel first (it hands its pending records to the providers and flushes them), then the
    # application's own providers, which modeltel flushes but never shuts down.
    await asyncio.to_thread(modeltel.shutdown)
    for provider in APP_PROVIDERS:
        await asyncio.to_thread(provider.shutdown)


def _on(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")


app = FastAPI(title="fraud-api", lifespan=lifespan)


@app.post("/predict")
async def predict_endpoint(
    features: Annotated[dict[str, Any], Body()], x_tenant: Annotated[str, Header()] = "anonymous"
) -> dict[str, Any]:
    """Score one transaction for the tenant named in ``X-Tenant``."""
    try:
        score = await predict(features, tenant=x_tenant)
    except modeltel.RateLimited as exc:
        raise HTTPException(status_code=429, detail=str(exc)) from None
    except modeltel.BudgetExceeded as exc:
        raise HTTPException(status_code=402, detail=str(exc)) from None
    current = modeltel.current_prediction()  # None when MODELTEL_DISABLED=true
    return {"score": score, "prediction_id": current.prediction_id if current else None}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Readiness."""
    return {"status": "ok"}


@app.get("/debug/loop-lag")
async def loop_lag() -> dict[str, float]:
    """Percentiles of the loop-lag probe (enable with ``FRAUD_API_LOOP_PROBE=true``)."""
    return probe.stats()


APP_PROVIDERS = install_app_otel() if _on("FRAUD_API_APP_OTEL") else []
# At start-up, not on the first request: building exporters would stall the event loop, and a bad
# MODELTEL_* value should stop the server before it takes traffic.
modeltel.configure()

if _on("FRAUD_API_HTTP_SPANS"):
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app)  # request spans through the providers modeltel installed
