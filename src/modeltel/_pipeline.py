"""Call time: the fixed pipeline every prediction runs through, one stage per function.

resolve tenant -> admit (limits) -> validate (contract) -> identify (hash, id) -> sample
-> [predict runs, timed, inside the span] -> settle (cost) -> record (metrics, span, features)

Stages never raise into the caller, except the three public exceptions when policy asks.
"""

from __future__ import annotations

from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN

from modeltel import _names as n
from modeltel._batch import add_batch_record, emit_batch_features, identify_batch
from modeltel._errors import BudgetExceeded, ContractViolation, RateLimited
from modeltel._exception_event import MAX_STATUS_DESCRIPTION_CHARS, record_exception
from modeltel._features import as_mapping, emit_feature_records
from modeltel._ids import new_prediction_id
from modeltel._internal import handle_internal_errors, report_internal_error, strict
from modeltel._lean_span import LeanSpan
from modeltel._plan import Bound
from modeltel._prediction import Prediction, _current
from modeltel._scores import score_of, scores_of_batch
from modeltel._shadow import ShadowJob
from modeltel._tenants import clean_tenant

PRIMARY, FALLBACK, REJECT = 0, 1, 2
_INF = float("inf")


def prepare(b: Bound, tenant: Any, features: Any, admission: Any = None) -> Prediction:
    """Every stage before predict runs; decides the route (primary, fallback or reject).

    One guard for the whole phase: a failure in one stage skips the rest of the phase and
    predict still runs (promise 1), at the cost of one try block instead of one per stage.
    """
    # The single-row common case is inlined here (admit, the contract's fast check, the hash):
    # every prediction runs this, and each Python call saved is ~0.05-0.1 us.
    p = Prediction(b)
    p.prediction_id = new_prediction_id()
    p.features = features
    site = "resolve"
    try:
        p.tenant = tenant if type(tenant) is str and len(tenant) <= 64 else clean_tenant(tenant)
        if b.plan.batch:
            p.rows = _row_count(features)
        if admission is not None or b.limiter is not None:
            site = "admit"
            if admission is None:
                cost = b.unit_cost if not p.rows else expected_cost(b, p.rows)
                admission = b.limiter.admit(p.tenant, cost, commit=True)
            apply_admission(b, p, admission)
        if p.route == PRIMARY and b.plan.contract is not None:
            site = "validate"
            if type(features) is not dict or p.rows or not _passes(b.fast_check, features):
                validate(b, p)
        site = "identify"
        if p.rows:
            identify_batch(b, p)
        else:
            h = b.hasher.hash_int(features if type(features) is dict else as_mapping(b, features))
            p.payload_hash = f"{h:016x}"
            p.sampled = h < b.sample_below or bool(p.violations)
            p.in_records = h < b.records_below and b.records is not None
    except Exception as exc:
        report_internal_error(site, exc)
        if strict():
            raise
    return p


def _passes(fast: Any, features: dict[Any, Any]) -> bool:
    """The contract's generated "certainly valid" test; False sends the call to ``validate``."""
    try:
        return bool(fast(features))
    except Exception:  # e.g. KeyError for a missing feature: validate explains it
        return False


def apply_admission(b: Bound, p: Prediction, a: Any) -> None:
    p.admission = a
    if a.remaining != _INF:
        (b.budget_slots.get(p.tenant) or b.budget_slot(p.tenant)).value = a.remaining
    if a.allowed:
        return
    if a.reason == n.RATE_LIMITED:
        p.outcome = n.RATE_LIMITED
        p.rejection = RateLimited(p.tenant, a.retry_after, a.rule)
    else:
        p.outcome = n.BUDGET_EXCEEDED
        p.rejection = BudgetExceeded(p.tenant, a.remaining, a.resets_at, a.rule)
    _route_around(b, p)


def expected_cost(b: Bound, rows: int) -> float:
    """The cost reserved before predict: a numeric ``cost=``, else the configured rate, per row."""
    return b.unit_cost * max(rows, 1)


def validate(b: Bound, p: Prediction) -> None:
    """Check the features against the contract; reject or fall back when policy says so."""
    contract = b.plan.contract
    if p.rows:
        check = contract.check_batch(p.features, columns=b.plan.columns)
        p.violations = check.violations
        bad_rows = check.bad_rows.tolist()
    else:
        p.violations = contract.check(p.features)
        bad_rows = []
    if not p.violations:
        return
    for v in p.violations:
        b.recorder.add(
            n.M_VIOLATIONS,
            1,
            (
                (n.MODEL_NAME, b.plan.model),
                (n.MODEL_VERSION, b.plan.version),
                (n.FEATURE_NAME, v.feature),
                (n.VIOLATION_KIND, v.kind),
            ),
        )
    if b.violation_policy != "record":
        p.outcome = n.CONTRACT_VIOLATION
        p.rejection = ContractViolation(b.plan.model, p.violations, bad_rows)
        _route_around(b, p)


