"""The loop on Apache Spark: a real local Spark (Java 17) gives the report DuckDB gives, to 1e-9.

The telemetry has what makes the queries differ if a dialect entry is wrong: two versions and
three tenants, a regression model beside the classifier, NaN scores and failed calls, latency
and cost targets, numeric and categorical sampled features with contract violations, and labels
by prediction id (some corrected later), by payload hash and model, by payload hash alone, and
after the evaluation instant.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modeltel.loop import EvaluateOptions, evaluate, format_evaluation, to_jsonable
from modeltel.loop._dialect import SPARK
from modeltel.loop._drift import score_samples
from modeltel.loop._engine import connect
from modeltel.loop._join import build_joined
from modeltel.loop._metrics import classification_within
from modeltel.loop._spark import SparkConnection
from modeltel.loop._synthetic import append_records, feature_record, outcome_record, prediction_record
from modeltel.loop._tables import read_tables

DAY = 86_400 * 1_000_000_000
DAY0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00:00Z
DAYS = 21
PER_DAY = 240
AS_OF = "2024-01-22T00:00:00Z"  # the end of the last day: labels arrive for days after it


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local Spark on two cores, as ``--engine spark`` starts one."""
    if shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("java is not installed; .ci/run installs openjdk-17-jre-headless (make redis)")
        pytest.skip("java is not installed (apt-get install openjdk-17-jre-headless)")
    from modeltel.loop._spark import spark_session

    session = spark_session("local[2]", "2GB")
    yield session
    session.stop()


def _columns(
    rng: np.random.Generator, ids: list[str], times: list[int], scores: list[float]
) -> dict[str, Any]:
    n = len(ids)
    failed = rng.random(n) < 0.03
    return {
        "prediction_id": ids,
        "payload_hash": [f"h-{i}" for i in ids],
        "tenant": list(rng.choice(["acme", "globex", "initech"], n)),
        "score": [math.nan if f else s for f, s in zip(failed, scores, strict=True)],
        "decision": ["review" if s > 0.7 else "approve" for s in scores],
        "outcome": ["error" if f else "ok" for f in failed],
        "time_unix_nano": times,
        "duration_s": rng.gamma(2.0, 0.002, n).tolist(),
        "cost": [0.0004] * n,
    }


