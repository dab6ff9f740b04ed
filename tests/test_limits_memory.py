"""The in-process limiter: exactness under threads and asyncio, budgets, windows, memory bound."""

from __future__ import annotations

import asyncio
import calendar
import os
import pickle
import random
import select
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modeltel._limits import Admission, Budget, Limiter, Rate, parse_budgets, parse_rate_limits


class FakeClock:
    """An injectable clock: seconds since the epoch, moved only by the test."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(
    rates: str = "", budgets: str = "", clock: Callable[[], float] | None = None, **kw: object
) -> Limiter:
    return Limiter(rates=parse_rate_limits(rates), budgets=parse_budgets(budgets), clock=clock, **kw)  # type: ignore[arg-type]


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make threads switch every microsecond so storms really interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def storm(lim: Limiter, tenant: str, threads: int, per_thread: int, cost: float = 0.0) -> list[Admission]:
    """Release ``threads`` threads at once on a barrier; each calls admit ``per_thread`` times."""
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


def test_thread_storm_admits_exactly_the_burst(fast_switching: None) -> None:
    """16 threads x 8 calls against burst 25 (no refill during the test) admit exactly 25, repeatedly."""
    lim = limiter("*=25/day")
    for round_ in range(40):
        decisions = storm(lim, f"tenant-{round_}", threads=16, per_thread=8)
        admitted = sum(a.allowed for a in decisions)
        denied = sum(a.reason == "rate_limited" for a in decisions)
        assert (admitted, admitted + denied) == (25, 128)
    assert (lim.stats.admitted, lim.stats.rate_limited) == (40 * 25, 40 * 103)


def test_thread_storm_never_overspends_a_budget(fast_switching: None) -> None:
    """16 threads x 8 calls of cost 1 against a budget of 37 admit exactly 37."""
    lim = limiter(budgets="*=37/day")
    for round_ in range(20):
        decisions = storm(lim, f"tenant-{round_}", threads=16, per_thread=8, cost=1.0)
        assert sum(a.allowed for a in decisions) == 37
        assert sum(a.reason == "budget_exceeded" for a in decisions) == 128 - 37


def test_asyncio_storm_is_exact() -> None:
    """Many concurrent admit_async calls on one loop admit exactly the burst."""
    lim = limiter("acme=10/hour burst 30")

    async def main() -> list[Admission]:
        return await asyncio.gather(*(lim.admit_async("acme") for _ in range(200)))

    assert sum(a.allowed for a in asyncio.run(main())) == 30


def test_rate_limited_reports_retry_after_and_rule() -> None:
    """A denial says when to retry; retrying then is admitted."""
    clock = FakeClock()
    lim = limiter("acme=2/s burst 1", clock=clock)
    assert lim.admit("acme").allowed
    denied = lim.admit("acme")
    assert (denied.allowed, denied.reason, denied.retry_after, denied.rule) == (
        False,
        "rate_limited",
        0.5,
        "2/s burst 1",
    )
    clock.now += denied.retry_after
    assert lim.admit("acme").allowed


def test_star_gives_each_tenant_its_own_bucket() -> None:
    """Tenants matched by ``*`` do not share a bucket; named tenants use their own rate."""
    lim = limiter("acme=3/hour;*=1/hour")
    assert [lim.admit("a").allowed for _ in range(2)] == [True, False]
    assert [lim.admit("b").allowed for _ in range(2)] == [True, False]
    assert [lim.admit("acme").allowed for _ in range(4)] == [True, True, True, False]


def test_unlimited_tenant_is_admitted_without_state() -> None:
    """A tenant with no entry and no ``*`` is admitted and never stored."""
    lim = limiter("acme=1/hour", "acme=1/day")
    assert all(lim.admit("other", 5.0).allowed for _ in range(100))
    assert lim.tenants_in_memory() == 0


def test_no_limits_configured_admits_at_once() -> None:
    """With neither rates nor budgets the limiter is disabled and admits everything."""
    lim = limiter()
    assert not lim.enabled
    assert lim.admit("acme", 1e9).allowed
    assert lim.stats.admitted == 0


def test_budget_denial_does_not_spend_a_rate_token() -> None:
    """A call denied by the budget leaves the rate bucket untouched."""
    lim = limiter("acme=1/hour", "acme=1/day")
    assert lim.admit("acme", 2.0).reason == "budget_exceeded"
    assert lim.admit("acme", 1.0).allowed


def test_release_returns_the_reservation_but_not_the_rate_token() -> None:
    """Releasing gives the budget back; the admitted call still counts against the rate."""
    lim = limiter("acme=1/hour", "acme=1/day")
    lim.release(lim.admit("acme", 1.0))
    assert lim.admit("acme", 1.0).reason == "rate_limited"
    assert lim._local.ledger_totals("acme") == (0, 0)


def test_budget_reports_remaining_and_reset() -> None:
    """An admission reports the budget left after its reservation and the window's end."""
    clock = FakeClock(calendar.timegm((2026, 3, 10, 12, 30, 0)))
    lim = limiter(budgets="acme=5/day", clock=clock)
    first = lim.admit("acme", 1.25)
    assert (first.remaining, first.resets_at, first.rule) == (
        3.75,
        calendar.timegm((2026, 3, 11, 0, 0, 0)),
        "5/day",
    )
    lim.settle(first, 4.0)
    denied = lim.admit("acme", 1.5)
    assert (denied.reason, denied.remaining, denied.resets_at) == ("budget_exceeded", 1.0, first.resets_at)


