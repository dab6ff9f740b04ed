"""``evaluate``: telemetry folder (+ labels) in, :class:`Evaluation` out, one stage at a time.

Windows are half-open, ``[start, end)``, on both sides, and printed so: the *current* window is
the last ``period`` before ``as_of`` (default: 1 ns after the latest prediction or outcome, so
that one is in it); the *reference* window is the first ``reference`` of the data (at most up
to the current window), or an explicit ``START/END`` interval; a saved profile, when given,
replaces the reference distributions (the reference window still gives the reference quality
for the backtest). Per-period drift compares each period after the reference window with the
reference.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from modeltel.loop._compare import compare_versions
from modeltel.loop._cost import cost_latency
from modeltel.loop._drift import Sample, compare, profile_sample, window_samples
from modeltel.loop._durations import NS_PER_S, parse_duration, parse_instant
from modeltel.loop._engine import DEFAULT_MEMORY_LIMIT, require_duckdb
from modeltel.loop._histogram import score_histogram
from modeltel.loop._inventory import build_inventory
from modeltel.loop._join import build_joined, latest_timestamp
from modeltel.loop._metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Key,
    classification_within,
    counts,
    regression,
)
from modeltel.loop._operational import operational, violation_totals
from modeltel.loop._periods import add_periods, apply_bands, check_estimates, run_backtest
from modeltel.loop._profile import load_profile
from modeltel.loop._progress import Progress
from modeltel.loop._result import Evaluation, GroupReport
from modeltel.loop._spark import (
    SparkConnection,
    require_pyspark,
    session_master,
    shuffle_partitions,
    spark_session,
)
from modeltel.loop._tables import is_tables_folder, load_duckdb, save_tables

__all__ = ["ENGINES", "EvaluateOptions", "evaluate"]

ENGINES: Final = ("duckdb", "spark")


@dataclass(frozen=True)
class EvaluateOptions:
    """What ``evaluate`` computes; durations like ``7d``, instants ISO 8601 or ``now``."""

    labels: tuple[Path, ...] = ()
    maturation: str = "7d"
    reference: str = "30d"
    period: str = "1d"
    period_origin: str | None = None
    by_tenant: bool = False
    threshold: float = 0.5
    as_of: str | None = None
    profile: Path | None = None
    features: tuple[str, ...] | None = None
    band_periods: int = 7
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    engine: str = "duckdb"
    spark_master: str = "local[*]"
    since: str | None = None


@dataclass(frozen=True)
class _Windows:
    as_of: int
    reference: tuple[int, int]
    current: tuple[int, int]
    drift_from: int

    def in_reference(self) -> str:
        """SQL: the row's ``ts`` is in the reference window."""
        return f"ts >= {self.reference[0]} AND ts < {self.reference[1]}"

    def sql(self) -> str:
        c0, c1 = self.current
        current = f"ts >= {c0} AND ts < {c1}"
        return f"CASE WHEN {self.in_reference()} THEN 'reference' WHEN {current} THEN 'current' END"


WEEK_NS: Final = 7 * 86_400 * NS_PER_S
# 1970-01-05T00:00:00Z, the first Monday of the Unix epoch (a Thursday): weeks start on Mondays.
FIRST_MONDAY_NS: Final = 4 * 86_400 * NS_PER_S


def period_origin(options: EvaluateOptions, period: int) -> int:
    """The instant periods are counted from: ``--period-origin``, else Monday 00:00 UTC for
    whole weeks and the epoch (midnight UTC, the top of an hour) for anything else."""
    if options.period_origin:
        return parse_instant(options.period_origin)
    return FIRST_MONDAY_NS if period % WEEK_NS == 0 else 0


def _windows(con: Any, options: EvaluateOptions, as_of: int, period: int, origin: int) -> _Windows:
    current = (as_of - period, as_of)
    if "/" in options.reference:
        start, end = (parse_instant(part) for part in options.reference.split("/", 1))
    else:
        first = con.execute("SELECT min(ts) FROM joined").fetchone()[0]
        start = as_of if first is None else int(first)
        end = max(start, min(start + parse_duration(options.reference), current[0]))
    drift_from = origin + math.ceil((end - origin) / period) * period
    return _Windows(as_of, (start, end), current, drift_from)


def _tasks(con: Any) -> dict[str, str]:
    declared = {
        m: metric
        for m, metric in con.execute("SELECT model, max(metric) FROM model_info GROUP BY model").fetchall()
    }
    rows = con.execute("""
        SELECT model, count(label_num), count(*) FILTER (WHERE label_num NOT IN (0, 1))
        FROM joined WHERE matured AND label_str IS NOT NULL GROUP BY model
    """).fetchall()
    tasks: dict[str, str] = {}
    for model, numeric, non_binary in rows:
        metric = declared.get(model)
        if metric in REGRESSION_METRICS or (metric not in CLASSIFICATION_METRICS and non_binary):
            tasks[model] = "regression" if numeric else "unsupported labels"
        else:
            tasks[model] = "classification" if numeric and not non_binary else "unsupported labels"
    for model in declared:
        tasks.setdefault(model, "unlabelled")
    return tasks


