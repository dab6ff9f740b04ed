"""The quickstart's simulation: a small fraud model, simulated traffic, and the read-back summary.

``examples/quickstart.py`` is the user-facing version of :func:`run_demo` (``modeltel demo``):
both train a numpy logistic regression, serve it through ``@modeltel.instrument`` to three
tenants (a few requests malformed on purpose), flush, and print the summary read back from the
OTLP-JSON files.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import modeltel
from modeltel._config import load_settings
from modeltel._export.exporters import otlp_endpoint
from modeltel._export.otlp_json import LOGS_FILE, METRICS_FILE, TRACES_FILE
from modeltel.cli.summary import format_summary, summarize

__all__ = [
    "FEATURES",
    "TENANTS",
    "LogisticRegression",
    "Request",
    "TrafficReport",
    "collector_endpoint",
    "decide",
    "prepare_output",
    "print_summary",
    "run_demo",
    "serve",
    "simulated_requests",
    "train_fraud_model",
]

FEATURES = ("amount", "account_age_days", "txn_last_hour", "distance_km", "night", "new_device")
TENANTS = ("acme", "globex", "initech")
TENANT_SHARE = (0.5, 0.3, 0.2)
DEFAULT_CALLS = 3000
SEED = 7

# Weights the synthetic labels are drawn from (in standardised units); the model has to learn them.
_TRUE_WEIGHTS = np.array([1.4, -1.1, 0.9, 0.8, 0.5, 1.2])
_TRUE_BIAS = -2.5
# Per-tenant share of malformed requests: one feature missing, NaN, or a string.
_MALFORMED_SHARE = 0.015
_OUTPUT_FILES = (TRACES_FILE, METRICS_FILE, LOGS_FILE)


def _sigmoid(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    result: np.ndarray[Any, Any] = 1.0 / (1.0 + np.exp(-z))
    return result


@dataclass(frozen=True)
class LogisticRegression:
    """A binary logistic regression over :data:`FEATURES`, standardising its inputs."""

    weights: np.ndarray[Any, Any]
    bias: float
    mean: np.ndarray[Any, Any]
    scale: np.ndarray[Any, Any]

    @classmethod
    def fit(cls, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], steps: int = 400) -> LogisticRegression:
        """Fit by plain batch gradient descent on the mean log-loss."""
        mean, scale = x.mean(axis=0), x.std(axis=0)
        z = (x - mean) / scale
        weights, bias, rate = np.zeros(z.shape[1]), 0.0, 0.5
        for _ in range(steps):
            error = _sigmoid(z @ weights + bias) - y
            weights -= rate * (z.T @ error) / len(y)
            bias -= rate * float(error.mean())
        return cls(weights, bias, mean, scale)

    def predict_proba(self, features: Mapping[str, Any]) -> float:
        """Fraud probability of one request; KeyError if a feature is missing, TypeError if not a number."""
        x = np.array([_number(features, name) for name in FEATURES])
        return float(_sigmoid(((x - self.mean) / self.scale) @ self.weights + self.bias))


def _number(features: Mapping[str, Any], name: str) -> float:
    value = features[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"feature {name!r} must be a number, got {type(value).__name__}")
    return float(value)


def _feature_matrix(rng: np.random.Generator, rows: int) -> np.ndarray[Any, Any]:
    return np.column_stack(
        [
            rng.lognormal(mean=3.5, sigma=1.0, size=rows).round(2),
            rng.integers(1, 3650, size=rows),
            rng.poisson(1.5, size=rows),
            rng.exponential(25.0, size=rows).round(1),
            rng.random(rows) < 0.25,
            rng.random(rows) < 0.1,
        ]
    ).astype(float)


def _labels(rng: np.random.Generator, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    return (rng.random(len(x)) < _sigmoid(z @ _TRUE_WEIGHTS + _TRUE_BIAS)).astype(float)


def train_fraud_model(seed: int = SEED, rows: int = 4000) -> LogisticRegression:
    """Train the demo's fraud model on synthetic labelled transactions."""
    rng = np.random.default_rng(seed)
    x = _feature_matrix(rng, rows)
    return LogisticRegression.fit(x, _labels(rng, x))


def decide(score: float) -> str:
    """The business decision for a fraud score; a request the model cannot score goes to a human."""
    if not math.isfinite(score):
        return "review"
    if score >= 0.8:
        return "decline"
    return "review" if score >= 0.5 else "approve"


