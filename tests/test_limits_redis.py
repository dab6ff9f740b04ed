"""The Redis backend against a real redis-server: exactness, ledger, scripts, failure policy."""

from __future__ import annotations

import asyncio
import calendar
import os
import pickle
import random
import select
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from modeltel import ConfigurationError
from modeltel._limits import Admission, Limiter, parse_budgets, parse_rate_limits
from modeltel._limits._budget import window_bounds
from modeltel._limits._scripts import CALENDAR_LUA
from redis_server import RedisServer, free_port, process_decisions, process_storm, redis_server

pytestmark = pytest.mark.redis

TIMEOUT = 0.02
SLACK = 0.05


class FakeClock:
    """Drives the circuit breaker's cooldown without waiting for it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server this test may stop and restart."""
    with redis_server() as srv:
        yield srv


@pytest.fixture
def client_of_own(own_server: RedisServer) -> Iterator[redis.Redis]:
    with own_server.client() as c:
        yield c


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    with server.client() as c:
        yield c


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make threads switch every microsecond so storms really interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that completes TCP handshakes and then never answers (a hung Redis)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def make(url: str, rates: str = "", budgets: str = "", **kw: Any) -> Limiter:
    """A limiter in its own scope; generous timeout unless the test is about timeouts."""
    kw.setdefault("timeout_s", 2.0)
    kw.setdefault("scope", uuid.uuid4().hex)
    return Limiter(rates=parse_rate_limits(rates), budgets=parse_budgets(budgets), backend=url, **kw)


def timed(call: Callable[[], Admission], times: int) -> tuple[list[Admission], list[float]]:
    results, durations = [], []
    for _ in range(times):
        start = time.perf_counter()
        results.append(call())
        durations.append(time.perf_counter() - start)
    return results, durations


def thread_storm(
    lim: Limiter, tenant: str, threads: int, per_thread: int, cost: float = 0.0
) -> list[Admission]:
    barrier = threading.Barrier(threads)
    results: list[list[Admission]] = [[] for _ in range(threads)]

    def run(i: int) -> None:
        barrier.wait()
        results[i].extend(lim.admit(tenant, cost) for _ in range(per_thread))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [a for r in results for a in r]


def ledger(client: redis.Redis, lim: Limiter, tenant: str) -> tuple[int, int, int]:
    """(spent, reserved, open leases) as stored in Redis."""
    prefix = "{modeltel:" + lim._config["scope"] + ":" + tenant + "}"
    spent, reserved = client.hmget(prefix + ":budget", "spent", "reserved")
    return int(spent or 0), int(reserved or 0), client.zcard(prefix + ":leases")


# -- exactness -------------------------------------------------------------------------------


def test_thread_storm_admits_exactly_the_burst(server: RedisServer, fast_switching: None) -> None:
    """16 threads x 4 calls against burst 20 admit exactly 20, round after round."""
    lim = make(server.url, "*=20/day")
    for round_ in range(10):
        decisions = thread_storm(lim, f"t{round_}", threads=16, per_thread=4)
        admitted = sum(a.allowed for a in decisions)
        denied = sum(a.reason == "rate_limited" for a in decisions)
        assert (admitted, admitted + denied) == (20, 64)
    assert (lim.stats.degraded, lim.stats.admitted) == (0, 200)
    lim.close()


def test_thread_storm_never_overspends_a_budget(server: RedisServer, fast_switching: None) -> None:
    """16 threads x 4 calls of cost 1 against a budget of 37 admit exactly 37."""
    lim = make(server.url, budgets="*=37/day")
    decisions = thread_storm(lim, "acme", threads=16, per_thread=4, cost=1.0)
    assert sum(a.allowed for a in decisions) == 37
    assert lim.stats.degraded == 0
    lim.close()


def test_processes_sharing_redis_admit_exactly_the_burst(server: RedisServer) -> None:
    """4 spawned processes x 30 calls against burst 50 admit exactly 50 between them."""
    lim = make(server.url, "*=50/day")
    assert sum(process_storm(lim, "acme", processes=4, calls=30)) == 50


