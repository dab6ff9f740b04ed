"""What this replica has spent of each tenant's budget, so that a lost Redis ledger is rebuilt.

Redis holds the shared ledger; each replica also keeps, per tenant, its own view of the current
window: ``own`` (what it charged there, through Redis or not), ``seen`` (the ledger's total in
the last answer it got), ``epoch`` (the identity of that ledger) and ``unsynced`` (what it
charged while Redis was unavailable and Redis has not been told yet). Every admit and settle
sends these along in its one script call (see ``_scripts``), so:

* a ledger Redis lost (restart without persistence, failover, flush) is detected by its new
  epoch and rebuilt from each replica's ``own`` and ``seen`` on that replica's next call, in
  the same atomic step that decides it;
* what the ``local`` fallback or ``open`` admitted while Redis was away is added on the first
  call that reaches Redis again;
* the ``local`` fallback starts from what was left when Redis last answered: it admits while
  ``seen + replicas * (unsynced + cost) <= amount``, i.e. this replica's share of the rest.

``unsynced`` sent with a call is moved to ``transit`` until the answer, and back if the call
fails: a concurrent call never sends it twice, and the fallback still counts it meanwhile.

Bounds with a fixed cost per call (B the budget, N = ``replicas``):

* ``closed``: admits nothing without Redis. After Redis lost the ledger, the rebuilt total is
  never less than the largest total any replica that has called since had last seen, nor than
  the sum of those replicas' own spend; so one replica never exceeds B, nor do several once
  each has called again. Overspend is at most the spend that none of the replicas calling
  after the loss had seen (spend after their last answer by replicas not yet back).
* ``local``: a replica admits without Redis while ``seen + N * (unsynced + cost) <= B``. One
  replica (N = 1) never exceeds B. With N replicas that all fall back at once, the overspend
  is at most the average of ``T - seen_i`` (T the spend when Redis went away, ``seen_i`` what
  replica i had last been told), i.e. how far the replicas' last answers lagged behind; it
  is 0 when each had the latest answer. A replica that falls back alone (its own calls time
  out while the others still reach Redis) may overspend by what it admits meanwhile, at most
  ``(B - seen_i) / N``, since Redis learns it only later. Plus, across a lost ledger, the
  ``closed`` bound.
* ``open``: admits everything without Redis and charges it on return, so the budget is
  exceeded by at most what was admitted while Redis was unavailable (plus the above).

Not exact when an answer is lost after Redis applied the call (a timeout just after the
script ran): the call is retried from the fallback and its spend may count twice, which can
only deny calls early, never overspend. At most ``max_tenants`` tenants are remembered (about
150 bytes each); a tenant dropped from the table cannot re-contribute its spend.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from modeltel._limits._budget import BudgetRule, from_units, window_bounds
from modeltel._limits._decision import BUDGET_EXCEEDED, NO_BUDGET, Admission

# The script argument 'window start:epoch:own:seen:unsynced'; '' = nothing known.
ReplicaView = str
_NOTHING: ReplicaView = ""


class Ledger(NamedTuple):
    """A tenant's budget ledger as an admit left it: window, its end, epoch, total used."""

    window: int
    end: int
    epoch: str
    used: int


class _Spend:
    __slots__ = ("end", "epoch", "own", "seen", "start", "transit", "unsynced")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.epoch = ""
        self.own = 0
        self.seen = 0
        self.unsynced = 0
        self.transit = 0


@dataclass(slots=True)
class Sent:
    """One call's share of a tenant's spend record: what was sent, to settle up on the answer."""

    tenant: str
    window: int
    cost: int
    taken: int
    view: ReplicaView


