"""The exceptions modeltel raises into user code, and the one it raises at set-up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modeltel._contract.violation import Violation


class ModeltelError(Exception):
    """Base class of every exception modeltel raises into user code."""


class ConfigurationError(ModeltelError, ValueError):
    """A setting, env var or decorator argument is invalid; raised at start-up, never per call."""


class RateLimited(ModeltelError):
    """The tenant is over its rate limit; retry after ``retry_after`` seconds."""

    def __init__(self, tenant: str, retry_after: float, limit: str = "") -> None:
        self.tenant = tenant
        self.retry_after = retry_after
        self.limit = limit
        rule = f" ({limit})" if limit else ""
        super().__init__(f"tenant {tenant!r} is over its rate limit{rule}; retry after {retry_after:.3f}s")


class BudgetExceeded(ModeltelError):
    """The tenant's spend for the current window would pass its budget."""

    def __init__(self, tenant: str, remaining: float, resets_at: float, budget: str = "") -> None:
        self.tenant = tenant
        self.remaining = remaining
        self.resets_at = resets_at
        self.budget = budget
        rule = f" ({budget})" if budget else ""
        super().__init__(
            f"tenant {tenant!r} is over its budget{rule}; remaining {remaining:.6g}, "
            f"resets at unix time {resets_at:.0f}"
        )


class ContractViolation(ModeltelError):
    """The features broke the model's contract and the policy is ``reject``."""

    def __init__(self, model: str, violations: Sequence[Violation], rows: Sequence[int] = ()) -> None:
        self.model = model
        self.violations = tuple(violations)
        self.rows = tuple(rows)
        listed = "; ".join(str(v) for v in self.violations[:20])
        more = f"; and {len(self.violations) - 20} more" if len(self.violations) > 20 else ""
        where = f" in rows {list(self.rows[:20])}" if self.rows else ""
        super().__init__(f"model {model!r}: features break the contract{where}: {listed}{more}")