def test_processes_sharing_redis_never_overspend_a_budget(server: RedisServer) -> None:
    """4 spawned processes x 20 calls of cost 1 against a budget of 37 admit exactly 37."""
    lim = make(server.url, budgets="*=37/day")
    assert sum(process_storm(lim, "acme", processes=4, calls=20, cost=1.0)) == 37


def test_asyncio_storm_is_exact(server: RedisServer) -> None:
    """300 concurrent admit_async calls against burst 40 (and a budget of 35) admit exactly 35."""
    rate_only = make(server.url, "*=40/day")
    both = make(server.url, "*=40/day", "*=35/day")

    async def main() -> tuple[list[Admission], list[Admission]]:
        first = await asyncio.gather(*(rate_only.admit_async("acme") for _ in range(300)))
        second = await asyncio.gather(*(both.admit_async("acme", 1.0) for _ in range(300)))
        await rate_only.aclose()
        await both.aclose()
        return first, second

    first, second = asyncio.run(main())
    assert (sum(a.allowed for a in first), sum(a.allowed for a in second)) == (40, 35)
    assert rate_only.stats.degraded + both.stats.degraded == 0


def test_rate_limited_answer_from_redis(server: RedisServer) -> None:
    """A denial carries the rule and a retry_after within one emission interval."""
    lim = make(server.url, "acme=2/s burst 1")
    assert lim.admit("acme").allowed
    denied = lim.admit("acme")
    assert (denied.reason, denied.rule) == ("rate_limited", "2/s burst 1")
    assert 0 < denied.retry_after <= 0.5
    lim.close()


# -- budgets -----------------------------------------------------------------------------------


def test_ledger_matches_an_independent_tally(server: RedisServer, client: redis.Redis) -> None:
    """After random admits, settles and releases, Redis' spend equals the tally; nothing stays reserved."""
    rng = random.Random(11)
    lim = make(server.url, budgets="acme=1000/day")
    tally = 0
    open_: list[Admission] = []
    for _ in range(600):
        roll = rng.random()
        if roll < 0.5 or not open_:
            admission = lim.admit("acme", rng.choice([0.0, 0.25, 1.0, 2.5]))
            if admission.allowed:
                open_.append(admission)
        else:
            admission = open_.pop(rng.randrange(len(open_)))
            if roll < 0.8:
                actual = rng.choice([0.0, 0.1, 0.25, 3.0])
                lim.settle(admission, actual)
                tally += round(actual * 1_000_000)
            else:
                lim.release(admission)
    for admission in open_:
        lim.release(admission)
    assert ledger(client, lim, "acme") == (tally, 0, 0)
    assert lim.stats.degraded == 0
    lim.close()


def test_async_settle_and_release_keep_the_ledger(server: RedisServer, client: redis.Redis) -> None:
    """settle_async charges the actual cost and release_async frees the reservation."""
    lim = make(server.url, budgets="acme=10/day")

    async def main() -> None:
        await lim.settle_async(await lim.admit_async("acme", 2.0), 1.5)
        await lim.release_async(await lim.admit_async("acme", 4.0))
        await lim.aclose()

    asyncio.run(main())
    assert ledger(client, lim, "acme") == (1_500_000, 0, 0)


def test_expired_lease_frees_a_crashed_callers_reservation(server: RedisServer, client: redis.Redis) -> None:
    """A reservation whose lease has run out no longer blocks the budget."""
    lim = make(server.url, budgets="acme=1/day")
    crashed = lim.admit("acme", 1.0)
    assert lim.admit("acme", 1.0).reason == "budget_exceeded"
    prefix = "{modeltel:" + lim._config["scope"] + ":acme}"
    client.zadd(prefix + ":leases", {crashed.lease: 0}, xx=True)  # its lease ran out long ago
    assert lim.admit("acme", 1.0).allowed
    assert ledger(client, lim, "acme") == (0, 1_000_000, 1)
    lim.close()


def test_budget_answer_reports_remaining_and_reset(server: RedisServer) -> None:
    """Remaining and resets_at come from the server's calendar window."""
    lim = make(server.url, budgets="acme=5/hour")
    admission = lim.admit("acme", 1.25)
    assert admission.remaining == 3.75
    assert admission.resets_at == window_bounds(time.time(), "hour")[1]
    lim.close()