@dataclass(frozen=True)
class Request:
    """One simulated call: which tenant sent it and the features it carried."""

    tenant: str
    features: dict[str, Any]


def _malform(features: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    broken = dict(features)
    name = FEATURES[int(rng.integers(len(FEATURES)))]
    kind = int(rng.integers(3))
    if kind == 0:
        del broken[name]
    elif kind == 1:
        broken[name] = math.nan
    else:
        broken[name] = str(broken[name])
    return broken


def simulated_requests(calls: int = DEFAULT_CALLS, seed: int = SEED + 1) -> Iterator[Request]:
    """``calls`` requests from :data:`TENANTS`, about 1.5% of them malformed."""
    rng = np.random.default_rng(seed)
    x = _feature_matrix(rng, calls)
    tenants = rng.choice(len(TENANTS), size=calls, p=TENANT_SHARE)
    malformed = rng.random(calls) < _MALFORMED_SHARE
    for row, tenant, bad in zip(x.tolist(), tenants.tolist(), malformed.tolist(), strict=True):
        features = dict(zip(FEATURES, row, strict=True))
        yield Request(TENANTS[tenant], _malform(features, rng) if bad else features)


@dataclass
class TrafficReport:
    """What the simulated callers saw: answers, and the exceptions they caught."""

    answered: int = 0
    unscored: int = 0
    caught: Counter[str] = field(default_factory=Counter)

    @property
    def calls(self) -> int:
        """Requests sent."""
        return self.answered + sum(self.caught.values())

    def __str__(self) -> str:
        errors = ", ".join(f"{count} {name}" for name, count in sorted(self.caught.items())) or "none"
        return (
            f"sent {self.calls} requests: {self.answered} answered ({self.unscored} with a NaN score), "
            f"exceptions caught by the callers: {errors}"
        )


def serve(predict: Callable[[dict[str, Any], str], float], requests: Iterator[Request]) -> TrafficReport:
    """Send every request to ``predict``, catching the errors malformed requests raise."""
    report = TrafficReport()
    for request in requests:
        try:
            score = predict(request.features, request.tenant)
        except (KeyError, TypeError) as exc:
            report.caught[type(exc).__name__] += 1
            continue
        report.answered += 1
        report.unscored += not math.isfinite(score)
    return report


def collector_endpoint() -> str | None:
    """The OTLP endpoint variable in effect, if any; without one, telemetry goes to files."""
    return otlp_endpoint()


def prepare_output(output: str | os.PathLike[str]) -> None:
    """Remove the previous run's OTLP-JSON files so the summary shows this run only."""
    if collector_endpoint() is not None:
        return
    folder = Path(output)
    removed = [name for name in (TRACES_FILE, METRICS_FILE, LOGS_FILE) if _unlink(folder / name)]
    if removed:
        print(f"cleared {', '.join(removed)} in {output}: the summary below covers this run only")


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def print_summary(output: str | os.PathLike[str]) -> None:
    """Print the summary read back from the OTLP-JSON files (or say where telemetry went instead)."""
    endpoint = collector_endpoint()
    if endpoint is not None:
        print(f"telemetry went to the OpenTelemetry collector ({endpoint}); no files to summarise")
        return
    print(f"\nsummary read back from {output}/:\n")
    print(format_summary(summarize(output)))


def run_demo(output: str | None = None, calls: int = DEFAULT_CALLS) -> int:
    """``modeltel demo``: ``examples/quickstart.py`` with the output folder and call count as options."""
    os.environ.setdefault("OTEL_SERVICE_NAME", "modeltel-demo")
    folder = output if output is not None else load_settings().output
    prepare_output(folder)
    runtime = modeltel.configure(feature_sample_rate=0.05, output=folder)
    model = train_fraud_model()

    @modeltel.instrument(model="fraud", version="1.0.0", tenant="tenant", decision=decide)
    def predict(features: dict[str, Any], tenant: str) -> float:
        return model.predict_proba(features)

    print(serve(predict, simulated_requests(calls)))
    print(f"telemetry: {runtime.sinks_description}")
    if not modeltel.shutdown():
        print("warning: modeltel could not flush everything before its shutdown deadline")
    print_summary(folder)
    return 0
