"""Every telemetry name modeltel emits, in one place (the README's table is built from these)."""

from __future__ import annotations

from typing import Final

SCOPE: Final = "modeltel"

# span
SPAN_NAME_PREFIX: Final = "predict "
MODEL_NAME: Final = "ml.model.name"
MODEL_VERSION: Final = "ml.model.version"
MODEL_RUN_ID: Final = "ml.model.run_id"  # instrument_model on an MLflow model: the run that made it
TENANT: Final = "ml.tenant"
PREDICTION_ID: Final = "ml.prediction.id"
PAYLOAD_HASH: Final = "ml.payload.hash"
# Which recipe made ml.payload.hash (see _hashing); a per-plan constant, absent before recipe 2.
PAYLOAD_HASH_RECIPE: Final = "ml.payload.hash.recipe"
SCORE: Final = "ml.prediction.score"
OUTCOME: Final = "ml.outcome"
DECISION: Final = "ml.decision"
CONTRACT_VIOLATIONS: Final = "ml.contract.violations"
CONTRACT_VERSION: Final = "ml.contract.version"
FEATURES_SAMPLED: Final = "ml.features.sampled"
BATCH_SIZE: Final = "ml.batch.size"
FEATURE_NAME: Final = "ml.feature.name"
PREDICTED_CLASS: Final = "ml.prediction.class"
VIOLATION_KIND: Final = "ml.violation.kind"

# metrics
M_PREDICTIONS: Final = "ml.predictions"
M_IN_FLIGHT: Final = "ml.predictions.in_flight"
M_BUDGET_REMAINING: Final = "ml.budget.remaining"
M_SHADOW: Final = "ml.shadow.comparisons"
M_SHADOW_DELTA: Final = "ml.shadow.abs_score_delta"
SHADOW_VERSION: Final = "ml.shadow.version"
SHADOW_AGREEMENT: Final = "ml.shadow.agreement"
LIMIT_DECISION: Final = "ml.limit.decision"
BUDGET_REMAINING: Final = "ml.budget.remaining"
M_CASCADE_CALLS: Final = "ml.cascade.calls"
CASCADE_TIER: Final = "ml.cascade.tier"
CASCADE_ESCALATE: Final = "ml.cascade.escalate"
M_DURATION: Final = "ml.prediction.duration"
M_SCORE: Final = "ml.prediction.score"
M_SCORE_NON_FINITE: Final = "ml.prediction.score.non_finite"
M_VIOLATIONS: Final = "ml.contract.violations"
M_COST: Final = "ml.prediction.cost"
M_FEATURES_SAMPLED: Final = "ml.features.sampled"
M_INTERNAL_ERRORS: Final = "modeltel.internal_errors"
M_DROPPED_FEATURES: Final = "modeltel.features.dropped"
M_EXPORT_FAILURES: Final = "modeltel.export.failures"

# log events
EVENT_FEATURES: Final = "ml.features"
EVENT_RECORDS: Final = "ml.prediction.records"
EVENT_OUTCOME: Final = "ml.outcome"

# The model's truth table: declared with @instrument(owner=..., ...), carried as ml.model.<key>.
TRUTH_KEYS: Final = (
    "owner", "purpose", "metric", "label_source", "label_delay", "latency_budget_ms", "cost_per_1k_target",
)  # fmt: skip

# outcomes
OK: Final = "ok"
ERROR: Final = "error"
CONTRACT_VIOLATION: Final = "contract_violation"
RATE_LIMITED: Final = "rate_limited"
BUDGET_EXCEEDED: Final = "budget_exceeded"
FALLBACK: Final = "fallback"
TIMEOUT: Final = "timeout"
SCORE_OUT_OF_RANGE: Final = "score_out_of_range"
OUTCOMES: Final = (
    OK,
    ERROR,
    CONTRACT_VIOLATION,
    RATE_LIMITED,
    BUDGET_EXCEEDED,
    FALLBACK,
    TIMEOUT,
    SCORE_OUT_OF_RANGE,
)

OTHER_TENANT: Final = "__other__"
NO_TENANT: Final = ""

# Bucket bounds chosen for model latency (10 us .. 10 s: small models answer in tens of
# microseconds) and for scores in [0, 1]; both are explicit so exported histograms are comparable
# across processes and versions.
DURATION_BOUNDS: Final = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
SCORE_BOUNDS: Final = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