def _route_around(b: Bound, p: Prediction) -> None:
    if b.plan.fallback is not None:
        p.outcome, p.route = n.FALLBACK, FALLBACK
    else:
        p.route = REJECT


def _row_count(features: Any) -> int:
    shape = getattr(features, "shape", None)
    return int(shape[0]) if shape is not None else len(features)


def start_span(b: Bound, p: Prediction) -> Any:
    """Start the span and make it current, only when the trace sampler keeps the call."""
    if p.route != REJECT:
        b.enter()
        p.entered = True
    lean = b.lean
    if lean is not None and lean.active():
        return _start_lean(b, p, lean)
    gate = b.span_gate
    if gate is not None and not gate():
        _current.set(p)
        return b.span_unsampled()
    try:
        p.span = b.tracer.start_span(b.plan.span_name, attributes=b.plan.span_attrs)
        token = otel_context.attach(trace.set_span_in_context(p.span))
    except Exception as exc:
        report_internal_error("span.start", exc)
        if strict():
            raise
        p.span, token = trace.INVALID_SPAN, None
    _current.set(p)
    return token


def _start_lean(b: Bound, p: Prediction, lean: Any) -> Any:
    """``start_span`` where modeltel owns the TracerProvider: a LeanSpan, or none when unsampled."""
    _current.set(p)
    try:
        span = lean.begin(b.plan.span_name, b.span_const)
        if span is None:
            return b.span_unsampled()
        p.span = span
        return otel_context.attach(trace.set_span_in_context(span))
    except Exception as exc:
        report_internal_error("span.start", exc)
        if strict():
            raise
        p.span = trace.INVALID_SPAN
        return None


def end_span(token: Any) -> None:
    if token is not None:
        otel_context.detach(token)


def succeed(b: Bound, p: Prediction, output: Any, duration: float) -> None:
    """Predict returned: extract score and decision, settle cost, record everything."""
    p.duration = duration
    try:
        if b.plain_output and type(output) is float and not p.rows:
            if p.score is None:  # a bare float score: nothing to extract, class or check
                p.score = output
        else:
            _take_output(b, p, output)
            _check_expectations(b, p)
        if p.cost is None and b.fixed_cost and not p.rows:
            p.cost = b.unit_cost
            a = p.admission  # a committed charge was this very cost: only a lease needs settling
            if a is not None and a.lease:
                b.limiter.settle(a, p.cost)
        else:
            settle(b, p, output)
    except Exception as exc:
        report_internal_error("output", exc)
        if strict():
            raise
    conclude(b, p, None)


