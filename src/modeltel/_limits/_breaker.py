"""When the shared backend fails: a circuit breaker, and the ``on_error`` policies.

Each backend call is bounded by the client's socket timeouts (no retries), so a refused, slow or
hung Redis costs one call at most ``timeout_s``. The breaker stops paying even that: after
``threshold`` consecutive failures it opens for ``cooldown_s``; every call meanwhile is decided
by the policy without touching the network; then one probe call is let through (half-open) and
its outcome closes the breaker or re-opens it. Limits resume as soon as a probe succeeds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from modeltel._errors import ConfigurationError
from modeltel._limits._decision import RATE_LIMITED, Admission

POLICIES: Final = ("open", "closed", "local")
DEGRADED_OPEN: Final = Admission(allowed=True, degraded=True)


def check_policy(on_error: str) -> str:
    """Validate an ``on_error`` value at start-up."""
    if on_error not in POLICIES:
        raise ConfigurationError(
            f"MODELTEL_LIMITS_ON_ERROR: bad value {on_error!r} (use open, closed or local)"
        )
    return on_error


def closed_denial(tenant: str, retry_after: float) -> Admission:
    """The ``on_error="closed"`` answer: deny as rate limited until the backend is back."""
    return Admission(
        allowed=False,
        reason=RATE_LIMITED,
        retry_after=retry_after,
        rule="limits backend unavailable (on_error=closed)",
        degraded=True,
        tenant=tenant,
    )


class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures -> half-open (one probe) -> closed."""

    def __init__(
        self, threshold: int = 5, cooldown_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = threshold
        self._cooldown = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    def after_fork(self) -> None:
        """Start the child closed, with a fresh lock."""
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    def allow(self) -> bool:
        """May this call go to the backend? (When half-open, only one caller gets ``True``.)"""
        if not self._open_until:
            return True
        with self._lock:
            if not self._open_until:
                return True
            if self._probing or self._clock() < self._open_until:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        """The backend answered: close."""
        if self._failures or self._open_until:
            with self._lock:
                self._failures = 0
                self._open_until = 0.0
                self._probing = False

    def failure(self) -> bool:
        """The backend failed; return True if this failure opened the breaker."""
        with self._lock:
            self._failures += 1
            if self._probing or (not self._open_until and self._failures >= self._threshold):
                self._open_until = self._clock() + self._cooldown
                self._probing = False
                return True
            return False

    def abandon(self) -> None:
        """The call was cancelled before the backend answered: let another caller probe."""
        if self._probing:
            with self._lock:
                self._probing = False

    def retry_after(self) -> float:
        """Seconds until the next probe may be tried."""
        if not self._open_until:
            return self._cooldown
        return max(0.0, self._open_until - self._clock())
