"""The per-call object: one prediction's identity and what was recorded about it."""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from modeltel import _names as n
from modeltel._scores import score_of, scores_of_batch

if TYPE_CHECKING:
    from modeltel._plan import Bound

_UNSET: Any = object()

_current: contextvars.ContextVar[Prediction | None] = contextvars.ContextVar(
    "modeltel_prediction", default=None
)


def current_prediction() -> Prediction | None:
    """The prediction running in this context, or the last one that finished in it.

    Inside a decorated predict it is the call's own; right after the call returns, the caller
    reads the same object (and its ``prediction_id``) here.

    >>> import modeltel
    >>> @modeltel.instrument(model="m", version="1")
    ... def predict(features): return 0.5
    >>> _ = predict({"x": 1.0})
    >>> len(modeltel.current_prediction().prediction_id)
    32
    """
    return _current.get()


class Prediction:
    """One prediction: read ``prediction_id`` and ``payload_hash``; call :meth:`record`."""

    # Defaults live on the class, so making one costs one attribute store, not twenty-four:
    # the hot path builds one per call. Only what a call changes lands in its instance dict.
    prediction_id = ""
    payload_hash = ""
    tenant = ""
    features: Any = None
    score: float | None = None
    scores: Any = None
    decision: str | None = None
    cost: float | None = None
    outcome: str = n.OK
    violations: Sequence[Any] = ()
    sampled = False
    entered = False
    cls: str | None = None
    in_records = False
    rows = 0  # 0: a single-row call; otherwise the batch size
    row_hashes: Sequence[str] = ()
    row_decisions: list[str | None] | None = None
    sample_rows: Sequence[int] = ()
    route = 0
    rejection: BaseException | None = None
    admission: Any = None
    span: trace.Span = trace.INVALID_SPAN
    duration = 0.0
    at = 0  # when the call concluded (Unix ns), set where a record needs it

    def __init__(self, bound: Bound) -> None:
        self._bound = bound

    @property
    def model(self) -> str:
        return self._bound.plan.model

    @property
    def version(self) -> str:
        return self._bound.plan.version

    def record(self, score: Any = _UNSET, decision: Any = _UNSET, cost: float | None = None) -> None:
        """Attach the score (or the raw model output), the decision it drove, and its actual cost.

        >>> with modeltel.prediction(model="m", version="1", features={"x": 1.0}) as p:  # doctest: +SKIP
        ...     p.record(score=0.91, decision="approved")
        """
        if score is not _UNSET:
            if self.rows:
                self.scores = scores_of_batch(score, self.rows)
            else:
                self.score = score_of(score)
        if decision is not _UNSET:
            self.decision = None if decision is None else str(decision)
        if cost is not None:
            self.cost = float(cost)

    def __repr__(self) -> str:
        return (
            f"<Prediction {self.model}@{self.version} id={self.prediction_id} hash={self.payload_hash} "
            f"tenant={self.tenant!r} outcome={self.outcome} score={self.score}>"
        )