def test_lua_calendar_matches_python(client: redis.Redis) -> None:
    """The script's UTC hour/day/month windows equal Python's around every month boundary 1999-2101."""
    script = client.register_script(
        CALENDAR_LUA + "local s, e = window_bounds(tonumber(ARGV[1]), ARGV[2]) return {fmt(s), fmt(e)}"
    )
    cases = []
    for year in range(1999, 2102):
        for month in range(1, 13):
            edge = calendar.timegm((year, month, 1, 0, 0, 0))
            cases += [(t, w) for t in (edge - 1, edge, edge + 86399) for w in ("hour", "day", "month")]
    with client.pipeline(transaction=False) as pipe:
        for t, w in cases:
            script(args=[t, w], client=pipe)
        got = [(int(s), int(e)) for s, e in pipe.execute()]
    assert got == [window_bounds(t, w) for t, w in cases]


# -- keys and scripts ----------------------------------------------------------------------------


def test_keys_share_a_hash_tag_and_carry_ttls(server: RedisServer, client: redis.Redis) -> None:
    """All of a tenant's keys use one hash tag; each expires (rate at its TAT, budget after the window)."""
    lim = make(server.url, "acme=1/s", "acme=5/day", lease_s=300.0)
    admission = lim.admit("acme", 1.0)
    prefix = "{modeltel:" + lim._config["scope"] + ":acme}"
    assert sorted(client.keys(prefix + "*")) == [
        p.encode() for p in sorted(prefix + s for s in (":budget", ":leases", ":rate"))
    ]
    assert 0 < client.pttl(prefix + ":rate") <= 1000
    assert client.expiretime(prefix + ":budget") == admission.resets_at + 300 + 60
    assert client.expiretime(prefix + ":leases") == admission.resets_at + 300 + 60
    lim.close()


def test_scope_and_tenant_are_escaped_in_key_names(server: RedisServer, client: redis.Redis) -> None:
    """Separators in scope or tenant cannot make two tenants share a key."""
    lim = make(server.url, "*=1/hour", scope="m:x")
    assert lim.admit("a}:b").allowed
    assert client.exists("{modeltel:m%3Ax:a%7D%3Ab}:rate") == 1
    lim.close()


def test_script_flush_is_survived(server: RedisServer, client: redis.Redis) -> None:
    """After SCRIPT FLUSH the next admit reloads the script and still decides from Redis."""
    lim = make(server.url, "acme=2/hour")
    assert lim.admit("acme").allowed
    loads = lim.stats.script_loads
    client.script_flush()
    second, third = lim.admit("acme"), lim.admit("acme")
    assert (second.allowed, second.degraded, third.reason) == (True, False, "rate_limited")
    assert lim.stats.script_loads == loads + 1
    lim.close()


def test_missing_redis_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-py a Redis backend fails at start-up with the install hint."""
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "modeltel._limits._redis")
    with pytest.raises(ConfigurationError, match=r"pip install 'modeltel\[redis\]'"):
        make("redis://127.0.0.1:1/0", "acme=1/s")


def test_unknown_backend_is_a_configuration_error() -> None:
    """A backend that is neither memory nor a Redis URL names the variable."""
    with pytest.raises(ConfigurationError, match=r"^MODELTEL_LIMITS_BACKEND: bad value 'memcached://x'"):
        make("memcached://x", "acme=1/s")


# -- failure policy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [("open", [True] * 8), ("closed", [False] * 8), ("local", [True] * 5 + [False] * 3)],
)
def test_refused_redis_applies_the_policy_within_the_timeout(policy: str, allowed: list[bool]) -> None:
    """With nothing listening, each call costs < timeout, the policy decides, the breaker opens after 5."""
    lim = make(
        f"redis://127.0.0.1:{free_port()}/0",
        "acme=10/hour",
        on_error=policy,
        timeout_s=TIMEOUT,
        replicas_hint=2,
    )
    results, durations = timed(lambda: lim.admit("acme"), 8)
    assert max(durations) < TIMEOUT + SLACK
    assert [a.allowed for a in results] == allowed
    assert all(a.degraded for a in results)
    stats = lim.stats
    assert (stats.backend_errors, stats.breaker_open_count, stats.short_circuits, stats.degraded) == (
        5,
        1,
        3,
        8,
    )
    assert stats.local_fallbacks == (8 if policy == "local" else 0)
    assert stats.setup_failures == 1  # counted apart: setting up is not a call
    lim.close()


def test_closed_policy_denies_as_rate_limited_with_retry_after() -> None:
    """The closed policy's denial maps to RateLimited and says when the backend will be retried."""
    lim = make(
        f"redis://127.0.0.1:{free_port()}/0",
        "acme=10/hour",
        on_error="closed",
        timeout_s=TIMEOUT,
        clock=FakeClock(),
    )
    denial = lim.admit("acme")
    assert (denial.reason, denial.rule, denial.retry_after) == (
        "rate_limited",
        "limits backend unavailable (on_error=closed)",
        1.0,
    )
    lim.close()


