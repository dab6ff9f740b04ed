"""Shadow comparison: a challenger model answers a share of calls off the request path.

The champion's caller never waits for it: a shadowed call costs one append to a bounded queue;
one daemon worker runs the challenger with the same arguments, and a challenger that raises,
hangs or is slow changes nothing but its own record. Its answers become prediction records of
the shadow version under the same prediction ids, so ``modeltel evaluate`` compares champion and
challenger on the same traffic and the same outcomes; ``ml.shadow.comparisons`` counts
agreement, ``ml.shadow.abs_score_delta`` sums the score differences.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections import deque
from typing import Any, Protocol

from modeltel import _forksafe
from modeltel import _names as n
from modeltel._internal import handle_internal_errors
from modeltel._scores import score_of


class Bound(Protocol):
    """What a shadow call reads of the decorated function's ``_plan.Bound`` (named here, so the
    runtime, which runs shadows, needs no import of the plan)."""

    plan: Any
    recorder: Any
    shadow_records: Any


class Prediction(Protocol):
    """What a shadow call reads of the champion's ``Prediction``."""

    prediction_id: str
    payload_hash: str
    tenant: str
    score: float | None
    decision: str | None


MAX_QUEUED = 1000
AGREE_WITHIN = 0.01  # scores this close agree when there is no decision to compare


class ShadowJob:
    __slots__ = ("args", "bound", "champion_decision", "champion_score", "kwargs", "prediction")

    def __init__(self, bound: Bound, p: Prediction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.bound, self.prediction, self.args, self.kwargs = bound, p, args, kwargs
        self.champion_score, self.champion_decision = p.score, p.decision


class ShadowRunner:
    """A bounded queue and one worker thread per runtime."""

    def __init__(self) -> None:
        self._jobs: deque[ShadowJob] = deque()
        self._cv = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self.dropped = 0
        _forksafe.register(self)

    def submit(self, job: ShadowJob) -> None:
        with self._cv:
            if len(self._jobs) >= MAX_QUEUED:
                self.dropped += 1
                job.bound.recorder.add(n.M_SHADOW, 1, (*_attrs(job), (n.SHADOW_AGREEMENT, "dropped")))
                return
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="modeltel-shadow", daemon=True)
                self._thread.start()
            self._cv.notify()

    def drain(self, timeout_s: float) -> bool:
        """Wait until every queued shadow call has finished (at most ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self._jobs or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cv.wait(left):
                    return False
        return True

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._jobs:
                    self._cv.wait()
                job = self._jobs.popleft()
                self._busy += 1
            try:
                with handle_internal_errors("shadow"):
                    _run_job(job)
            finally:
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()

    def _after_fork(self) -> None:
        self._jobs = deque()
        self._cv = threading.Condition()
        self._busy = 0
        self._thread = None


def _attrs(job: ShadowJob) -> tuple[tuple[str, str], ...]:
    plan = job.bound.plan
    return (
        (n.MODEL_NAME, plan.model),
        (n.MODEL_VERSION, plan.version),
        (n.SHADOW_VERSION, plan.shadow_version),
    )


def _call(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    out = fn(*args, **kwargs)
    if inspect.isawaitable(out):
        out = asyncio.run(_awaited(out))
    return out


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _run_job(job: ShadowJob) -> None:
    b, p = job.bound, job.prediction
    plan = b.plan
    t0 = time.perf_counter()
    score = decision = None
    try:
        out = _call(plan.shadow, job.args, job.kwargs)
        outcome = n.OK
    except Exception:
        outcome = n.ERROR
    duration = time.perf_counter() - t0
    if outcome == n.OK:
        score = score_of(out if plan.score_fn is None else plan.score_fn(out))
        decision = None if plan.decision_fn is None else str(plan.decision_fn(out))
    agreement = _agreement(job, outcome, score, decision)
    b.recorder.add(n.M_SHADOW, 1, (*_attrs(job), (n.SHADOW_AGREEMENT, agreement)))
    if score is not None and job.champion_score is not None:
        b.recorder.add(n.M_SHADOW_DELTA, abs(score - job.champion_score), _attrs(job))
    if b.shadow_records is not None:
        row = (
            p.prediction_id,
            p.payload_hash,
            p.tenant,
            score,
            decision,
            outcome,
            time.time_ns(),
            duration,
            0.0,
        )
        b.shadow_records.add(row)


def _agreement(job: ShadowJob, outcome: str, score: float | None, decision: str | None) -> str:
    if outcome != n.OK:
        return "error"
    if job.champion_decision is not None or decision is not None:
        return "agree" if decision == job.champion_decision else "disagree"
    if score is None or job.champion_score is None:
        return "unknown"
    return "agree" if abs(score - job.champion_score) <= AGREE_WITHIN else "disagree"