@pytest.mark.parametrize("commit", [False, True], ids=["lease", "commit"])
def test_ledger_matches_an_independent_tally(commit: bool) -> None:
    """After random admits, settles (other actual costs) and releases, spend equals the tally."""
    rng = random.Random(7)
    lim = limiter(budgets="acme=1000/day")
    tally = 0
    open_: list[Admission] = []
    for _ in range(3000):
        roll = rng.random()
        if roll < 0.5 or not open_:
            admission = lim.admit("acme", rng.choice([0.0, 0.25, 1.0, 2.5]), commit=commit)
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
    assert lim._local.ledger_totals("acme") == (tally, 0)


def test_committed_charge_is_spent_at_admit_and_adjusted_at_settle() -> None:
    """commit=True charges at once: settle with the same cost is free, another cost adjusts,
    release refunds, and a charge never settled stays spent (no lease frees it)."""
    clock = FakeClock()
    lim = limiter(budgets="acme=10/day", clock=clock, lease_s=60.0)
    first = lim.admit("acme", 2.0, commit=True)
    assert (first.allowed, first.remaining) == (True, 8.0)
    assert lim._local.ledger_totals("acme") == (2_000_000, 0)  # spent, nothing held under a lease
    lim.settle(first, 2.0)
    assert lim._local.ledger_totals("acme") == (2_000_000, 0)
    second = lim.admit("acme", 2.0, commit=True)
    lim.settle(second, 3.5)
    assert lim._local.ledger_totals("acme") == (5_500_000, 0)
    lim.release(lim.admit("acme", 4.0, commit=True))
    assert lim._local.ledger_totals("acme") == (5_500_000, 0)
    lim.admit("acme", 1.0, commit=True)  # never settled
    clock.now += 120  # past any lease
    assert lim._local.ledger_totals("acme") == (6_500_000, 0)
    assert lim.admit("acme", 4.0, commit=True).reason == "budget_exceeded"


def test_settling_a_committed_charge_after_eviction_charges_the_actual_cost() -> None:
    """If the tenant's entry was evicted, its new ledger never held the charge: settle adds it all."""
    lim = limiter(budgets="*=100/day", max_tenants=1)
    admission = lim.admit("acme", 2.0, commit=True)
    lim.admit("other", 1.0, commit=True)  # the table holds one tenant: acme is evicted
    lim.settle(admission, 3.0)
    assert lim._local.ledger_totals("acme") == (3_000_000, 0)


