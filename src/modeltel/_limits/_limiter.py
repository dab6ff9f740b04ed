"""The ``Limiter``: one per decorated model; resolves a tenant's rules and asks the right store.

Nothing here raises into the caller once constructed: backend failures go to the ``on_error``
policy (see ``_breaker``), and anything unexpected (a bug, a bizarre ``cost``) admits the call,
degraded, and is counted in ``stats.internal_errors``. Bad settings raise ``ConfigurationError``
from the constructor, at start-up.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from modeltel import _forksafe
from modeltel._errors import ConfigurationError
from modeltel._limits._breaker import DEGRADED_OPEN, CircuitBreaker, check_policy, closed_denial
from modeltel._limits._budget import BudgetRule, compile_budget, to_units
from modeltel._limits._decision import ALLOWED, NO_BUDGET, Admission, LimiterStats
from modeltel._limits._gcra import NS_PER_S, US_PER_S, RateRule, compile_rate
from modeltel._limits._memory import MemoryStore
from modeltel._limits._replica import Ledger, ReplicaSpend, ReplicaView, Sent
from modeltel._limits._spec import Budget, Rate

if TYPE_CHECKING:
    from modeltel._limits._redis import RedisStore

_BACKEND_VAR = "MODELTEL_LIMITS_BACKEND"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://")


class _Rules:
    """Compiled rules: exact per-tenant entries plus the ``*`` entry for everyone else."""

    __slots__ = ("budget_any", "budgets", "rate_any", "rates")

    def __init__(
        self, rates: Mapping[str, Rate], budgets: Mapping[str, Budget], units_per_s: int, divisor: int
    ) -> None:
        self.rates = {t: compile_rate(r, units_per_s, divisor) for t, r in rates.items() if t != "*"}
        self.budgets = {t: compile_budget(b, divisor) for t, b in budgets.items() if t != "*"}
        self.rate_any = compile_rate(rates["*"], units_per_s, divisor) if "*" in rates else None
        self.budget_any = compile_budget(budgets["*"], divisor) if "*" in budgets else None

    def lookup(self, tenant: str) -> tuple[RateRule | None, BudgetRule | None]:
        return self.rates.get(tenant, self.rate_any), self.budgets.get(tenant, self.budget_any)


class Limiter:
    """Per-tenant rate limits and budgets for one model (its ``scope``), exact under concurrency.

    ``backend`` is ``"memory"`` or a Redis URL (``redis://``, ``rediss://``, ``unix://``,
    ``redis+cluster://host:port``) shared by all replicas; the connection is set up (and the
    scripts loaded) here, not by the first call. ``on_error`` decides calls while Redis is
    failing: ``"open"`` admits, ``"closed"`` denies (as ``rate_limited``), ``"local"`` uses an
    in-process limiter with every rate divided by ``replicas_hint`` and, for budgets, this
    replica's ``1/replicas_hint`` share of what Redis last said was left. What ``open`` and
    ``local`` admit meanwhile is charged to Redis once it answers again, and a ledger Redis lost
    is rebuilt from the replicas' own spend (see ``_replica``). ``lease_s`` is how long an
    unsettled budget reservation is held before it is freed. ``clock`` (unix seconds) replaces
    every in-process clock: the memory backend's, the fallback's and the circuit breaker's.
    """

    def __init__(
        self,
        *,
        rates: Mapping[str, Rate],
        budgets: Mapping[str, Budget],
        backend: str = "memory",
        scope: str = "default",
        on_error: str = "local",
        timeout_s: float = 0.005,
        replicas_hint: int = 1,
        clock: Callable[[], float] | None = None,
        max_tenants: int = 100_000,
        lease_s: float = 300.0,
    ) -> None:
        self._config: dict[str, Any] = {
            "rates": dict(rates),
            "budgets": dict(budgets),
            "backend": backend,
            "scope": scope,
            "on_error": check_policy(on_error),
            "timeout_s": timeout_s,
            "replicas_hint": replicas_hint,
            "clock": clock,
            "max_tenants": max_tenants,
            "lease_s": lease_s,
        }
        if not (timeout_s > 0 and replicas_hint >= 1 and max_tenants >= 1 and lease_s > 0):
            raise ConfigurationError(
                "Limiter: timeout_s and lease_s must be > 0, replicas_hint and max_tenants >= 1"
            )
        self._build(**self._config)

    def _build(
        self,
        *,
        rates: Mapping[str, Rate],
        budgets: Mapping[str, Budget],
        backend: str,
        scope: str,
        on_error: str,
        timeout_s: float,
        replicas_hint: int,
        clock: Callable[[], float] | None,
        max_tenants: int,
        lease_s: float,
    ) -> None:
        shared = backend != "memory"
        if shared and not backend.startswith(_REDIS_SCHEMES):
            raise ConfigurationError(f"{_BACKEND_VAR}: bad value {backend!r} (use memory or a redis:// URL)")
        self.stats = LimiterStats()
        self.enabled = bool(rates or budgets)
        """False when no limit is configured: ``admit`` then returns at once."""
        self._policy = on_error
        self._units_memo: tuple[float, int] = (0.0, 0)
        self._rules = _Rules(rates, budgets, US_PER_S if shared else NS_PER_S, 1)
        self._local = MemoryStore(
            stats=self.stats, max_tenants=max_tenants, lease_s=lease_s, clock=clock, fallback=shared
        )
        self._local_rules = self._rules
        self._remote: RedisStore | None = None
        self._breaker = CircuitBreaker(clock=clock or time.monotonic)
        self._spend = ReplicaSpend(replicas=replicas_hint, max_tenants=max_tenants, wall=clock or time.time)
        if shared and self.enabled:
            self._local_rules = _Rules(rates, budgets, NS_PER_S, replicas_hint)
            self._remote = _redis_store(
                backend, scope, timeout_s, lease_s, self._script_loaded, self._setup_failed
            )
            self._remote.connect()
        _forksafe.register(self)

    # -- admit ---------------------------------------------------------------------------------

    def admit(self, tenant: str, cost: float = 0.0, *, commit: bool = False) -> Admission:
        """Decide one call for ``tenant`` and reserve ``cost`` against its budget; never raises.

        ``commit=True`` (memory backend; a shared backend ignores it and keeps leases) charges
        ``cost`` as spend at once: ``settle`` with the same cost is then free, ``settle`` with
        another cost charges the difference and ``release`` refunds it. One lock round instead
        of two for the common fixed-cost call; a reservation that is never settled stays spent
        rather than being freed when its lease ends.
        """
        if not self.enabled:
            return ALLOWED
        rules = self._rules  # lookup() inlined: this is the hot path
        rate = rules.rates.get(tenant, rules.rate_any)
        budget = rules.budgets.get(tenant, rules.budget_any)
        if rate is None and budget is None:
            return ALLOWED
        try:
            units = 0
            if budget is not None:
                memo = self._units_memo  # callers mostly pass one cost over and over
                if memo[0] != cost:
                    memo = self._units_memo = (cost, to_units(cost))
                units = memo[1]
            if self._remote is None:
                return self._local.admit(tenant, rate, budget, units, commit)
            if not self._breaker.allow():
                return self._short_circuit(tenant, units)
            sent = self._spend.send_admit(tenant, units) if budget is not None else None
            try:
                admission, ledger = self._remote.admit(tenant, rate, budget, units, _view(sent))
            except BaseException as exc:
                return self._failed(exc, tenant, units, sent)
            return self._succeeded(admission, ledger, sent)
        except Exception:
            return self._internal_error()

    async def admit_async(self, tenant: str, cost: float = 0.0) -> Admission:
        """``admit`` for coroutines: the Redis round trip awaits, never blocking the loop."""
        if self._remote is None:
            return self.admit(tenant, cost)
        rate, budget = self._rules.lookup(tenant)
        if rate is None and budget is None:
            return ALLOWED
        try:
            units = to_units(cost) if budget is not None else 0
            if not self._breaker.allow():
                return self._short_circuit(tenant, units)
            sent = self._spend.send_admit(tenant, units) if budget is not None else None
            try:
                admission, ledger = await self._remote.admit_async(tenant, rate, budget, units, _view(sent))
            except BaseException as exc:
                return self._failed(exc, tenant, units, sent)
            return self._succeeded(admission, ledger, sent)
        except Exception:
            return self._internal_error()

    def _succeeded(self, admission: Admission, ledger: Ledger | None, sent: Sent | None) -> Admission:
        self._breaker.success()
        if sent is not None:
            if ledger is None:  # the rate said no before the script reached the budget
                self._spend.failed(sent)
            else:
                self._rebuilt(self._spend.answered(sent, ledger, admission.allowed))
        with self._local.lock:
            self.stats.count(admission)
        return admission

    def _failed(self, exc: BaseException, tenant: str, units: int, sent: Sent | None) -> Admission:
        if sent is not None:
            self._spend.failed(sent)
        if not isinstance(exc, Exception):
            self._breaker.abandon()
            raise exc  # cancellation or interrupt: the caller's, not ours to swallow
        self._backend_error()
        return self._degraded(tenant, units)

    def _short_circuit(self, tenant: str, units: int) -> Admission:
        with self._local.lock:
            self.stats.short_circuits += 1
        return self._degraded(tenant, units)

    def _degraded(self, tenant: str, units: int) -> Admission:
        budget = self._rules.budgets.get(tenant, self._rules.budget_any)
        if self._policy == "local":
            return self._degraded_local(tenant, budget, units)
        if self._policy == "open":
            admission = DEGRADED_OPEN
            if budget is not None and units:
                self._spend.charge(tenant, budget, units)  # Redis learns it once back
        else:
            admission = closed_denial(tenant, self._breaker.retry_after())
        with self._local.lock:
            self.stats.count(admission)
        return admission

    def _degraded_local(self, tenant: str, budget: BudgetRule | None, units: int) -> Admission:
        """Rates from the in-process limiter (divided by replicas); the budget from this replica's
        share of what Redis last said was left (``_replica``)."""
        rate = self._local_rules.rates.get(tenant, self._local_rules.rate_any)
        if budget is None:
            return self._local.admit(tenant, rate, None, 0)
        admission = self._spend.admit_local(tenant, budget, units)
        if not admission.allowed:
            with self._local.lock:
                self.stats.count(admission)
                self.stats.local_fallbacks += 1
            return admission
        if rate is not None:
            rated = self._local.admit(tenant, rate, None, 0)  # counts the decision
            if not rated.allowed:
                self._spend.settled(admission, 0)
                return rated
        else:
            with self._local.lock:
                self.stats.count(admission)
                self.stats.local_fallbacks += 1
        return admission

    # -- settle / release ------------------------------------------------------------------------

    def settle(self, admission: Admission, actual_cost: float) -> None:
        """Replace ``admission``'s reservation by the actual cost; call once, after predict."""
        if admission.window == NO_BUDGET:
            return
        try:
            units = to_units(actual_cost)
            if admission.committed and units == admission.reserved:
                return  # charged at admit, and that was the actual cost
            if self._remote is None:
                self._local.settle(admission, units)
                return
            sent = self._to_send(admission, units)
            if sent is None:
                return
            try:
                epoch = self._remote.settle(admission, units, sent.view)
            except BaseException as exc:
                self._settle_failed(exc, admission, units, sent)
            else:
                self._remote_settled(sent, epoch)
        except Exception:
            self._internal_error()

    def release(self, admission: Admission) -> None:
        """Give the reservation back (predict raised or was cancelled); the rate token stays spent."""
        self.settle(admission, 0.0)

    async def settle_async(self, admission: Admission, actual_cost: float) -> None:
        """``settle`` for coroutines."""
        if self._remote is None or admission.local or admission.window == NO_BUDGET:
            self.settle(admission, actual_cost)
            return
        try:
            units = to_units(actual_cost)
            sent = self._to_send(admission, units)
            if sent is None:
                return
            try:
                epoch = await self._remote.settle_async(admission, units, sent.view)
            except BaseException as exc:
                self._settle_failed(exc, admission, units, sent)
            else:
                self._remote_settled(sent, epoch)
        except Exception:
            self._internal_error()

    async def release_async(self, admission: Admission) -> None:
        """``release`` for coroutines."""
        await self.settle_async(admission, 0.0)

    def _to_send(self, admission: Admission, units: int) -> Sent | None:
        """Book the settle in this replica's own spend; what to send Redis, or None when there is
        nothing to send (a fallback admission, nothing reserved) or the breaker is open."""
        self._spend.settled(admission, units)
        if admission.local or (not admission.lease and not units):
            return None
        if not self._breaker.allow():
            self._settle_lost(admission, units)
            return None
        return self._spend.send_settle(admission)

    def _remote_settled(self, sent: Sent, epoch: str | None) -> None:
        self._breaker.success()
        self._rebuilt(self._spend.settled_remote(sent, epoch))

    def _rebuilt(self, rebuilt: bool) -> None:
        if rebuilt:
            with self._local.lock:
                self.stats.ledgers_rebuilt += 1

    def _settle_failed(self, exc: BaseException, admission: Admission, units: int, sent: Sent) -> None:
        self._spend.failed(sent)
        if not isinstance(exc, Exception):
            self._breaker.abandon()
            raise exc
        self._backend_error()
        self._settle_lost(admission, units)

    def _settle_lost(self, admission: Admission, units: int) -> None:
        self._spend.settle_lost(admission, units)
        with self._local.lock:
            self.stats.settle_errors += 1

    # -- counters --------------------------------------------------------------------------------

    def _backend_error(self) -> None:
        opened = self._breaker.failure()
        with self._local.lock:
            self.stats.backend_errors += 1
            self.stats.breaker_open_count += opened

    def _script_loaded(self) -> None:
        with self._local.lock:
            self.stats.script_loads += 1

    def _setup_failed(self) -> None:
        with self._local.lock:
            self.stats.setup_failures += 1

    def _internal_error(self) -> Admission:
        with contextlib.suppress(Exception), self._local.lock:
            self.stats.internal_errors += 1
        return DEGRADED_OPEN

    # -- lifecycle -------------------------------------------------------------------------------

    def tenants_in_memory(self) -> int:
        """How many tenants the in-process table holds now (bounded by ``max_tenants``)."""
        return len(self._local)

    def close(self) -> None:
        """Close backend connections; the limiter reconnects if used again."""
        if self._remote is not None:
            with contextlib.suppress(Exception):
                self._remote.close()

    async def aclose(self) -> None:
        """Close backend connections, including the running loop's async client."""
        if self._remote is not None:
            with contextlib.suppress(Exception):
                await self._remote.aclose()

    def _after_fork(self) -> None:
        self._local.after_fork()
        self._breaker.after_fork()
        self._spend.after_fork()
        if self._remote is not None:
            self._remote.after_fork()

    def __getstate__(self) -> dict[str, Any]:
        return self._config

    def __setstate__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._build(**config)


def _view(sent: Sent | None) -> ReplicaView:
    return sent.view if sent is not None else ""


def _redis_store(
    url: str,
    scope: str,
    timeout_s: float,
    lease_s: float,
    on_script_load: Callable[[], None],
    on_setup_failure: Callable[[], None],
) -> RedisStore:
    try:
        from modeltel._limits._redis import RedisStore
    except ImportError as exc:
        raise ConfigurationError(
            f"{_BACKEND_VAR}={url!r} needs the redis client: pip install 'modeltel[redis]' ({exc})"
        ) from None
    return RedisStore(
        url,
        scope=scope,
        timeout_s=timeout_s,
        lease_s=lease_s,
        on_script_load=on_script_load,
        on_setup_failure=on_setup_failure,
    )