def _day(rng: np.random.Generator, day: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    shift = 0.15 if day >= 14 else 0.0
    for model, version in (("fraud", "1"), ("fraud", "2"), ("eta", "1")):
        ids = [f"{model}{version}-{day}-{i}" for i in range(PER_DAY)]
        times = (DAY0 + day * DAY + np.sort(rng.integers(0, DAY, PER_DAY))).tolist()
        if model == "eta":
            truth = rng.gamma(3.0, 10.0, PER_DAY)
            scores = (truth + rng.normal(0, 4.0, PER_DAY)).tolist()
            targets = {"metric": "mae", "latency_budget_ms": 5}
        else:
            scores = np.clip(rng.beta(2, 5, PER_DAY) + shift, 0, 1).tolist()
            truth = (rng.random(PER_DAY) < np.asarray(scores)).astype(float)
            targets = {"metric": "roc_auc", "latency_budget_ms": 10, "cost_per_1k_target": 0.5}
        columns = _columns(rng, ids, times, scores)
        records.append(prediction_record(model, version, columns, targets=targets))
        for i in range(0, PER_DAY, 5):
            category = ["web", "app", "pos"][int(rng.integers(0, 3))] if day < 14 else "app"
            violations = ["amount:out_of_range"] if rng.random() < 0.1 else []
            features = {"amount": float(rng.lognormal(3 + shift, 1)), "channel": category}
            records.append(
                feature_record(
                    model, version, features, time_ns=times[i], prediction_id=ids[i], violations=violations
                )
            )
        records += _labels(rng, model, ids, times, truth)
    return records


def _labels(
    rng: np.random.Generator, model: str, ids: list[str], times: list[int], truth: Any
) -> list[dict[str, Any]]:
    records = []
    for i, (pid, t, y) in enumerate(zip(ids, times, truth, strict=True)):
        label = float(y) if model == "eta" else int(y)
        delay = int(rng.integers(DAY // 2, 4 * DAY))
        if i % 7 == 0:  # by payload hash and model
            records.append(outcome_record(label, at_ns=t + delay, payload_hash=f"h-{pid}", model=model))
        elif i % 11 == 0:  # by payload hash alone
            records.append(outcome_record(label, at_ns=t + delay, payload_hash=f"h-{pid}"))
        elif i % 3 != 0:  # by id, a fifth of them corrected a day later
            records.append(outcome_record(label, at_ns=t + delay, prediction_id=pid))
            if i % 5 == 0:
                corrected = (1 - label) if model != "eta" else label + 1.0
                records.append(outcome_record(corrected, at_ns=t + delay + DAY, prediction_id=pid))
    return records


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(11)
    out = tmp_path_factory.mktemp("spark-telemetry")
    for day in range(DAYS):
        append_records(out, _day(rng, day), per_line=200)
    return out


def assert_same(duck: Any, spark: Any, path: str = "") -> None:
    """Equal reports: every number to 1e-9 (relative above 1), everything else exactly."""
    if isinstance(duck, dict):
        assert isinstance(spark, dict) and duck.keys() == spark.keys(), path
        for key in duck:
            assert_same(duck[key], spark[key], f"{path}/{key}")
    elif isinstance(duck, list):
        assert isinstance(spark, list) and len(duck) == len(spark), path
        for i, (a, b) in enumerate(zip(duck, spark, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(duck, float) and isinstance(spark, float):
        assert spark == pytest.approx(duck, rel=1e-9, abs=1e-9, nan_ok=True), path
    else:
        assert duck == spark, path


def _report(folder: Path, spark: Any = None, **options: Any) -> dict[str, Any]:
    engine = "spark" if spark is not None else "duckdb"
    settings = EvaluateOptions(maturation="2d", as_of=AS_OF, engine=engine, **options)
    result = evaluate(folder, settings, spark=spark)
    return to_jsonable(result)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "options",
    [
        {"reference": "10d"},
        {"by_tenant": True, "period": "7d", "reference": "7d", "threshold": 0.3},
    ],
    ids=["per-version", "per-tenant-weekly"],
)
def test_spark_report_equals_duckdbs(folder: Path, spark: Any, options: dict[str, Any]) -> None:
    duck = _report(folder, **options)
    groups = {(g["model"], g["version"]) for g in duck["groups"]}
    assert groups == {("fraud", "1"), ("fraud", "2"), ("eta", "1")}
    assert {g["task"] for g in duck["groups"]} == {"classification", "regression"}
    assert any(s["state"] == "drift" for g in duck["groups"] for s in g["drift"])
    assert duck["labels_matched"] > 0 and duck["comparisons"]
    assert_same(duck, _report(folder, spark, **options))


def test_a_tables_folder_evaluates_as_its_telemetry_on_both_engines(
    folder: Path, spark: Any, tmp_path: Path
) -> None:
    """``modeltel tables`` lands the four tables once; both engines read them as the telemetry."""
    tables = tmp_path / "tables"
    command = [sys.executable, "-m", "modeltel.cli", "tables", str(folder), str(tables)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "predictions 15,120" in done.stdout
    reference = _report(folder)
    assert reference["outcomes_loaded"] > 0  # the recorded outcomes; a tables folder counted none
    # The violation counter totals live in the telemetry's metrics file, not in the tables.
    assert_same(reference, _report(tables))
    assert_same(reference, _report(tables, spark))


def test_the_cli_runs_on_spark(folder: Path, tmp_path: Path) -> None:
    """``modeltel evaluate --engine spark`` starts its own local Spark and writes the same JSON."""
    out = {engine: tmp_path / f"{engine}.json" for engine in ("duckdb", "spark")}
    for engine, path in out.items():
        command = [sys.executable, "-m", "modeltel.cli", "evaluate", str(folder), "--as-of", AS_OF]
        command += ["--engine", engine, "--spark-master", "local[2]", "--json", str(path), "--quiet"]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert_same(json.loads(out["duckdb"].read_text()), json.loads(out["spark"].read_text()))


def test_a_telemetry_folder_is_refused_for_a_cluster_master(folder: Path) -> None:
    """Its tables reach Spark in a folder on this machine, which a cluster's executors cannot
    read: the command says how to land them, before loading anything or starting Spark."""
    master = "spark://127.0.0.1:7077"
    command = [sys.executable, "-m", "modeltel.cli", "evaluate", str(folder), "--engine", "spark"]
    done = subprocess.run([*command, "--spark-master", master], capture_output=True, text=True)
    assert done.returncode == 2
    assert f"executors of master {master} cannot read" in done.stderr
    assert f"modeltel tables {folder} s3://" in done.stderr
    assert "loading" not in done.stderr


def test_the_drift_sample_is_the_same_rows_on_both_engines(folder: Path, spark: Any, tmp_path: Path) -> None:
    """Above the sample cap, both engines keep the same predictions (an MD5 of the id, not an
    engine's own hash), so drift agrees to 1e-9 at any volume."""
    subprocess.run(
        [sys.executable, "-m", "modeltel.cli", "tables", str(folder), str(tmp_path / "t")], check=True
    )
    duck = connect()
    read_tables(duck, tmp_path / "t")
    engines = {"duckdb": duck, "spark": SparkConnection(spark, str(tmp_path / "t"))}
    found = {}
    window = "CASE WHEN ts % 2 = 0 THEN 'even' ELSE 'odd' END"
    for name, con in engines.items():
        build_joined(con, as_of=DAY0 + DAYS * DAY, maturation=0, period=DAY)
        found[name] = score_samples(con, ["model", "version"], window, cap=300)
        con.close()
    assert found["duckdb"].keys() == found["spark"].keys() and len(found["duckdb"]) == 6
    for key, values in found["duckdb"].items():
        assert 200 < len(values) < 400  # sampled: each window holds ~2,500 finite scores
        np.testing.assert_array_equal(np.sort(values), np.sort(found["spark"][key]))


def test_exact_latency_quantiles_on_awkward_values(spark: Any) -> None:
    """Spark's quantile query (buckets, then a sort of the few it needs) equals numpy.percentile
    where buckets are easy to get wrong: ties across a bucket edge, zero and negative values,
    groups of one and two, and values twenty orders of magnitude apart."""
    rng = np.random.default_rng(7)
    groups = {
        "ties": [0.005] * 50 + [0.007] * 50,
        "zero and negative": [0.0, -1.0, 0.0, 2e-9, 3.0, -0.5],
        "one": [0.25],
        "two": [1e-10, 1e10],
        "wide": rng.lognormal(-5.0, 3.0, 5_000).tolist(),
    }
    rows = [(name, float(x)) for name, values in groups.items() for x in values]
    spark.createDataFrame(rows, "g string, x double").createOrReplaceTempView("awkward")
    query = SPARK.grouped_quantiles(["g"], "x", "awkward WHERE TRUE", (0.5, 0.95, 0.99))
    found = {name: quantiles for name, quantiles in spark.sql(query).collect()}
    assert found.keys() == groups.keys()
    for name, values in groups.items():
        np.testing.assert_allclose(found[name], np.percentile(values, [50, 95, 99]), rtol=1e-12, err_msg=name)


def test_roc_auc_on_tied_scores_per_subset(folder: Path, spark: Any, tmp_path: Path) -> None:
    """Spark's AUC query (one sort by score for every subset, ties as peers of a RANGE frame,
    split into score buckets) equals sklearn's on scores tied in tens, with 0.0 beside -0.0,
    scores below 0 and at or above 1 and on bucket edges, for the whole and a subset."""
    from sklearn.metrics import roc_auc_score

    subprocess.run(
        [sys.executable, "-m", "modeltel.cli", "tables", str(folder), str(tmp_path / "t")], check=True
    )
    con = SparkConnection(spark, str(tmp_path / "t"))
    rng = np.random.default_rng(11)
    labels = (rng.random(3_000) < 0.4).astype(float)
    scores = np.round(np.clip(rng.normal(0.3 + 0.3 * labels, 0.2), 0.0, 1.0), 1)
    scores[:40] = np.where(np.arange(40) % 2, 0.0, -0.0)
    scores[40:60] = [-2.0, -1e-300, 1.0, 1.0, 1.5, 1e9, *(np.arange(14) / 1024)]
    pairs = enumerate(zip(scores, labels, strict=True))
    rows = [("m", "1", float(x), float(y), str(int(y)), True, i) for i, (x, y) in pairs]
    schema = (
        "model string, version string, score double, label_num double, label_str string, "
        "matured boolean, ts long"
    )
    spark.createDataFrame(rows, schema).createOrReplaceTempView("scored")
    con.execute("CREATE OR REPLACE TABLE joined AS SELECT * FROM scored")
    try:
        found = classification_within(
            con, ["model", "version"], ["m"], 0.5, {"all": "TRUE", "early": "ts < 1200"}
        )
    finally:
        con.close()
    early = np.arange(scores.size) < 1200
    assert found["all"][("m", "1")].roc_auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert found["early"][("m", "1")].roc_auc == pytest.approx(
        roc_auc_score(labels[early], scores[early]), abs=1e-12
    )


def test_the_readmes_cluster_job_runs(folder: Path, spark: Any, tmp_path: Path) -> None:
    """The README's Spark job, as written, on a tables folder in place of its bucket."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (block,) = re.findall(r"```python spark\n(.*?)```", readme, re.S)
    tables = tmp_path / "tables"
    subprocess.run([sys.executable, "-m", "modeltel.cli", "tables", str(folder), str(tables)], check=True)
    script = tmp_path / "job.py"
    script.write_text(block.replace("s3a://ml-telemetry/tables", str(tables)))
    env = {**os.environ, "PYSPARK_SUBMIT_ARGS": "--master local[2] pyspark-shell"}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    on_duckdb = evaluate(tables, EvaluateOptions(maturation="7d", period="7d", as_of=AS_OF))
    assert format_evaluation(on_duckdb).strip() in done.stdout
    assert (tmp_path / "report.html").read_text().lower().startswith("<!doctype html>")