@pytest.mark.parametrize("commit", [False, True], ids=["lease", "commit"])
def test_threads_settling_concurrently_keep_the_ledger_exact(fast_switching: None, commit: bool) -> None:
    """8 threads admitting and settling at once leave spend == sum of settled costs, nothing reserved."""
    lim = limiter(budgets="acme=1000000/day")
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        for i in range(500):
            admission = lim.admit("acme", 1.0, commit=commit)
            if i % 3:
                lim.settle(admission, 0.5)
            else:
                lim.release(admission)

    workers = [threading.Thread(target=run) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    settled = 8 * sum(1 for i in range(500) if i % 3)
    assert lim._local.ledger_totals("acme") == (settled * 500_000, 0)


def test_unsettled_reservation_is_freed_when_its_lease_expires() -> None:
    """A reservation nobody settles (crashed caller) is freed after ``lease_s``."""
    clock = FakeClock(calendar.timegm((2026, 3, 10, 0, 0, 0)))
    lim = limiter(budgets="acme=1/day", clock=clock, lease_s=30.0)
    assert lim.admit("acme", 1.0).allowed
    clock.now += 29.0
    assert lim.admit("acme", 1.0).reason == "budget_exceeded"
    clock.now += 1.0
    assert lim.admit("acme", 1.0).allowed
    assert lim.stats.leases_expired == 1


def test_settle_after_lease_expiry_still_charges_the_spend() -> None:
    """A call that outlives its lease is still charged what it cost."""
    clock = FakeClock(calendar.timegm((2026, 3, 10, 0, 0, 0)))
    lim = limiter(budgets="acme=10/day", clock=clock, lease_s=30.0)
    slow = lim.admit("acme", 4.0)
    clock.now += 60.0
    lim.settle(slow, 4.0)
    assert lim._local.ledger_totals("acme") == (4_000_000, 0)


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        ("hour", (2026, 3, 10, 13, 0, 0), (2026, 3, 10, 14, 0, 0)),
        ("day", (2026, 12, 31, 0, 0, 0), (2027, 1, 1, 0, 0, 0)),
        ("month", (2026, 2, 1, 0, 0, 0), (2026, 3, 1, 0, 0, 0)),
        ("month", (2028, 2, 1, 0, 0, 0), (2028, 3, 1, 0, 0, 0)),
        ("month", (2026, 4, 1, 0, 0, 0), (2026, 5, 1, 0, 0, 0)),
        ("month", (2026, 12, 1, 0, 0, 0), (2027, 1, 1, 0, 0, 0)),
    ],
)
def test_budget_resets_exactly_at_the_utc_boundary(
    window: str, start: tuple[int, ...], end: tuple[int, ...]
) -> None:
    """Spend made in a window blocks until its last instant and is forgotten at the boundary."""
    clock = FakeClock(calendar.timegm(start))
    lim = limiter(budgets=f"acme=1/{window}", clock=clock)
    lim.settle(lim.admit("acme", 1.0), 1.0)
    clock.now = calendar.timegm(end) - 0.001
    blocked = lim.admit("acme", 1.0)
    assert (blocked.reason, blocked.resets_at) == ("budget_exceeded", calendar.timegm(end))
    clock.now = calendar.timegm(end)
    assert lim.admit("acme", 1.0).allowed


