"""Shadow comparison: a challenger answers off the request path and can never hurt the champion."""

from __future__ import annotations

import threading
from typing import Any

import modeltel
from modeltel import _names as n
from modeltel.testing import Capture, capture


def _champion(features: dict[str, float]) -> float:
    return features["x"] / 100


def _rows(cap: Capture, version: str) -> list[dict[str, Any]]:
    return cap.prediction_rows(version=version)


def test_a_challenger_that_raises_changes_nothing_for_the_caller() -> None:
    """Every champion answer is returned; the challenger's failures are counted as shadow errors."""

    def broken(features: dict[str, float]) -> float:
        raise RuntimeError("challenger bug")

    predict = modeltel.instrument(model="s1", version="1", shadow=broken, shadow_rate=1.0)(_champion)
    with capture() as c:
        assert [predict({"x": float(i)}) for i in range(20)] == [i / 100 for i in range(20)]
        assert c.runtime.force_flush()
        assert c.counter(n.M_SHADOW, **{n.SHADOW_AGREEMENT: "error"}) == 20
        assert c.counter(n.M_PREDICTIONS, **{n.OUTCOME: "ok"}) == 20


def test_a_hung_challenger_does_not_hold_the_champion() -> None:
    """The champion answers while the challenger is still blocked inside its call."""
    started, release = threading.Event(), threading.Event()

    def hung(features: dict[str, float]) -> float:
        started.set()
        release.wait(30)
        return 0.0

    predict = modeltel.instrument(model="s2", version="1", shadow=hung, shadow_rate=1.0)(_champion)
    with capture() as c:
        assert predict({"x": 50.0}) == 0.5
        assert started.wait(10)
        assert not release.is_set()  # the answer above came back while the challenger was blocked
        assert predict({"x": 10.0}) == 0.1  # and the next call is not queued behind it either
        release.set()
        assert c.runtime.force_flush()
        assert c.counter(n.M_SHADOW, **{n.SHADOW_AGREEMENT: "disagree"}) == 2


def test_agreement_deltas_and_records_on_the_same_ids() -> None:
    """Score deltas are summed, agreement follows the decision, and the shadow's records share ids."""

    def challenger(features: dict[str, float]) -> float:
        return features["x"] / 100 + 0.25

    decide = lambda score: "high" if score > 0.5 else "low"  # noqa: E731 - a one-line policy
    predict = modeltel.instrument(
        model="s3", version="2", decision=decide, shadow=challenger, shadow_rate=1.0
    )(_champion)
    with capture() as c:
        for x in (10.0, 40.0, 90.0):  # champion 0.1/0.4/0.9, challenger 0.35/0.65/1.15
            predict({"x": x})
        assert c.runtime.force_flush()
        assert c.counter(n.M_SHADOW, **{n.SHADOW_AGREEMENT: "agree"}) == 2
        assert c.counter(n.M_SHADOW, **{n.SHADOW_AGREEMENT: "disagree"}) == 1
        assert abs(c.counter(n.M_SHADOW_DELTA, **{n.SHADOW_VERSION: "2+shadow"}) - 0.75) < 1e-12
        champion, shadow = _rows(c, "2"), _rows(c, "2+shadow")
    assert [r["prediction_id"] for r in shadow] == [r["prediction_id"] for r in champion]
    assert [r["score"] for r in shadow] == [0.1 + 0.25, 0.4 + 0.25, 0.9 + 0.25]


def test_shadow_rate_picks_the_same_payloads_every_time() -> None:
    """shadow_rate=0.3 shadows about 30% of payloads, decided by payload hash."""

    def challenger(features: dict[str, float]) -> float:
        return 0.0

    predict = modeltel.instrument(model="s4", version="1", shadow=challenger, shadow_rate=0.3)(_champion)

    def shadowed() -> list[str]:
        with capture() as c:
            for i in range(300):
                predict({"x": float(i)})
            assert c.runtime.force_flush()
            return sorted(r["payload_hash"] for r in _rows(c, "1+shadow"))

    first = shadowed()
    assert first == shadowed() and 50 < len(first) < 130