class ReplicaSpend:
    """Per-tenant spend records of this replica (at most ``max_tenants``, oldest dropped)."""

    def __init__(self, *, replicas: int, max_tenants: int, wall: Callable[[], float]) -> None:
        self._replicas = replicas
        self._cap = max(1, max_tenants)
        self._wall = wall
        self._lock = threading.Lock()
        self._leases = 0
        self._table: OrderedDict[str, _Spend] = OrderedDict()

    def after_fork(self) -> None:
        """A child has spent nothing yet: keep what the parent saw, forget what it spent."""
        self._lock = threading.Lock()
        for spend in self._table.values():
            spend.own = spend.unsynced = spend.transit = 0

    # -- calls that reach Redis ---------------------------------------------------------------

    def send_admit(self, tenant: str, cost: int) -> Sent:
        """Arguments for an admit of ``cost``; counts it in ``own`` until told otherwise."""
        with self._lock:
            spend = self._table.get(tenant)
            if spend is None:
                return Sent(tenant, NO_BUDGET, cost, 0, _NOTHING)
            sent = self._take(tenant, spend, cost)
            spend.own += cost
            return sent

    def send_settle(self, admission: Admission) -> Sent:
        """Arguments for a settle (after ``settled``)."""
        with self._lock:
            spend = self._table.get(admission.tenant)
            if spend is None or spend.start != admission.window:
                return Sent(admission.tenant, NO_BUDGET, 0, 0, _NOTHING)
            return self._take(admission.tenant, spend, 0)

    def _take(self, tenant: str, spend: _Spend, cost: int) -> Sent:
        taken, spend.unsynced = spend.unsynced, 0
        spend.transit += taken
        view = f"{spend.start}:{spend.epoch}:{spend.own}:{spend.seen}:{taken}"
        return Sent(tenant, spend.start, cost, taken, view)

    def answered(self, sent: Sent, ledger: Ledger, charged: bool) -> bool:
        """Redis answered an admit with ``ledger``; ``charged``: the call's cost was admitted.

        Returns True if the ledger is not the one this replica last saw in this window (Redis
        lost it, and the script has just rebuilt it).
        """
        window = ledger.window
        with self._lock:
            spend = self._table.get(sent.tenant)
            counted = spend is not None and spend.start == sent.window  # see send_admit
            if spend is not None and counted:
                spend.transit -= sent.taken  # Redis has it now, one way or the other
                if not charged:
                    spend.own -= sent.cost
            if spend is None or window > spend.start:
                spend = self._insert(sent.tenant, window, ledger.end)
                spend.own = sent.cost if charged else 0
            elif not counted and charged and spend.start == window:
                spend.own += sent.cost
            rebuilt = False
            if spend.start == window:
                rebuilt = spend.epoch not in ("", ledger.epoch)
                spend.epoch = ledger.epoch
                spend.seen = ledger.used
            return rebuilt

    def settled_remote(self, sent: Sent, epoch: str | None) -> bool:
        """Redis answered a settle (``epoch``: its ledger's, ``None`` if the window had ended);
        True if that ledger had been lost and rebuilt, as for ``answered``."""
        with self._lock:
            spend = self._table.get(sent.tenant)
            if spend is None or spend.start != sent.window:
                return False
            spend.transit -= sent.taken
            rebuilt = epoch is not None and spend.epoch not in ("", epoch)
            if epoch is not None:
                spend.epoch = epoch
            return rebuilt

    def failed(self, sent: Sent) -> None:
        """The call did not reach Redis (or its answer was lost): keep its unsynced for later."""
        with self._lock:
            spend = self._table.get(sent.tenant)
            if spend is not None and spend.start == sent.window:
                spend.transit -= sent.taken
                spend.unsynced += sent.taken
                spend.own -= sent.cost

    # -- decisions without Redis ---------------------------------------------------------------

    def admit_local(self, tenant: str, budget: BudgetRule, cost: int) -> Admission:
        """The ``local`` fallback: this replica's share of what was left when Redis last answered."""
        with self._lock:
            spend = self._current(tenant, budget)
            pending = spend.unsynced + spend.transit
            left = (budget.amount - spend.seen) // self._replicas - pending
            if cost > left:
                return Admission(
                    False,
                    BUDGET_EXCEEDED,
                    remaining=from_units(max(left, 0)),
                    resets_at=float(spend.end),
                    rule=self._rule(budget),
                    degraded=True,
                    tenant=tenant,
                    local=True,
                )
            spend.own += cost
            spend.unsynced += cost
            self._leases += 1
            return Admission(
                True,
                remaining=from_units(left - cost),
                resets_at=float(spend.end),
                rule=self._rule(budget),
                degraded=True,
                tenant=tenant,
                window=spend.start,
                reserved=cost,
                lease=self._leases if cost else 0,
                local=True,
            )

    def charge(self, tenant: str, budget: BudgetRule, cost: int) -> None:
        """Record spend admitted without any check (``open``), for Redis to learn later."""
        with self._lock:
            spend = self._current(tenant, budget)
            spend.own += cost
            spend.unsynced += cost

    def settled(self, admission: Admission, actual: int) -> None:
        """``admission`` cost ``actual``: this replica's spend takes it in place of the reservation."""
        with self._lock:
            spend = self._table.get(admission.tenant)
            if spend is None or spend.start != admission.window:
                return
            spend.own += actual - admission.reserved
            if admission.local:  # Redis never held this reservation
                spend.unsynced += actual - admission.reserved

    def settle_lost(self, admission: Admission, actual: int) -> None:
        """A settle that did not reach Redis: Redis learns ``actual`` with a later call (its
        reservation, still held there, is freed when its lease ends)."""
        with self._lock:
            spend = self._table.get(admission.tenant)
            if spend is not None and spend.start == admission.window:
                spend.unsynced += actual

    def _current(self, tenant: str, budget: BudgetRule) -> _Spend:
        wall = self._wall()
        spend = self._table.get(tenant)
        if spend is not None and spend.start <= wall < spend.end:
            return spend
        start, end = window_bounds(wall, budget.window)
        if spend is not None and spend.start >= start:
            return spend
        return self._insert(tenant, start, end)

    def _insert(self, tenant: str, start: int, end: int) -> _Spend:
        table = self._table
        table.pop(tenant, None)
        if len(table) >= self._cap:
            table.popitem(last=False)
        spend = table[tenant] = _Spend(start, end)
        return spend

    def _rule(self, budget: BudgetRule) -> str:
        if self._replicas == 1:
            return budget.spec
        return f"{budget.spec} shared by {self._replicas} replicas"