def _primary(con: Any, model: str, task: str) -> str | None:
    row = con.execute("SELECT max(metric) FROM model_info WHERE model = ?", [model]).fetchone()
    declared = row[0] if row else None
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if task not in ("classification", "regression"):
        return None
    return declared if declared in allowed else allowed[0]


def _group_reports(
    con: Any, keys: Sequence[str], threshold: float, w: _Windows
) -> tuple[dict[Key, GroupReport], dict[Key, Any]]:
    """Per group: its report with counts and quality over all matured, labelled predictions;
    and its metrics over the reference window alone (the backtest's baseline)."""
    tasks = _tasks(con)
    groups: dict[Key, GroupReport] = {}
    for key, c in sorted(counts(con, keys).items()):
        model, version = key[0], key[1]
        task = tasks.get(model, "unlabelled")
        tenant = key[2] if len(keys) > 2 else None
        groups[key] = GroupReport(model, version, tenant, task, _primary(con, model, task), c)
    by_task = {
        t: sorted({g.model for g in groups.values() if g.task == t}) for t in ("classification", "regression")
    }
    reference = w.in_reference()
    windows = {"all": "TRUE", "reference": reference}
    found = classification_within(con, keys, by_task["classification"], threshold, windows)
    for key, metrics in found["all"].items():
        groups[key].classification = metrics
    for key, reg in regression(con, keys, by_task["regression"]).items():
        groups[key].regression = reg
    at_reference: dict[Key, Any] = dict(found["reference"])
    at_reference.update(regression(con, keys, by_task["regression"], reference))
    return groups, at_reference


def _reference_quality(
    groups: dict[Key, GroupReport], at_reference: dict[Key, Any]
) -> dict[Key, tuple[float | None, Any]]:
    """Per group: the primary metric over the reference window, and its metrics object."""
    result: dict[Key, tuple[float | None, Any]] = {}
    for key, report in groups.items():
        value = getattr(at_reference.get(key), report.primary_metric or "", None)
        result[key] = (value if isinstance(value, float) else None, at_reference.get(key))
    return result


def _drift(
    con: Any, keys: Sequence[str], groups: dict[Key, GroupReport], w: _Windows, options: EvaluateOptions
) -> Sample | dict[Key, Sample]:
    samples = window_samples(con, keys, w.sql())
    profile = profile_sample(load_profile(options.profile)) if options.profile else None
    references: dict[Key, Sample] = {}
    for key, report in groups.items():
        reference = profile or samples.get((key, "reference"), Sample())
        current = samples.get((key, "current"), Sample())
        references[key] = reference
        report.drift = compare(reference, current, options.features)
        report.histogram = score_histogram(reference, current)
    return profile if profile is not None else references


def _operational(
    con: Any, folder: Path, keys: Sequence[str], groups: dict[Key, GroupReport], w: _Windows
) -> None:
    health = operational(con, keys, w.sql())
    totals = violation_totals(folder)
    for key, report in groups.items():
        ops = health.get(key)
        if ops is not None:
            ops.violation_totals = totals.get((report.model, report.version), {})
        report.operational = ops


def _load(path: str | Path, options: EvaluateOptions, spark: Any, tables: bool) -> tuple[Any, dict[str, int]]:
    """The engine's connection with the four tables of tables folder (``tables``) or telemetry
    folder ``path`` loaded (predictions and feature samples from ``options.since`` on), and the
    telemetry lines skipped."""
    since = parse_instant(options.since) if options.since else None
    if options.engine == "spark" and tables:
        if options.labels:
            raise ValueError(
                f"{path}: a tables folder carries its labels in outcomes/ (modeltel tables --labels)"
            )
        return SparkConnection(_session(spark, options, str(path)), str(path), since=since), {}
    window = (since, parse_instant(options.as_of) if options.as_of else None)
    con, skipped = load_duckdb(
        path, labels=options.labels, memory_limit=options.memory_limit, window=window, tables=tables
    )
    if options.engine == "duckdb":
        return con, skipped
    return _hand_to_spark(con, spark, options), skipped


def _preflight(path: str | Path, options: EvaluateOptions, spark: Any) -> bool:
    """Whether ``path`` is a tables folder, once the engine and what it needs are known to be
    there: a missing one says so before any progress is printed."""
    if options.engine not in ENGINES:
        raise ValueError(f"engine {options.engine!r}: expected one of {', '.join(ENGINES)}")
    require_duckdb()
    if options.engine == "spark":
        require_pyspark()
    tables = is_tables_folder(path)  # on a URL, a listing: asked once
    if options.engine == "spark" and not tables:
        _check_local(path, session_master(spark, options.spark_master))
    return tables


