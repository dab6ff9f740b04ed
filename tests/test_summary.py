"""summarize() turns OTLP/JSON files written by the real OTel SDK into per-model figures."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from modeltel._export.otlp_json import (
    OtlpFiles,
    OtlpJsonFileLogExporter,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
    read_otlp_json,
)
from modeltel.cli.summary import (
    TOP_TENANTS,
    MergedHistogram,
    Summary,
    SummaryRow,
    format_summary,
    histogram_quantile,
    histogram_std_estimate,
    merge_histograms,
    summarize,
    summarize_files,
)

DURATION_BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]
SCORE_BOUNDS = [0.0, 0.25, 0.5, 0.75, 1.0]
NEVER_MS = 10**9


class Instance:
    """One instrumented process: real SDK providers writing OTLP/JSON into a shared folder."""

    def __init__(
        self, folder: Path, instance_id: str, counter_temporality: AggregationTemporality | None = None
    ):
        resource = Resource.create({"service.name": "scoring", "service.instance.id": instance_id})
        preferred: dict[type, AggregationTemporality] | None = (
            {Counter: counter_temporality} if counter_temporality else None
        )
        exporter = OtlpJsonFileMetricExporter(folder, preferred_temporality=preferred)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=NEVER_MS)
        self.meters = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self.meters.get_meter("modeltel")
        self.calls = meter.create_counter("ml.predictions")
        self.non_finite = meter.create_counter("ml.prediction.score.non_finite")
        self.duration = meter.create_histogram(
            "ml.prediction.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BOUNDS
        )
        self.score = meter.create_histogram(
            "ml.prediction.score", explicit_bucket_boundaries_advisory=SCORE_BOUNDS
        )
        self.tracers = TracerProvider(resource=resource)
        self.tracers.add_span_processor(SimpleSpanProcessor(OtlpJsonFileSpanExporter(folder)))
        self.loggers = LoggerProvider(resource=resource)
        self.loggers.add_log_record_processor(SimpleLogRecordProcessor(OtlpJsonFileLogExporter(folder)))

    def predict(
        self,
        outcome: str = "ok",
        seconds: float = 0.003,
        score: float | None = None,
        *,
        model: str = "churn",
        version: str = "1",
        tenant: str = "acme",
    ) -> None:
        attrs = {"ml.model.name": model, "ml.model.version": version, "ml.tenant": tenant}
        self.calls.add(1, {**attrs, "ml.outcome": outcome})
        self.duration.record(seconds, {**attrs, "ml.outcome": outcome})
        if score is not None:
            self.score.record(score, attrs)

    def span(self, name: str = "predict churn", version: str = "1", tenant: str = "acme") -> None:
        attrs = {"ml.model.name": "churn", "ml.model.version": version, "ml.tenant": tenant}
        self.tracers.get_tracer("modeltel").start_span(name, attributes=attrs).end()

    def features(self, tenant: str = "acme", event_name: str = "ml.features") -> None:
        attrs = {"ml.model.name": "churn", "ml.model.version": "1", "ml.tenant": tenant}
        self.loggers.get_logger("modeltel").emit(event_name=event_name, body={"age": 3}, attributes=attrs)

    def flush(self) -> None:
        self.meters.force_flush()

    def close(self) -> None:
        for provider in (self.meters, self.tracers, self.loggers):
            provider.shutdown()


def _row(
    summary: Summary, tenant: str | None = "acme", model: str = "churn", version: str = "1"
) -> SummaryRow:
    [row] = [r for r in summary.rows if (r.model, r.version, r.tenant) == (model, version, tenant)]
    return row


def _hist(
    bounds: tuple[float, ...], counts: tuple[int, ...], lo: float | None = None, hi: float | None = None
) -> MergedHistogram:
    return MergedHistogram(count=sum(counts), sum=None, min=lo, max=hi, bounds=bounds, bucket_counts=counts)


def test_calls_are_counted_by_outcome(tmp_path: Path) -> None:
    """Each outcome's count comes from ml.predictions exactly."""
    instance = Instance(tmp_path, "a")
    for outcome, times in (("ok", 5), ("error", 2), ("contract_violation", 1), ("rate_limited", 3)):
        for _ in range(times):
            instance.predict(outcome)
    instance.flush()
    row = _row(summarize(tmp_path))
    assert row.outcomes == {"ok": 5, "error": 2, "contract_violation": 1, "rate_limited": 3}
    assert row.calls == 11


