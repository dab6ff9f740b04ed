"""Where limits live when replicas share them: Redis or Redis Cluster, one round trip per admit.

Every admit is one ``EVALSHA`` of the admit script (rate and budget reservation, atomically,
judged by the server's clock); a ``NOSCRIPT`` reply (server restarted, ``SCRIPT FLUSH``) is
answered by one ``EVAL`` of the source, which also caches it again. A tenant's keys share the
hash tag ``{modeltel:<scope>:<tenant>}`` so they live in one cluster slot; all of them carry TTLs
(the rate key until its TAT, budget keys until the window ends plus the lease and a minute).

Clients have ``socket_timeout`` and ``socket_connect_timeout`` set to the limiter's
``timeout_s`` and no retries (a caller may also wait up to ``timeout_s`` for a free pooled
connection when more than ``_POOL_SIZE`` calls are in flight); this module raises whatever the
client raises and leaves the failure policy to the limiter. ``redis+cluster://host:port``
selects ``RedisCluster``. The async path keeps one ``redis.asyncio`` client per event loop,
since their connections are bound to the loop that opened them.

Setting up is not a call: when the limiter is configured (and, in a forked child, on its first
call) the scripts are loaded over a connection of their own whose timeout is ``_SETUP_S`` (or
``timeout_s`` if longer), and the sync client's first connection is opened, so replicas
starting together on a busy machine do not have their first calls judged by the per-call
timeout. A set-up that fails is counted (``setup_failures``), not treated as a backend
failure; calls then connect and load scripts as before.

Each call also carries this replica's view of its spend in the tenant's window (``_replica``)
so that the script can rebuild a ledger Redis has lost, in the same round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, TimeoutError
from redis.retry import Retry

from modeltel._limits._budget import BudgetRule, from_units
from modeltel._limits._decision import ALLOWED, BUDGET_EXCEEDED, RATE_LIMITED, Admission
from modeltel._limits._gcra import US_PER_S, RateRule
from modeltel._limits._replica import Ledger, ReplicaView
from modeltel._limits._scripts import ADMIT_LUA, SETTLE_LUA

CLUSTER_SCHEME = "redis+cluster://"
_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})
_KEY_GRACE_S = 60
# Connections per client. Callers beyond this many at once wait up to timeout_s for one (then
# the failure policy decides) instead of opening sockets without bound. Cluster clients have a
# pool per node that cannot wait, so theirs is larger.
_POOL_SIZE = 128
_CLUSTER_CONNECTIONS = 1024
# The least time setting up (connect, handshake, SCRIPT LOAD) is allowed.
_SETUP_S = 1.0


class _Script:
    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


_ADMIT = _Script(ADMIT_LUA)
_SETTLE = _Script(SETTLE_LUA)


def key_prefix(scope: str, tenant: str) -> str:
    """The hash-tagged prefix of all of one tenant's keys (``:``, ``{``, ``}``, ``%`` escaped)."""
    return "{modeltel:" + scope.translate(_ESCAPES) + ":" + tenant.translate(_ESCAPES) + "}"