def test_hung_redis_costs_each_call_at_most_the_timeout() -> None:
    """A server that never answers costs each call < timeout + slack, then the breaker stops even that."""
    with silent_port() as port:
        lim = make(
            f"redis://127.0.0.1:{port}/0", "acme=10/hour", "acme=5/day", on_error="open", timeout_s=TIMEOUT
        )
        results, durations = timed(lambda: lim.admit("acme", 1.0), 8)
        lim.close()
    assert max(durations) < TIMEOUT + SLACK
    assert max(durations[5:]) < TIMEOUT / 2
    assert all(a.allowed and a.degraded for a in results)
    assert (lim.stats.backend_errors, lim.stats.short_circuits) == (5, 3)


def test_hung_redis_never_blocks_an_async_caller_past_the_timeout() -> None:
    """admit_async against a hung server returns within timeout + slack, with the policy's answer."""
    with silent_port() as port:
        lim = make(f"redis://127.0.0.1:{port}/0", "acme=10/hour", on_error="closed", timeout_s=TIMEOUT)

        async def main() -> tuple[Admission, float]:
            start = time.perf_counter()
            admission = await lim.admit_async("acme")
            elapsed = time.perf_counter() - start
            await lim.aclose()
            return admission, elapsed

        admission, elapsed = asyncio.run(main())
    assert elapsed < TIMEOUT + SLACK
    assert (admission.allowed, admission.degraded, lim.stats.backend_errors) == (False, True, 1)


def test_cancelled_async_admit_propagates_and_is_not_a_backend_error() -> None:
    """Cancelling the caller's task cancels the admit; the limiter does not swallow it or blame Redis."""
    with silent_port() as port:
        lim = make(f"redis://127.0.0.1:{port}/0", "acme=10/hour", timeout_s=5.0)

        async def main() -> None:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(lim.admit_async("acme"), 0.05)
            await lim.aclose()

        asyncio.run(main())
    assert lim.stats.backend_errors == 0


def test_restarted_redis_resumes_limits(own_server: RedisServer) -> None:
    """Redis going away degrades to the policy; once back (and the breaker probes) Redis decides again."""
    clock = FakeClock()
    lim = make(own_server.url, "acme=3/hour", on_error="closed", timeout_s=0.2, clock=clock)
    first = lim.admit("acme")
    assert (first.allowed, first.degraded) == (True, False)
    own_server.stop()
    down, durations = timed(lambda: lim.admit("acme"), 6)
    assert max(durations) < 0.2 + SLACK
    assert all(not a.allowed and a.degraded for a in down)
    own_server.start()  # same port, empty data, empty script cache
    clock.now += 1.0  # breaker cooldown over: the next call probes
    back = [lim.admit("acme") for _ in range(4)]
    assert [(a.allowed, a.degraded) for a in back] == [(True, False)] * 3 + [(False, False)]
    assert (lim.stats.breaker_open_count, lim.stats.script_loads) == (1, 2)
    lim.close()