def test_repeated_cumulative_exports_are_not_double_counted(tmp_path: Path) -> None:
    """Only the latest cumulative point of a series counts, however often it was exported."""
    instance = Instance(tmp_path, "a")
    for _ in range(3):
        instance.predict()
    instance.flush()
    for _ in range(2):
        instance.predict()
    instance.flush()
    instance.flush()
    instance.close()  # shutdown exports once more
    assert _row(summarize(tmp_path)).outcomes == {"ok": 5}


def test_instances_writing_one_folder_are_summed(tmp_path: Path) -> None:
    """Series from different service.instance.id resources add up."""
    first, second = Instance(tmp_path, "a"), Instance(tmp_path, "b")
    for instance, calls in ((first, 3), (second, 4)):
        for _ in range(calls):
            instance.predict(seconds=0.02)
        instance.flush()
        instance.flush()
    row = _row(summarize(tmp_path))
    assert row.outcomes == {"ok": 7}
    assert 10 < (row.latency_ms[0.5] or 0) <= 20  # both instances' (0.01, 0.05] buckets, capped by max


def test_delta_points_are_all_summed(tmp_path: Path) -> None:
    """With delta temporality every exported point carries new calls and all are added."""
    instance = Instance(tmp_path, "a", counter_temporality=AggregationTemporality.DELTA)
    for _ in range(2):
        instance.predict()
        instance.predict("error")
        instance.flush()
    assert _row(summarize(tmp_path)).outcomes == {"ok": 2, "error": 2}


def test_latency_quantiles_fall_in_the_right_bucket(tmp_path: Path) -> None:
    """p50, p95 and p99 land inside the bucket holding their rank, reported in milliseconds."""
    instance = Instance(tmp_path, "a")
    for seconds, times in ((0.003, 85), (0.03, 10), (0.7, 5)):
        for _ in range(times):
            instance.predict(seconds=seconds)
    instance.flush()
    latency = _row(summarize(tmp_path)).latency_ms
    assert 3 <= (latency[0.5] or 0) <= 5  # (1, 5] ms, narrowed below by the recorded min of 3 ms
    assert 10 < (latency[0.95] or 0) <= 50
    assert 500 < (latency[0.99] or 0) <= 700  # (500, 1000] ms, capped by the recorded max of 700 ms


def test_latency_merges_outcomes(tmp_path: Path) -> None:
    """Durations of every outcome feed one latency distribution."""
    instance = Instance(tmp_path, "a")
    for _ in range(10):
        instance.predict("ok", seconds=0.003)
        instance.predict("error", seconds=0.3)
    instance.flush()
    latency = _row(summarize(tmp_path)).latency_ms
    assert (latency[0.5] or 0) <= 5
    assert 100 < (latency[0.95] or 0) <= 300


def test_score_mean_is_exact_and_std_is_estimated(tmp_path: Path) -> None:
    """The score mean is sum/count; the midpoint std estimate is within a bucket width of the truth."""
    instance = Instance(tmp_path, "a")
    scores = [0.1, 0.2, 0.6, 0.9]
    for score in scores:
        instance.predict(score=score)
    instance.flush()
    row = _row(summarize(tmp_path))
    mean = sum(scores) / len(scores)
    true_std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    assert row.score_mean == pytest.approx(mean)
    assert row.score_std_estimate is not None
    assert abs(row.score_std_estimate - true_std) <= 0.25


def test_non_finite_scores_are_counted(tmp_path: Path) -> None:
    """ml.prediction.score.non_finite is reported per model, version and tenant."""
    instance = Instance(tmp_path, "a")
    instance.predict()
    instance.non_finite.add(2, {"ml.model.name": "churn", "ml.model.version": "1", "ml.tenant": "acme"})
    instance.flush()
    assert _row(summarize(tmp_path)).non_finite == 2


def test_missing_non_finite_counter_reads_as_zero(tmp_path: Path) -> None:
    """Without the non-finite counter the column is 0, not missing."""
    instance = Instance(tmp_path, "a")
    instance.predict()
    instance.flush()
    assert _row(summarize(tmp_path)).non_finite == 0


