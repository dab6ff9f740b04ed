"""An application that installed its own MeterProvider gets modeltel's metrics through it.

Runs in a child interpreter: a process installs its global MeterProvider once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

APP = textwrap.dedent(
    """
    import json, os
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    import modeltel

    modeltel.configure()

    @modeltel.instrument(model="fraud", version="1", tenant="tenant", budgets="*=100/day", cost=0.25)
    def predict(features, tenant):
        return 0.75 if features["x"] > 0 else float("nan")

    for i in range(40):
        predict({"x": 1.0 if i % 4 else -1.0}, tenant="acme")

    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    value = getattr(p, "value", None)
                    if value is None:
                        value = {"count": p.count, "sum": p.sum}
                    points.setdefault(m.name, []).append([dict(p.attributes), value])
    print(json.dumps(points))
    """
)


def test_metrics_flow_through_the_applications_meter_provider() -> None:
    done = subprocess.run([sys.executable, "-c", APP], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    points = json.loads(done.stdout.strip().splitlines()[-1])

    def total(name: str) -> float:
        return sum(v if not isinstance(v, dict) else v["count"] for _, v in points[name])

    assert total("ml.predictions") == 40
    assert total("ml.prediction.duration") == 40
    assert total("ml.prediction.score") == 30  # the NaN scores are counted apart
    assert total("ml.prediction.score.non_finite") == 10
    [(attrs, remaining)] = points["ml.budget.remaining"]
    assert attrs["ml.tenant"] == "acme" and remaining == 100 - 40 * 0.25
    assert [v for _, v in points["ml.predictions.in_flight"]] == [0]
    cost = sum(v for _, v in points["ml.prediction.cost"])
    assert abs(cost - 10.0) < 1e-9