def test_settle_while_redis_is_down_is_counted_not_raised(own_server: RedisServer) -> None:
    """A settle that cannot reach Redis is dropped (the lease frees it) and counted."""
    lim = make(own_server.url, budgets="acme=5/day", timeout_s=0.2)
    admission = lim.admit("acme", 1.0)
    own_server.stop()
    lim.settle(admission, 1.0)
    assert (lim.stats.settle_errors, lim.stats.backend_errors) == (1, 1)
    lim.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_opens_its_own_connection(server: RedisServer) -> None:
    """A child forked after the parent connected decides through Redis on its own socket."""
    lim = make(server.url, "acme=3/hour")
    assert lim.admit("acme").allowed  # the parent's pooled connection now exists
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        child = lim.admit("acme")
        os.write(write_end, b"1" if child.allowed and not child.degraded else b"0")
        os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20)
        assert ready and os.read(read_end, 1) == b"1"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    after = lim.admit("acme")
    assert (after.allowed, after.degraded) == (True, False)
    assert lim.admit("acme").reason == "rate_limited"
    lim.close()


# -- budgets across restarts, hangs and start-up ------------------------------------------------


def until_redis_decides(lim: Limiter, clock: FakeClock, tenant: str, cost: float) -> list[Admission]:
    """Let the breaker's cooldown pass and call until Redis decides again (deadline 30 s)."""
    clock.now += 1.0
    decisions = [lim.admit(tenant, cost)]
    deadline = time.monotonic() + 30
    while decisions[-1].degraded and time.monotonic() < deadline:
        clock.now += 1.0
        decisions.append(lim.admit(tenant, cost))
    assert not decisions[-1].degraded, "Redis never decided again"
    return decisions


@pytest.mark.parametrize("policy", ["closed", "local", "open"])
def test_budget_survives_a_redis_restart_without_persistence(own_server: RedisServer, policy: str) -> None:
    """Budget 100 at cost 1, 60 spent, then redis-server restarted empty mid-window: local and
    closed admit exactly 100 in all; open exceeds 100 only by what it admitted while Redis was away."""
    clock = FakeClock(time.time())
    lim = make(own_server.url, budgets="acme=100/day", on_error=policy, timeout_s=0.2, clock=clock)
    before = [lim.admit("acme", 1.0) for _ in range(60)]
    assert all(a.allowed and not a.degraded for a in before)
    own_server.stop()
    away = [lim.admit("acme", 1.0) for _ in range(150)]
    assert all(a.degraded for a in away)
    own_server.start()  # same port, no data: the budget's ledger is gone
    after = until_redis_decides(lim, clock, "acme", 1.0) + [lim.admit("acme", 1.0) for _ in range(150)]
    admitted_away = sum(a.allowed for a in away)
    total = len(before) + admitted_away + sum(a.allowed for a in after)
    if policy == "open":
        assert admitted_away == 150
        assert total == 60 + admitted_away  # what open admitted is charged once Redis is back
    else:
        assert total == 100
    assert lim.stats.ledgers_rebuilt == 1
    lim.close()


def test_replicas_rebuild_a_lost_ledger_between_them(own_server: RedisServer) -> None:
    """Two replicas took turns spending 61 of 100; Redis restarted empty. The one that saw the
    last total comes back alone and admits exactly the 39 left; the other, back later, adds its
    own spend without it being counted twice, and is denied."""
    clock = FakeClock(time.time())
    scope = uuid.uuid4().hex
    first, second = (
        make(own_server.url, budgets="acme=100/day", on_error="closed", scope=scope, clock=clock)
        for _ in range(2)
    )
    assert all((first if i % 2 == 0 else second).admit("acme", 1.0).allowed for i in range(61))
    own_server.stop()
    own_server.start()
    alone = until_redis_decides(first, clock, "acme", 1.0) + [first.admit("acme", 1.0) for _ in range(60)]
    later = until_redis_decides(second, clock, "acme", 1.0) + [second.admit("acme", 1.0) for _ in range(20)]
    assert (sum(a.allowed for a in alone), sum(a.allowed for a in later)) == (39, 0)
    assert (first.stats.ledgers_rebuilt, second.stats.ledgers_rebuilt) == (1, 1)
    first.close()
    second.close()