def test_feature_records_and_spans_are_counted(tmp_path: Path) -> None:
    """ml.features log records and 'predict {model}' spans are counted per tenant."""
    instance = Instance(tmp_path, "a")
    for _ in range(3):
        instance.features()
        instance.span()
    instance.features(event_name="something.else")
    instance.span(name="feature lookup")
    instance.features(tenant="globex")
    row = _row(summarize(tmp_path))
    assert (row.feature_records, row.spans) == (3, 3)
    assert _row(summarize(tmp_path), tenant="globex").feature_records == 1


def test_total_row_covers_all_tenants(tmp_path: Path) -> None:
    """Each model/version ends with a tenant=None row summing its tenants."""
    instance = Instance(tmp_path, "a")
    instance.predict(tenant="acme", seconds=0.003)
    instance.predict("error", tenant="globex", seconds=0.003)
    instance.predict(version="2", tenant="acme")
    instance.flush()
    summary = summarize(tmp_path)
    assert [(r.version, r.tenant) for r in summary.rows] == [
        ("1", "acme"),
        ("1", "globex"),
        ("1", None),
        ("2", "acme"),
        ("2", None),
    ]
    total = _row(summary, tenant=None)
    assert total.outcomes == {"ok": 1, "error": 1}
    assert (total.latency_ms[0.5] or 0) == pytest.approx(3)  # min == max == 3 ms pins the estimate


def _tenant_rows(summary: Summary) -> list[SummaryRow]:
    return [r for r in summary.rows if r.tenant is not None and not r.others]


def _split(summary: Summary) -> tuple[list[SummaryRow], SummaryRow, SummaryRow]:
    """A one-version summary's tenant rows, its folded row and its total row."""
    (folded,) = [r for r in summary.rows if r.others]
    return _tenant_rows(summary), folded, _row(summary, None)


def test_small_tenants_fold_into_one_row_and_totals_still_add_up(tmp_path: Path) -> None:
    """Past the top tenants by calls, the rest share one "(N others)" row; shown rows plus that
    row add up to the total row, call for call, span for span (main: one row per tenant)."""
    instance = Instance(tmp_path, "a")
    for i in range(TOP_TENANTS + 5):  # tenant i: i + 1 calls, one of them an error when i is odd
        tenant = f"t{i:02d}"
        for call in range(i + 1):
            instance.predict("error" if i % 2 and call == 0 else "ok", tenant=tenant)
        instance.span(tenant=tenant)
        instance.features(tenant=tenant)
    instance.flush()
    summary = summarize(tmp_path)

    shown, folded, total = _split(summary)
    assert [r.tenant for r in shown] == [f"t{i:02d}" for i in range(TOP_TENANTS + 4, 4, -1)]
    assert (folded.tenant, folded.others, folded.calls) == ("(5 others)", 5, 1 + 2 + 3 + 4 + 5)
    assert folded.outcomes == {"ok": 13, "error": 2}
    for figure in ("calls", "spans", "feature_records", "non_finite"):
        assert sum(getattr(r, figure) for r in [*shown, folded]) == getattr(total, figure), figure
    assert "(5 others)" in format_summary(summary)
    assert len(_tenant_rows(summarize(tmp_path, top=None))) == TOP_TENANTS + 5


def test_one_tenant_past_the_top_is_shown_not_folded(tmp_path: Path) -> None:
    """Folding a single tenant would hide it for nothing: it keeps its own row."""
    instance = Instance(tmp_path, "a")
    for i in range(4):
        instance.predict(tenant=f"t{i}")
    instance.flush()
    summary = summarize(tmp_path, top=3)
    assert [r.tenant for r in summary.rows] == ["t0", "t1", "t2", "t3", None]


def _many_tenants(tenants: int) -> OtlpFiles:
    """``ml.predictions`` points for ``tenants`` tenants, as the reader returns them for files a
    fleet wrote (cloned from one point read back): tenant i made i + 1 ok calls and i % 3 errors."""
    instance_folder = Path(tempfile.mkdtemp())
    one = Instance(instance_folder, "a")
    one.predict(tenant="template")
    one.close()
    (template,) = [p for p in read_otlp_json(instance_folder).metrics if p["name"] == "ml.predictions"]
    shutil.rmtree(instance_folder)
    points = []
    for i in range(tenants):
        tenant = {"ml.model.name": "churn", "ml.model.version": "1", "ml.tenant": f"t{i:07d}"}
        points.append({**template, "attributes": {**tenant, "ml.outcome": "ok"}, "value": i + 1})
        if i % 3:
            points.append({**template, "attributes": {**tenant, "ml.outcome": "error"}, "value": i % 3})
    return OtlpFiles(metrics=points)


