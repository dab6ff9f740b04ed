"""Settings: every ``MODELTEL_*`` variable, listed once, read once.

Precedence: a keyword argument to ``configure()``, then the environment variable, then the default.
A bad value raises :class:`ConfigurationError` naming the variable, at start-up, never per call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from modeltel._errors import ConfigurationError

T = TypeVar("T")

UNDECLARED_POLICIES = ("drop", "hash", "keep")


@dataclass(frozen=True)
class Settings:
    """The resolved configuration; one immutable object, shared by every decorated function."""

    disabled: bool = False
    """``MODELTEL_DISABLED``: kill switch; decorated functions run untouched."""
    feature_sample_rate: float = 0.01
    """``MODELTEL_FEATURE_SAMPLE_RATE``: fraction of calls whose full features are logged."""
    on_violation: str = "record"
    """``MODELTEL_ON_VIOLATION``: ``record`` (predict runs) or ``reject`` (raise ContractViolation)."""
    rate_limits: str = ""
    """``MODELTEL_RATE_LIMITS``: per-tenant rate limits, e.g. ``acme=100/s;*=20/s``."""
    budgets: str = ""
    """``MODELTEL_BUDGETS``: per-tenant spend caps, e.g. ``acme=50/day;*=5/hour``."""
    cost_per_1k: float = 0.0
    """``MODELTEL_COST_PER_1K``: cost of 1,000 predictions (one per row for batches)."""
    currency: str = "USD"
    """``MODELTEL_CURRENCY``: unit of ``ml.prediction.cost`` and of budgets."""
    limits_backend: str = "memory"
    """``MODELTEL_LIMITS_BACKEND``: ``memory`` or a ``redis://`` / ``redis+cluster://`` URL."""
    limits_on_error: str = "local"
    """``MODELTEL_LIMITS_ON_ERROR``: when the shared backend fails: ``open``, ``closed`` or ``local``."""
    limits_timeout_ms: float = 5.0
    """``MODELTEL_LIMITS_TIMEOUT_MS``: the most a limits backend call may add to a prediction."""
    replicas: int = 1
    """``MODELTEL_REPLICAS``: replica count; the ``local`` fallback divides limits by it."""
    hash_key: str = ""
    """``MODELTEL_HASH_KEY``: secret that keys the payload hash (keyed BLAKE2b instead of xxh3)."""
    output: str = "./telemetry"
    """``MODELTEL_OUTPUT``: folder for OTLP-JSON files when no OTLP endpoint is set."""
    prediction_records: float = 1.0
    """``MODELTEL_PREDICTION_RECORDS``: fraction of calls with a compact record (id, hash, score...)."""
    max_tenants: int = 100
    """``MODELTEL_MAX_TENANTS``: distinct ``ml.tenant`` metric values before ``__other__``."""
    max_classes: int = 50
    """``MODELTEL_MAX_CLASSES``: distinct ``ml.prediction.class`` values before ``__other__``."""
    max_feature_bytes: int = 65536
    """``MODELTEL_MAX_FEATURE_BYTES``: largest sampled feature record; bigger ones are dropped and counted."""
    prometheus_port: int = 0
    """``MODELTEL_PROMETHEUS_PORT``: serve /metrics on this port (0: off; extra ``prometheus``)."""
    shutdown_timeout_s: float = 5.0
    """``MODELTEL_SHUTDOWN_TIMEOUT``: seconds the exit-time flush may take, whatever the collector does."""
    undeclared_features: str = "drop"
    """``MODELTEL_UNDECLARED_FEATURES``: features a contract does not declare, in sampled records:
    ``drop``, ``hash`` (the value's payload hash) or ``keep``. No contract: every feature is kept."""
    metrics_path: str = "local"
    """``MODELTEL_METRICS_PATH``: with a MeterProvider the application installed, ``local`` (exact
    local aggregates, exported through its readers) or ``api`` (every measurement through OTel API
    instruments, for Views that must see each one)."""
    outcome_wait_s: float = 5.0
    """``MODELTEL_OUTCOME_WAIT``: seconds an outcome (or a prediction record, on its own thread) may
    wait for room in a full log queue before it is dropped and counted (once per stall: later ones
    do not wait until the queue moves)."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _parse_fraction(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return value


def _parse_non_negative(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a finite number >= 0")
    return value


def _parse_positive(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a finite number > 0")
    return value


def _parse_port(raw: str) -> int:
    value = int(raw) if raw.strip() else 0
    if not 0 <= value <= 65535:
        raise ValueError("expected a port from 1 to 65535 (0 or empty: off)")
    return value


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected a whole number >= 1")
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def _backend(raw: str) -> str:
    value = raw.strip()
    if value in ("", "memory", "memory://"):
        return "memory"
    if value.startswith(("redis://", "rediss://", "redis+cluster://", "unix://")):
        return value
    raise ValueError("expected memory or a redis://, rediss:// or redis+cluster:// URL")


def _text(raw: str) -> str:
    return raw.strip()


def _rate_spec(raw: str) -> str:
    from modeltel._limits import parse_rate_limits

    parse_rate_limits(raw.strip(), "MODELTEL_RATE_LIMITS")  # fail at start-up, not on a call
    return raw.strip()


def _budget_spec(raw: str) -> str:
    from modeltel._limits import parse_budgets

    parse_budgets(raw.strip(), "MODELTEL_BUDGETS")
    return raw.strip()


_PARSERS: dict[str, Callable[[str], Any]] = {
    "disabled": _parse_bool,
    "feature_sample_rate": _parse_fraction,
    "on_violation": _one_of("record", "reject"),
    "rate_limits": _rate_spec,
    "budgets": _budget_spec,
    "cost_per_1k": _parse_non_negative,
    "currency": _text,
    "limits_backend": _backend,
    "limits_on_error": _one_of("open", "closed", "local"),
    "limits_timeout_ms": _parse_positive,
    "replicas": _parse_positive_int,
    "hash_key": lambda raw: raw,
    "output": _text,
    "prediction_records": _parse_fraction,
    "max_tenants": _parse_positive_int,
    "max_classes": _parse_positive_int,
    "max_feature_bytes": _parse_positive_int,
    "prometheus_port": _parse_port,
    "shutdown_timeout_s": _parse_non_negative,
    "undeclared_features": _one_of(*UNDECLARED_POLICIES),
    "metrics_path": _one_of("local", "api"),
    "outcome_wait_s": _parse_non_negative,
}

_ENV_NAMES = {name: f"MODELTEL_{name.upper()}" for name in _PARSERS}
_ENV_NAMES["shutdown_timeout_s"] = "MODELTEL_SHUTDOWN_TIMEOUT"
_ENV_NAMES["outcome_wait_s"] = "MODELTEL_OUTCOME_WAIT"


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    return _ENV_NAMES[field]


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings from keyword overrides, then the environment, then defaults.

    Disabled reads nothing else: the kill switch must work when another setting is broken.
    """
    overrides = dict(overrides or {})
    environ = os.environ if environ is None else environ
    if _disabled(overrides, environ):
        return Settings(disabled=True)
    unknown = sorted(set(overrides) - set(_PARSERS))
    if unknown:
        raise ConfigurationError(f"configure() got unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in overrides:
            values[f.name] = _from_keyword(f.name, overrides[f.name])
        elif _ENV_NAMES[f.name] in environ:
            values[f.name] = _from_env(f.name, environ[_ENV_NAMES[f.name]])
    return Settings(**values)


def _disabled(overrides: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
    if "disabled" in overrides:
        return bool(_from_keyword("disabled", overrides["disabled"]))
    raw = environ.get(_ENV_NAMES["disabled"])
    return raw is not None and bool(_from_env("disabled", raw))


def _from_env(name: str, raw: str) -> Any:
    variable = _ENV_NAMES[name]
    try:
        return _PARSERS[name](raw)
    except ValueError as exc:
        shown = "<hidden>" if name == "hash_key" else repr(raw)
        raise ConfigurationError(f"{variable}={shown} is invalid: {exc}") from None


def _from_keyword(name: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return _PARSERS[name](value)
        except ValueError as exc:
            raise ConfigurationError(f"configure({name}={value!r}) is invalid: {exc}") from None
    try:
        return _PARSERS[name](str(value).lower() if isinstance(value, bool) else str(value))
    except ValueError as exc:
        raise ConfigurationError(f"configure({name}={value!r}) is invalid: {exc}") from None