def test_settles_across_a_restart_count_once(own_server: RedisServer) -> None:
    """Budget 10 at cost 1: 4 calls settled, 6 still running when Redis restarts empty; then 4 of
    those settle and 2 release. The rebuilt ledger holds exactly the 8 spent: 2 more admitted."""
    clock = FakeClock(time.time())
    lim = make(own_server.url, budgets="acme=10/day", on_error="closed", clock=clock)
    admissions = [lim.admit("acme", 1.0) for _ in range(10)]
    assert all(a.allowed for a in admissions)
    for admission in admissions[:4]:
        lim.settle(admission, 1.0)
    own_server.stop()
    own_server.start()
    for admission in admissions[4:8]:
        lim.settle(admission, 1.0)
    for admission in admissions[8:]:
        lim.release(admission)
    after = [lim.admit("acme", 1.0) for _ in range(10)]
    assert [(a.allowed, a.degraded) for a in after] == [(True, False)] * 2 + [(False, False)] * 8
    assert (lim.stats.ledgers_rebuilt, lim.stats.settle_errors) == (1, 0)  # rebuilt by a settle
    lim.close()


def test_local_fallback_takes_its_share_of_what_was_left(own_server: RedisServer) -> None:
    """Budget 10 at cost 1 shared by 2 replicas, 4 spent, Redis gone: this replica's local
    fallback admits half of the 6 left (3), not half of the budget (5)."""
    lim = make(own_server.url, budgets="acme=10/day", on_error="local", replicas_hint=2, timeout_s=0.2)
    assert all(lim.admit("acme", 1.0).allowed for _ in range(4))
    own_server.stop()
    away = [lim.admit("acme", 1.0) for _ in range(10)]
    assert [a.allowed for a in away] == [True] * 3 + [False] * 7
    assert all(a.degraded for a in away)
    assert away[-1].rule == "10/day shared by 2 replicas"
    lim.close()


def test_budget_survives_a_hung_redis_under_local(own_server: RedisServer) -> None:
    """Budget 100 at cost 1, 60 spent, then redis-server frozen (SIGSTOP) and thawed (SIGCONT):
    the local fallback admits only what was left, and Redis, back, knows what it admitted."""
    clock = FakeClock(time.time())
    lim = make(own_server.url, budgets="acme=100/day", on_error="local", timeout_s=0.05, clock=clock)
    before = [lim.admit("acme", 1.0) for _ in range(60)]
    own_server.pause()
    try:
        hung = [lim.admit("acme", 1.0) for _ in range(100)]
    finally:
        own_server.resume()
    assert all(a.degraded for a in hung)
    after = until_redis_decides(lim, clock, "acme", 1.0) + [lim.admit("acme", 1.0) for _ in range(100)]
    assert sum(a.allowed for a in before + hung + after) == 100
    assert sum(a.allowed for a in hung) == 40
    lim.close()


@pytest.mark.parametrize("policy", ["local", "closed"])
def test_processes_starting_together_never_overspend(
    own_server: RedisServer, client_of_own: redis.Redis, policy: str
) -> None:
    """5 processes starting at once (importing and configuring modeltel together, then calling
    together) against a Redis that has not seen modeltel's scripts, budget 53 at cost 1, the
    default 5 ms timeout: never more than 53 admitted, in every repetition; each process set
    itself up while configuring, and no call paid for setting up (no EVAL, no NOSCRIPT), so no
    call was judged by the 5 ms timeout for work that was not its own."""
    for _ in range(4):
        lim = make(own_server.url, budgets="*=53/day", on_error=policy, timeout_s=0.005, replicas_hint=5)
        client_of_own.script_flush()
        client_of_own.config_resetstat()
        results = process_decisions(pickle.dumps(lim), "acme", processes=5, calls=20, cost=1.0)
        assert sum(admitted for admitted, _ in results) <= 53
        commands = client_of_own.info("commandstats")
        assert "cmdstat_eval" not in commands
        assert commands["cmdstat_evalsha"]["failed_calls"] == 0  # no NOSCRIPT
        assert [(stats["setup_failures"], stats["script_loads"]) for _, stats in results] == [(0, 1)] * 5
        lim.close()
