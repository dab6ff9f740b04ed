"""A service that traces with the global OTel API while modeltel owns the providers (env only).

Each call continues the trace of an incoming ``traceparent``, opens a span of its own inside
predict and annotates the predict span. Prints the trace and span ids it saw, as JSON.
"""

from __future__ import annotations

import json
import sys

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import modeltel

CALLS = int(sys.argv[1])
tracer = trace.get_tracer("lean-wire-app")


@modeltel.instrument(model="lean-wire", version="1", tenant="tenant")
def predict(features: dict[str, float], tenant: str) -> float:
    trace.get_current_span().set_attribute("app.cache_hit", features["x"] > 0.5)
    with tracer.start_as_current_span("feature lookup") as lookup:
        lookup.set_attribute("app.rows", 3)
    if features["x"] < 0:
        raise ValueError("negative x")
    return features["x"]


def main() -> None:
    modeltel.configure()  # installs modeltel's providers before the app asks for its tracer's spans
    seen = []
    for i in range(CALLS):
        trace_id, parent_id = 0x1000 + i, 0x2000 + i
        carrier = {"traceparent": f"00-{trace_id:032x}-{parent_id:016x}-01", "tracestate": "app=v1"}
        token = context.attach(TraceContextTextMapPropagator().extract(carrier))
        try:
            predict({"x": (i % 4 - 1) / 2}, tenant=f"t{i % 3}")
        except ValueError:
            pass
        finally:
            context.detach(token)
        seen.append({"trace_id": f"{trace_id:032x}", "parent_id": f"{parent_id:016x}"})
    modeltel.shutdown()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
