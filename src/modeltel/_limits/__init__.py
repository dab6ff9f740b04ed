"""Per-tenant rate limits and budgets: what (``_spec``), how (``_gcra``, ``_budget``) and where
(``_memory``, ``_redis``), with the failure policy in ``_breaker`` and the façade in ``_limiter``."""

from modeltel._limits._decision import Admission, LimiterStats
from modeltel._limits._limiter import Limiter
from modeltel._limits._spec import (
    Budget,
    Rate,
    normalize_budgets,
    normalize_rate_limits,
    parse_budget,
    parse_budgets,
    parse_rate,
    parse_rate_limits,
)

__all__ = [
    "Admission",
    "Budget",
    "Limiter",
    "LimiterStats",
    "Rate",
    "normalize_budgets",
    "normalize_rate_limits",
    "parse_budget",
    "parse_budgets",
    "parse_rate",
    "parse_rate_limits",
]