class RedisStore:
    """Rate and budget state in Redis; methods raise on any backend failure."""

    def __init__(
        self,
        url: str,
        *,
        scope: str,
        timeout_s: float,
        lease_s: float,
        on_script_load: Callable[[], None],
        on_setup_failure: Callable[[], None],
    ) -> None:
        self._url = url
        self._cluster = url.startswith(CLUSTER_SCHEME)
        self._scope = scope
        self._timeout = timeout_s
        self._lease_us = round(lease_s * US_PER_S)
        self._grace = int(lease_s) + _KEY_GRACE_S
        self._on_script_load = on_script_load
        self._on_setup_failure = on_setup_failure
        self.after_fork()

    def after_fork(self) -> None:
        """Forget clients (their sockets belong to the parent) and draw a new lease-id prefix."""
        self._lock = threading.Lock()
        self._sync: Any = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._async_init: weakref.WeakKeyDictionary[Any, asyncio.Future[Any]] = weakref.WeakKeyDictionary()
        self._async_ready: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
        self._token = os.urandom(6).hex()
        self._ids = itertools.count(1)

    # -- admit ---------------------------------------------------------------------------------

    def admit(
        self, tenant: str, rate: RateRule | None, budget: BudgetRule | None, cost: int, replica: ReplicaView
    ) -> tuple[Admission, Ledger | None]:
        """One round trip: decide and reserve atomically on the server.

        Returns the decision and the budget ledger as the script left it (``None`` if the
        budget was not reached: no budget, or the rate said no first).
        """
        keys, args, lease = self._admit_call(tenant, rate, budget, cost, replica)
        reply = self._eval(_ADMIT, keys, args)
        return self._admission(tenant, rate, budget, cost, lease, reply)

    async def admit_async(
        self, tenant: str, rate: RateRule | None, budget: BudgetRule | None, cost: int, replica: ReplicaView
    ) -> tuple[Admission, Ledger | None]:
        """``admit`` over this event loop's ``redis.asyncio`` client."""
        keys, args, lease = self._admit_call(tenant, rate, budget, cost, replica)
        reply = await self._eval_async(_ADMIT, keys, args)
        return self._admission(tenant, rate, budget, cost, lease, reply)

    def _admit_call(
        self, tenant: str, rate: RateRule | None, budget: BudgetRule | None, cost: int, replica: ReplicaView
    ) -> tuple[list[str], list[str | int], str]:
        prefix = key_prefix(self._scope, tenant)
        lease = f"{self._token}.{next(self._ids)}" if budget is not None and cost else ""
        args: list[str | int] = [
            rate.interval if rate is not None else 0,
            rate.tolerance if rate is not None else 0,
            budget.window if budget is not None else "",
            budget.amount if budget is not None else 0,
            cost,
            self._lease_us,
            lease,
            self._grace,
            self._token,
            replica,
        ]
        return [prefix + ":rate", prefix + ":budget", prefix + ":leases"], args, lease

    @staticmethod
    def _admission(
        tenant: str, rate: RateRule | None, budget: BudgetRule | None, cost: int, lease: str, reply: Any
    ) -> tuple[Admission, Ledger | None]:
        code = int(reply[0])
        if code == 1:
            spec = rate.spec if rate is not None else ""
            return Admission(False, RATE_LIMITED, int(reply[1]) / US_PER_S, rule=spec, tenant=tenant), None
        if budget is None:
            return ALLOWED, None
        remaining, end, start, epoch = int(reply[1]), int(reply[2]), int(reply[3]), _text(reply[4])
        used = budget.amount - remaining
        if code == 2:
            denial = Admission(
                False,
                BUDGET_EXCEEDED,
                remaining=from_units(max(remaining, 0)),
                resets_at=float(end),
                rule=budget.spec,
                tenant=tenant,
            )
            return denial, Ledger(start, end, epoch, used)
        admission = Admission(
            True,
            remaining=from_units(remaining),
            resets_at=float(end),
            rule=budget.spec,
            tenant=tenant,
            window=start,
            reserved=cost,
            lease=f"{lease}:{cost}" if lease else "",
            epoch=epoch,
        )
        return admission, Ledger(start, end, epoch, used)

    # -- settle --------------------------------------------------------------------------------

    def settle(self, admission: Admission, actual: int, replica: ReplicaView) -> str | None:
        """Swap the reservation for ``actual`` micro-units (0 releases it); return the ledger's
        epoch (``None`` if its window had ended)."""
        keys, args = self._settle_call(admission, actual, replica)
        return _settled(self._eval(_SETTLE, keys, args))

    async def settle_async(self, admission: Admission, actual: int, replica: ReplicaView) -> str | None:
        """``settle`` over this event loop's ``redis.asyncio`` client."""
        keys, args = self._settle_call(admission, actual, replica)
        return _settled(await self._eval_async(_SETTLE, keys, args))

    def _settle_call(
        self, admission: Admission, actual: int, replica: ReplicaView
    ) -> tuple[list[str], list[str | int]]:
        prefix = key_prefix(self._scope, admission.tenant)
        expire_at = int(admission.resets_at) + self._grace
        args: list[str | int] = [
            admission.window,
            admission.lease,
            admission.reserved,
            actual,
            expire_at,
            admission.epoch,
            self._token,
            replica,
        ]
        return [prefix + ":budget", prefix + ":leases"], args

    # -- clients -------------------------------------------------------------------------------

    def _eval(self, script: _Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        client = self._sync if self._sync is not None else self._sync_client()
        try:
            return client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self._on_script_load()
            return client.eval(script.source, len(keys), *keys, *args)

    async def _eval_async(self, script: _Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        client = self._async_client()
        if self._cluster and not self._async_ready.get(client, False):
            await self._initialize(client)
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self._on_script_load()
            return await client.eval(script.source, len(keys), *keys, *args)

    async def _initialize(self, client: Any) -> None:
        # redis.asyncio's RedisCluster initialises lazily on first use, and concurrent first uses
        # race (one coroutine's initialisation closes connections another is reading). All
        # callers await the same task instead; a failed attempt is retried by the next caller.
        task = self._async_init.get(client)
        if task is None or (task.done() and task.exception() is not None):
            task = self._async_init[client] = asyncio.ensure_future(client.initialize())
        await asyncio.shield(task)
        self._async_ready[client] = True

    def _options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
            "health_check_interval": 0,
        }

    def _sync_client(self) -> Any:
        with self._lock:
            if self._sync is None:
                retry = Retry(NoBackoff(), 0)
                if self._cluster:
                    url = "redis://" + self._url[len(CLUSTER_SCHEME) :]
                    self._sync = redis.cluster.RedisCluster.from_url(
                        url, retry=retry, max_connections=_CLUSTER_CONNECTIONS, **self._options()
                    )
                else:
                    pool = redis.BlockingConnectionPool.from_url(
                        self._url,
                        max_connections=_POOL_SIZE,
                        timeout=self._timeout,
                        retry=retry,
                        **self._options(),
                    )
                    self._sync = redis.Redis(connection_pool=pool)
                    self._sync.auto_close_connection_pool = True
                if not self._set_up(self._sync):
                    self._on_setup_failure()
            return self._sync

    def _set_up(self, client: Any) -> bool:
        """Load both scripts over a connection of its own with the set-up deadline as its
        timeout, then open one of ``client``'s connections (retrying attempts that time out
        until the deadline). A refusal or any other error ends it: the calls' failure policy
        takes over, as before."""
        deadline = time.monotonic() + max(self._timeout, _SETUP_S)
        try:
            loader = self._new_client(max(self._timeout, _SETUP_S))
            try:
                for script in (_ADMIT, _SETTLE):
                    loader.script_load(script.source)
            finally:
                loader.close()
            self._on_script_load()
            while True:
                try:
                    client.ping()
                    return True
                except TimeoutError:
                    if time.monotonic() >= deadline:
                        return False
        except Exception:
            return False

    def _new_client(self, timeout: float) -> Any:
        options = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        if self._cluster:
            url = "redis://" + self._url[len(CLUSTER_SCHEME) :]
            return redis.cluster.RedisCluster.from_url(url, **options)
        return redis.Redis.from_url(self._url, **options)

    def connect(self) -> None:
        """Set the sync client up now (at configuration) rather than on the first call."""
        self._sync_client()

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
            if self._cluster:
                url = "redis://" + self._url[len(CLUSTER_SCHEME) :]
                client = redis.asyncio.cluster.RedisCluster.from_url(
                    url, retry=retry, max_connections=_CLUSTER_CONNECTIONS, **self._options()
                )
            else:
                pool = redis.asyncio.BlockingConnectionPool.from_url(
                    self._url,
                    max_connections=_POOL_SIZE,
                    timeout=self._timeout,
                    retry=retry,
                    **self._options(),
                )
                client = redis.asyncio.Redis(connection_pool=pool)
                client.auto_close_connection_pool = True
            self._async[loop] = client
        return client

    # -- shutdown ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync client, and async clients whose loop can still run their shutdown."""
        with self._lock:
            sync, self._sync = self._sync, None
        if sync is not None:
            sync.close()
        for loop, client in list(self._async.items()):
            if loop.is_closed():
                continue
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)
            else:
                loop.run_until_complete(client.aclose())
        self._async.clear()

    async def aclose(self) -> None:
        """Close the running loop's async client (and the sync one)."""
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _settled(reply: Any) -> str | None:
    return _text(reply[1]) if int(reply[0]) == 1 else None
