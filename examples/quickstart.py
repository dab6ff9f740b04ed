"""Quickstart: instrument a fraud model's predict function and read back what modeltel recorded.

    python examples/quickstart.py

No collector needed: without OTEL_EXPORTER_OTLP_ENDPOINT, telemetry goes to OTLP-JSON files in
./telemetry (or $MODELTEL_OUTPUT). Set the endpoint and the same code ships to your collector.
"""

import os

import modeltel

# The simulated parts of this example: your own model and traffic take their place.
from modeltel.cli.demo import (
    decide,
    prepare_output,
    print_summary,
    serve,
    simulated_requests,
    train_fraud_model,
)

# In a deployment these come from the environment; here they get demo defaults.
os.environ.setdefault("OTEL_SERVICE_NAME", "modeltel-demo")
OUTPUT = os.environ.get("MODELTEL_OUTPUT", "./telemetry")

prepare_output(OUTPUT)
modeltel.configure(feature_sample_rate=0.05, output=OUTPUT)

model = train_fraud_model()


@modeltel.instrument(model="fraud", version="1.0.0", tenant="tenant", decision=decide)
def predict(features: dict[str, float], tenant: str) -> float:
    """Fraud probability for one transaction."""
    return model.predict_proba(features)


# 3,000 calls from three tenants; a few carry a missing, NaN or string feature.
print(serve(predict, simulated_requests(calls=3000)))

modeltel.shutdown()  # flushes spans, metrics and sampled features
print_summary(OUTPUT)
