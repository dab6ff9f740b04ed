"""What the limiter answers: the ``Admission`` decision and the ``LimiterStats`` counters."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final

RATE_LIMITED: Final = "rate_limited"
BUDGET_EXCEEDED: Final = "budget_exceeded"
NO_BUDGET: Final = -1


@dataclass(slots=True)
class Admission:
    """One admit decision; pass it back to ``settle`` or ``release`` when predict is done.

    Treat it as read-only: the common "allowed, nothing reserved" answer is one shared object.
    (Not ``frozen``: a frozen dataclass takes ~1.5 µs to construct, a plain one ~0.3 µs.)
    """

    allowed: bool
    reason: str | None = None
    """``None`` when allowed, else ``"rate_limited"`` or ``"budget_exceeded"``."""
    retry_after: float = 0.0
    """Seconds until a rate-limited call could be admitted."""
    remaining: float = math.inf
    """Budget left after this reservation (or at denial); ``inf`` without a budget."""
    resets_at: float = 0.0
    """Unix time the budget window ends; 0 without a budget."""
    rule: str = ""
    """The rate or budget spec that decided, for the exception message."""
    degraded: bool = False
    """Decided without the shared backend (``on_error`` policy)."""
    tenant: str = ""
    window: int = NO_BUDGET
    """Internal: start of the budget window the reservation belongs to."""
    reserved: int = 0
    """Internal: micro-units reserved."""
    lease: int | str = 0
    """Internal: the reservation's lease id (0 or "" when nothing is reserved)."""
    local: bool = False
    """Internal: settle against the in-process store rather than the shared backend."""
    committed: bool = False
    """Internal: ``reserved`` was charged as spend at admit (no lease); settle adjusts it."""
    epoch: str = ""
    """Internal: the identity of the Redis ledger the reservation was made in."""


ALLOWED: Final = Admission(allowed=True)


@dataclass(slots=True)
class LimiterStats:
    """Counters to export as metrics; updated under the limiter's lock, read at any time.

    Decisions for tenants that have no limit at all are not counted (they cost nothing).
    """

    admitted: int = 0
    rate_limited: int = 0
    budget_exceeded: int = 0
    degraded: int = 0
    """Decisions (of any outcome) made without the shared backend."""
    local_fallbacks: int = 0
    """Degraded decisions made by the in-process fallback limiter (``on_error="local"``)."""
    backend_errors: int = 0
    """Failed backend calls (refused, timed out, protocol errors), admit and settle alike."""
    breaker_open_count: int = 0
    """Times the circuit breaker opened."""
    short_circuits: int = 0
    """Backend calls skipped because the breaker was open."""
    settle_errors: int = 0
    """Settles or releases lost to a backend failure (their reservation expires with its lease)."""
    script_loads: int = 0
    """Times a Lua script was (re)loaded into Redis, e.g. after a restart or SCRIPT FLUSH."""
    setup_failures: int = 0
    """Times setting up the backend (connect, load scripts) failed within its own deadline."""
    ledgers_rebuilt: int = 0
    """Times this replica found a tenant's budget ledger lost by Redis (restart without
    persistence, flush, eviction) and added its own spend to the new one."""
    internal_errors: int = 0
    """Unexpected errors inside the limiter (the call was admitted, degraded)."""
    leases_expired: int = 0
    """Reservations freed by lease expiry rather than settled (memory backend)."""
    evictions: int = 0
    """Idle tenants dropped from the in-process table (no effect on decisions)."""
    unsafe_evictions: int = 0
    """Tenants with live state dropped because the table was full of live tenants."""

    def snapshot(self) -> dict[str, int]:
        """All counters by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def count(self, admission: Admission) -> None:
        """Count one decision (caller holds the lock)."""
        if admission.allowed:
            self.admitted += 1
        elif admission.reason == RATE_LIMITED:
            self.rate_limited += 1
        else:
            self.budget_exceeded += 1
        if admission.degraded:
            self.degraded += 1