def test_settle_after_the_window_ended_does_not_charge_the_new_window() -> None:
    """A call admitted in one window and settled in the next is not charged to the next."""
    clock = FakeClock(calendar.timegm((2026, 3, 10, 23, 59, 59)))
    lim = limiter(budgets="acme=1/day", clock=clock)
    admission = lim.admit("acme", 1.0)
    clock.now += 2
    lim.settle(admission, 1.0)
    assert lim.admit("acme", 1.0).allowed


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 20),
    period_ms=st.sampled_from([1000, 60_000]),
    burst=st.integers(1, 30),
    gaps_ms=st.lists(st.integers(0, 400), min_size=1, max_size=150),
)
def test_no_trailing_window_exceeds_the_gcra_bound(
    count: int, period_ms: int, burst: int, gaps_ms: list[int]
) -> None:
    """Over any simulated timeline, every interval [t_i, t_j] holds <= burst + rate*(t_j - t_i) admissions."""
    clock = FakeClock(1000.0)
    lim = Limiter(rates={"t": Rate(count, period_ms / 1000, burst)}, budgets={}, clock=clock)
    now_ms = 1_000_000
    admitted: list[int] = []
    for gap in gaps_ms:
        now_ms += gap
        clock.now = now_ms / 1000
        if lim.admit("t").allowed:
            admitted.append(now_ms)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            # exact integer form of: j - i + 1 <= burst + count * (t_j - t_i) / period
            assert (j - i + 1 - burst) * period_ms <= count * (admitted[j] - start)


def test_steady_arrivals_get_exactly_the_configured_rate() -> None:
    """Calls every millisecond for 10 s against 5/s burst 3 admit exactly 3 + 5*10."""
    clock = FakeClock(0.0)
    lim = limiter("t=5/s burst 3", clock=clock)
    admitted = 0
    for ms in range(10_001):
        clock.now = ms / 1000
        admitted += lim.admit("t").allowed
    assert admitted == 53


def test_a_million_tenants_keep_the_table_within_its_cap() -> None:
    """1,000,000 distinct idle-after-use tenants never grow the table past max_tenants."""
    clock = FakeClock(0.0)
    lim = limiter("*=1/s", clock=clock, max_tenants=50_000)
    peak = 0
    for i in range(1_000_000):
        clock.now = i / 1000  # each bucket is idle again 1 s (1000 tenants) after its call
        lim.admit(f"t{i}")
        if i % 1000 == 0:
            peak = max(peak, lim.tenants_in_memory())
    assert peak <= 50_000
    assert lim.tenants_in_memory() <= 50_000
    assert lim.stats.unsafe_evictions == 0


def test_a_full_table_of_live_tenants_evicts_and_counts() -> None:
    """When every stored tenant is live, the oldest is evicted and counted as unsafe."""
    lim = limiter("*=1/hour", clock=FakeClock(), max_tenants=100)
    for i in range(150):
        lim.admit(f"t{i}")
    assert (lim.tenants_in_memory(), lim.stats.unsafe_evictions) == (100, 50)


def test_bad_cost_is_swallowed_and_counted() -> None:
    """A cost that is not a number never raises; the call is admitted, degraded, and counted."""
    lim = limiter(budgets="acme=1/day")
    admission = lim.admit("acme", "a lot")  # type: ignore[arg-type]
    assert (admission.allowed, admission.degraded, lim.stats.internal_errors) == (True, True, 1)


def test_nan_and_negative_costs_reserve_nothing() -> None:
    """NaN and negative costs count as zero."""
    lim = limiter(budgets="acme=1/day")
    assert lim.admit("acme", float("nan")).reserved == 0
    assert lim.admit("acme", -3.0).reserved == 0
    assert lim.admit("acme", float("inf")).reason == "budget_exceeded"


def test_pickled_limiter_keeps_its_configuration() -> None:
    """A limiter survives pickling with its rules (state starts fresh in the copy)."""
    lim = Limiter(rates={"acme": Rate(1, 3600.0, 2)}, budgets={"acme": Budget(5.0, "day")})
    assert lim.admit("acme", 1.0).allowed
    copy = pickle.loads(pickle.dumps(lim))
    assert [copy.admit("acme", 1.0).allowed for _ in range(3)] == [True, True, False]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_a_fresh_lock() -> None:
    """A child forked while the parent holds the limiter's lock can still admit."""
    lim = limiter("acme=5/hour")
    read_end, write_end = os.pipe()
    with lim._local.lock:
        pid = os.fork()
        if pid == 0:  # child
            ok = lim.admit("acme").allowed
            os.write(write_end, b"1" if ok else b"0")
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20)
        assert ready, "child deadlocked on the inherited lock"
        assert os.read(read_end, 1) == b"1"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