def shadow(b: Bound, p: Prediction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Hand a share of answered calls (chosen by payload hash) to the challenger, off the path."""
    with handle_internal_errors("shadow.submit"):
        if p.route == PRIMARY and p.payload_hash and int(p.payload_hash, 16) < b.shadow_below:
            b.runtime.shadows.submit(ShadowJob(b, p, args, kwargs))


def fail(b: Bound, p: Prediction, exc: BaseException, duration: float) -> None:
    """Predict raised (or was cancelled): release the reservation, record the error."""
    p.duration = duration
    p.outcome = n.ERROR
    p.sampled = True
    with handle_internal_errors("release"):
        a = p.admission
        if a is not None and a.allowed and (a.lease or a.committed):
            b.limiter.release(a)
    conclude(b, p, exc)


def reject(b: Bound, p: Prediction) -> None:
    """Record a call that never reached predict (limits or contract said no)."""
    p.sampled = p.sampled or p.outcome == n.CONTRACT_VIOLATION
    token = start_span(b, p)
    try:
        conclude(b, p, None)
    finally:
        end_span(token)


def _take_output(b: Bound, p: Prediction, output: Any) -> None:
    plan = b.plan
    raw = output if plan.score_fn is None else plan.score_fn(output)
    if p.rows:
        if p.scores is None:
            p.scores = scores_of_batch(raw, p.rows)
    elif p.score is None:
        p.score = score_of(raw)
    if not p.rows:
        cls = plan.class_fn(output) if plan.class_fn is not None else _class_of(raw)
        p.cls = None if cls is None else str(cls)
    if plan.decision_fn is None or p.decision is not None:
        return
    if p.rows:  # a batch: decision= maps each row's score
        if p.scores is not None:
            p.row_decisions = [_text(plan.decision_fn(s)) for s in p.scores.tolist()]
    else:
        p.decision = _text(plan.decision_fn(output))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _check_expectations(b: Bound, p: Prediction) -> None:
    """``timeout=`` and ``score_range=``: the answer is returned as is, the outcome says what went wrong."""
    plan = b.plan
    if p.outcome != n.OK:
        return
    if plan.timeout is not None and p.duration > plan.timeout:
        p.outcome = n.TIMEOUT
    elif plan.score_range is not None and p.score is not None:
        low, high = plan.score_range
        if not low <= p.score <= high:
            p.outcome = n.SCORE_OUT_OF_RANGE


def _class_of(output: Any) -> str | None:
    if isinstance(output, str):
        return output
    if isinstance(output, dict) and output:
        return str(max(output, key=output.__getitem__))
    return None


def settle(b: Bound, p: Prediction, output: Any) -> None:
    """The actual cost: ``p.record(cost=)``, else ``cost=`` (number or callable), else the rate."""
    if p.cost is None:
        cost = b.plan.cost
        p.cost = float(cost(output, p.features)) if callable(cost) else expected_cost(b, p.rows)
    a = p.admission
    # Only a budget charge needs settling: a lease (freed if never settled) or a committed charge.
    if a is not None and a.allowed and (a.lease or a.committed):
        b.limiter.settle(a, p.cost)


def conclude(b: Bound, p: Prediction, exc: BaseException | None) -> None:
    """Record metrics, the span's attributes and the sampled feature records; end the span."""
    try:
        if p.entered:
            b.leave()
        if p.sampled or p.in_records:
            p.at = time_ns()  # one instant for the call's feature and prediction records
        # Features first: ml.features.sampled (and the span's flag) count what was emitted.
        sampled = _emit_features(b, p) if p.sampled else 0
        if p.rows:
            cell = b.cell(p.tenant, p.outcome, None)
            b.recorder.record_batch(cell, p.rows, p.duration, p.scores, p.cost or 0.0, sampled)
        else:
            cell = b.cells.get((p.tenant, p.outcome, p.cls)) or b.cell(p.tenant, p.outcome, p.cls)
            b.record(cell, p.duration, p.score, p.cost or 0.0, p.sampled)
        if p.in_records:
            _add_record(b, p)
    except Exception as error:
        report_internal_error("record", error)
        if strict():
            raise
    if p.span is not INVALID_SPAN:
        with handle_internal_errors("record.span"):
            _finish_span(b, p, exc)


def _emit_features(b: Bound, p: Prediction) -> int:
    """Emit the call's feature records; how many predictions they hold (``p.sampled`` says if any).

    Under its own guard, so a failure here still leaves the call's metrics recorded.
    """
    emitted = 0
    with handle_internal_errors("record.features"):
        emitted = emit_batch_features(b, p) if p.rows else emit_feature_records(b, p)
    p.sampled = emitted > 0
    return emitted


def _add_record(b: Bound, p: Prediction) -> None:
    records = b.records
    assert records is not None  # p.in_records says so
    now = p.at
    cost = p.cost or 0.0
    if not p.rows:
        records.add(
            (p.prediction_id, p.payload_hash, p.tenant, p.score, p.decision, p.outcome, now, p.duration, cost)
        )
        return
    add_batch_record(b, p, now, cost)


def _finish_span(b: Bound, p: Prediction, exc: BaseException | None) -> None:
    """Status ERROR for predict's own exception and a contract rejection; a call refused by a
    rate limit or budget is the client's to fix (as an HTTP 429), so its status stays UNSET."""
    span = p.span
    if span.is_recording():
        if type(span) is LeanSpan:
            span.finish(_span_attributes(p))
        else:
            span.set_attributes(_span_attributes(p))
        if exc is not None:
            record_exception(b, p, span, exc)
        elif p.rejection is not None and p.outcome == n.CONTRACT_VIOLATION:
            span.set_status(trace.StatusCode.ERROR, str(p.rejection)[:MAX_STATUS_DESCRIPTION_CHARS])
    span.end()


def _span_attributes(p: Prediction) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        n.TENANT: p.tenant,
        n.PREDICTION_ID: p.prediction_id,
        n.PAYLOAD_HASH: p.payload_hash,
        n.OUTCOME: p.outcome,
        n.FEATURES_SAMPLED: p.sampled,
    }
    if p.score is not None:
        attrs[n.SCORE] = p.score
    if p.decision is not None:
        attrs[n.DECISION] = p.decision
    if p.violations:
        attrs[n.CONTRACT_VIOLATIONS] = tuple([f"{v.feature}:{v.kind}" for v in p.violations[:64]])
    if p.rows:
        attrs[n.BATCH_SIZE] = p.rows
    a = p.admission
    if a is not None:
        attrs[n.LIMIT_DECISION] = a.reason or ("degraded" if a.degraded else "admitted")
        if a.remaining != float("inf"):
            attrs[n.BUDGET_REMAINING] = a.remaining
    return attrs


async def prepare_async(b: Bound, tenant: Any, features: Any) -> Prediction:
    """``prepare`` for async predict: a shared-backend limiter is asked without blocking the loop."""
    limiter = b.limiter
    if limiter is None or not b.limiter_remote:
        return prepare(b, tenant, features)
    admission = None
    with handle_internal_errors("admit.async"):
        rows = _row_count(features) if b.plan.batch else 0
        admission = await limiter.admit_async(clean_tenant(tenant), expected_cost(b, rows))
    return prepare(b, tenant, features, admission)