def _check_local(path: str | Path, master: str) -> None:
    """A telemetry folder reaches Spark as Parquet in a local scratch folder, which only a
    ``local`` master's executors (this machine) can read."""
    if not master.startswith("local"):
        raise ValueError(
            f"{path}: a telemetry folder is handed to Spark in a folder on this machine, which the "
            f"executors of master {master or '(Spark Connect)'} cannot read: land its tables where they "
            f"can (modeltel tables {path} s3://bucket/tables) and evaluate that tables folder"
        )


def _session(spark: Any, options: EvaluateOptions, source: str) -> Any:
    """``spark`` when given, else the active session or a new one sized for ``source``."""
    if spark is not None:
        return spark
    return spark_session(options.spark_master, options.memory_limit, shuffle_partitions(source))


def _hand_to_spark(con: Any, spark: Any, options: EvaluateOptions) -> SparkConnection:
    """What DuckDB loaded on this machine, landed as Parquet in a scratch folder for Spark."""
    scratch = tempfile.mkdtemp(prefix="modeltel-tables-")
    try:
        try:
            save_tables(con, scratch)
        finally:
            con.close()
        return SparkConnection(_session(spark, options, scratch), scratch, remove_on_close=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def evaluate(
    path: str | Path, options: EvaluateOptions | None = None, *, progress: bool = False, spark: Any = None
) -> Evaluation:
    """Evaluate the telemetry in folder ``path``, or the tables folder (or URL) ``path``
    (see :class:`EvaluateOptions`). With ``engine="spark"`` the queries run on SparkSession
    ``spark`` (default: the active one, or a new one on ``options.spark_master``)."""
    options = options or EvaluateOptions()
    folder, stages = Path(path), Progress(8, enabled=progress)
    tables = _preflight(path, options, spark)
    with stages("loading telemetry"):
        con, skipped = _load(path, options, spark, tables)
    try:
        # Every outcome, recorded or from label files, so labels that match nothing are noticed.
        outcomes = int(con.execute("SELECT count(*) FROM outcomes").fetchone()[0])
        evaluation = _analyse(con, folder, options, stages)
    finally:
        con.close()  # on Spark, also drops the views and a scratch copy of the tables
    evaluation.outcomes_loaded, evaluation.skipped_lines = outcomes, skipped
    return evaluation


def _analyse(con: Any, folder: Path, options: EvaluateOptions, stages: Progress) -> Evaluation:
    """Every stage after loading, on connection ``con`` (its four tables loaded)."""
    period, maturation = parse_duration(options.period), parse_duration(options.maturation)
    origin = period_origin(options, period)
    as_of = parse_instant(options.as_of) if options.as_of else (latest_timestamp(con) or -1) + 1
    with stages("joining outcomes"):
        build_joined(con, as_of=as_of, maturation=maturation, period=period, origin=origin)
        labelled = con.execute("SELECT count(*) FROM joined WHERE label_str IS NOT NULL").fetchone()[0]
    w = _windows(con, options, as_of, period, origin)
    keys = ["model", "version", "tenant"] if options.by_tenant else ["model", "version"]
    with stages("quality metrics"):
        groups, at_reference = _group_reports(con, keys, options.threshold, w)
    with stages("drift"):
        reference = _drift(con, keys, groups, w, options)
        _operational(con, folder, keys, groups, w)
    with stages("cost and latency"):
        for key, cost in cost_latency(con, keys).items():
            groups[key].cost = cost
    with stages("periods and bands"):
        add_periods(
            con,
            keys,
            groups,
            period=period,
            origin=origin,
            threshold=options.threshold,
            reference=reference,
            drift_from=w.drift_from,
            signals=options.features,
        )
        for report in groups.values():
            apply_bands(report, options.band_periods)
    with stages("backtest"):
        for key, (quality, metrics) in _reference_quality(groups, at_reference).items():
            run_backtest(groups[key], quality, w.drift_from)
            check_estimates(groups[key], getattr(metrics, "ece", None), getattr(metrics, "n", 0))
    with stages("versions and inventory"):
        evaluation = Evaluation(
            as_of,
            maturation,
            period,
            "profile" if options.profile else w.reference,
            w.current,
            options.threshold,
            list(groups.values()),
            period_origin_ns=origin,
            labels_matched=int(labelled),
        )
        evaluation.comparisons = compare_versions(con, options.threshold, groups, _tasks(con))
        known = (
            {(g.model, g.version): g.cost for g in groups.values() if g.cost}
            if not options.by_tenant
            else None
        )
        evaluation.inventory = build_inventory(con, known)
    return evaluation
