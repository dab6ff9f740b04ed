"""How a rate is enforced: GCRA, the generic cell rate algorithm, over integer time.

Why GCRA and not a token bucket: both admit the same traffic, but GCRA keeps ONE integer per
tenant (the theoretical arrival time, TAT) and needs no refill step. The Redis script therefore
reads and writes a single key, an idle tenant's state is recognisably "fresh" (TAT <= now) so it
can be dropped or left to expire without changing any later decision, and the bound below is a
three-line proof rather than a claim about floating-point refills.

With emission interval ``T = ceil(period / count)`` time units (ns in memory, µs in Redis) and
tolerance ``tau = burst * T``, a call at time ``t`` is admitted iff
``max(TAT, t) + T - tau <= t``; on admission ``TAT := max(TAT, t) + T``.

Bound: in any closed interval of length ``L``, at most ``burst + floor(L / T)`` calls are
admitted, hence at most ``burst + rate * L``. Proof: each admission raises TAT by at least ``T``
and leaves ``TAT >= t + T``; the first admission inside the interval leaves ``TAT >= start + T``,
the n-th ``TAT >= start + n*T``, and admission needs ``TAT <= t + tau <= start + L + tau``, so
``n*T <= L + burst*T``. This holds whatever order concurrent callers are serialised in, because
it only uses the clock readings of the admitted calls. Rounding ``T`` up can only admit less
(by under one time unit per call). Integer arithmetic makes the bound exact, not approximate,
for times read at the backend's resolution.

The step itself lives where the state does, in ``MemoryStore.admit`` and in the Redis admit
script, each a handful of integer operations.
"""

from __future__ import annotations

from dataclasses import dataclass

from modeltel._limits._spec import Rate

NS_PER_S = 1_000_000_000
US_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class RateRule:
    """A ``Rate`` compiled for one backend's integer clock."""

    interval: int
    """``T``: time units one call costs."""
    tolerance: int
    """``tau = burst * T``: how far TAT may run ahead of now."""
    spec: str
    """The rate as configured, for messages."""


def compile_rate(rate: Rate, units_per_s: int, divisor: int = 1) -> RateRule:
    """Compile ``rate`` for a clock ticking ``units_per_s``; ``divisor`` splits it across replicas."""
    period = round(rate.period_s * units_per_s) * divisor
    interval = max(1, -(-period // rate.count))
    burst = max(1, rate.burst // divisor)
    spec = str(rate) if divisor == 1 else f"{rate} shared by {divisor} replicas"
    return RateRule(interval=interval, tolerance=burst * interval, spec=spec)