def test_two_hundred_thousand_tenants_summarize_in_one_pass() -> None:
    """200,000 tenants: the top 20 by calls, 199,980 folded, and every call in the total (on main
    the per-tenant rescans took 31 s at this size and a million tenants did not finish)."""
    tenants = 200_000
    summary = summarize_files(_many_tenants(tenants))

    shown, folded, total = _split(summary)
    by_calls = sorted(range(tenants), key=lambda i: (-(i + 1 + i % 3), i))
    assert [r.tenant for r in shown] == [f"t{i:07d}" for i in by_calls[:TOP_TENANTS]]
    assert folded.others == tenants - TOP_TENANTS
    ok, errors = tenants * (tenants + 1) // 2, sum(i % 3 for i in range(tenants))
    assert total.outcomes == {"ok": ok, "error": errors}
    assert folded.calls + sum(r.calls for r in shown) == total.calls == ok + errors


def test_bad_lines_are_reported(tmp_path: Path) -> None:
    """Malformed lines in the folder are counted in the summary and mentioned in the output."""
    instance = Instance(tmp_path, "a")
    instance.predict()
    instance.flush()
    with (tmp_path / "metrics.jsonl").open("a") as metrics:
        metrics.write("{truncated\n")
    summary = summarize(tmp_path)
    assert summary.bad_lines == 1
    assert "skipped 1 malformed line" in format_summary(summary)


def test_format_summary_is_a_fixed_width_table(tmp_path: Path) -> None:
    """The table has aligned columns, the outcome columns seen and labelled estimates."""
    instance = Instance(tmp_path, "a")
    instance.predict("ok", score=0.5)
    instance.predict("budget_exceeded", tenant="globex")
    instance.flush()
    text = format_summary(summarize(tmp_path))
    table = text.split("\n\n")[0].splitlines()
    assert len({len(line) for line in table}) == 1
    assert table[0].split()[:7] == ["model", "version", "tenant", "calls", "ok", "error", "budget_exceeded"]
    assert [line.split()[2] for line in table[1:]] == ["acme", "globex", "(all)"]
    assert "score std~" in table[0] and "estimated" in text


def test_format_summary_of_empty_folder_says_so(tmp_path: Path) -> None:
    """An empty folder gives a one-line explanation instead of an empty table."""
    assert format_summary(summarize(tmp_path)) == f"no modeltel telemetry found in {tmp_path}"


def test_quantile_interpolates_linearly_within_bucket() -> None:
    """Like Prometheus histogram_quantile, the rank is interpolated inside its bucket."""
    hist = _hist((1.0, 2.0, 4.0), (0, 10, 10, 0))
    assert histogram_quantile(0.5, hist) == pytest.approx(2.0)
    assert histogram_quantile(0.75, hist) == pytest.approx(3.0)


def test_quantile_in_overflow_bucket_uses_max_or_highest_bound() -> None:
    """The +Inf bucket ends at the recorded max, or collapses onto the highest bound without one."""
    assert histogram_quantile(0.5, _hist((1.0,), (0, 4), lo=2.0, hi=6.0)) == pytest.approx(4.0)
    assert histogram_quantile(0.5, _hist((1.0,), (0, 4))) == pytest.approx(1.0)


def test_std_estimate_uses_bucket_midpoints() -> None:
    """Values are placed at their bucket midpoints around the exact mean."""
    hist = MergedHistogram(
        count=2, sum=1.0, min=None, max=None, bounds=(0.0, 0.25, 0.75, 1.0), bucket_counts=(0, 1, 0, 1, 0)
    )
    assert histogram_std_estimate(hist) == pytest.approx(0.375)


def test_histograms_with_different_bounds_give_no_quantile() -> None:
    """Buckets are only added when bounds agree; otherwise the quantile is unknown, not wrong."""
    point = {
        "count": 1,
        "sum": 0.5,
        "min": 0.5,
        "max": 0.5,
        "bucket_counts": [0, 1],
        "explicit_bounds": [1.0],
    }
    merged = merge_histograms([point, {**point, "bucket_counts": [0, 1, 0], "explicit_bounds": [0.1, 1.0]}])
    assert merged is not None
    assert (merged.count, merged.sum, merged.bounds) == (2, 1.0, None)
    assert histogram_quantile(0.5, merged) is None
