"""A fraud model served by Flask under gunicorn's pre-fork workers.

    gunicorn --preload -w 4 -b 127.0.0.1:8000 --chdir examples/flask_service app:app

``--preload`` imports this module (and configures modeltel) once in the master; each forked
worker then builds its own telemetry pipeline on its first prediction, with its own
``service.instance.id``, so no count is exported twice and no lock is inherited held.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

import modeltel


class Transaction(BaseModel):
    """The features the model was trained on."""

    amount: float = Field(ge=0, le=1_000_000)
    country: Literal["DE", "FR", "US"]
    account_age_days: int = Field(ge=0)


COUNTRY_BIAS = {"DE": -1.0, "FR": -0.5, "US": 0.0}

modeltel.configure()  # in the master with --preload: fails fast on a bad MODELTEL_* value


@modeltel.instrument(
    model="fraud",
    version="1.4.0",
    tenant="tenant",
    contract=Transaction,
    on_violation="reject",
    decision=lambda score: "review" if score > 0.8 else "approve",
)
def predict(features: dict[str, Any], tenant: str) -> float:
    """Fraud probability of one transaction."""
    z = COUNTRY_BIAS[features["country"]] + 0.002 * features["amount"] - 0.01 * features["account_age_days"]
    return 1.0 / (1.0 + math.exp(-z))


app = Flask(__name__)


@app.post("/predict")
def predict_endpoint() -> ResponseReturnValue:
    """Score one transaction for the tenant named in ``X-Tenant``."""
    tenant = request.headers.get("X-Tenant", "anonymous")
    try:
        score = predict(request.get_json(force=True), tenant=tenant)
    except modeltel.ContractViolation as exc:
        return jsonify(error=str(exc)), 422
    except modeltel.RateLimited as exc:
        return jsonify(error=str(exc)), 429
    current = modeltel.current_prediction()
    return jsonify(score=score, prediction_id=current.prediction_id if current else None)


@app.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Readiness."""
    return jsonify(status="ok")
