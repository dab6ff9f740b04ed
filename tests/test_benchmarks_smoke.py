"""The benchmarks never rot: ``benchmarks/run.py --smoke`` runs every case (no timing claims).

The peer and backend cases run when what they need is here (logfire installed, redis-server on
PATH) and are shown as skipped rows otherwise, never left out. As with the Redis tests, a missing
redis-server fails the run under ``CI=true``, where it is installed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

CASES = (
    "bare call",
    "functools.wraps pass-through",
    "modeltel disabled",
    "hand-written OTel @100%",
    "hand-written OTel @1%",
    "modeltel metrics only",
    "modeltel full @100%",
    "modeltel full @1%",
    "async bare call",
    "async modeltel full @1%",
    "batch bare predict",
    "batch modeltel contract + row hashes + score stats",
    "batch modeltel full @1%",
    "4 threads bare call",
    "4 threads hand-written OTel @1%",
    "4 threads modeltel full @1%",
)
REDIS_CASE = "modeltel full @1%, Redis limits backend"
LOGFIRE_CASES = (
    "Logfire @logfire.instrument @100%",
    "Logfire @logfire.instrument(extract_args=False) @100%",
)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_every_benchmark_case_runs() -> None:
    env = {**os.environ, "MODELTEL_STRICT": "1"}  # an internal error fails the run loudly
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    # run.py also exits non-zero when a case's exporters encoded nothing or the Redis case never
    # reached redis-server.
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    rows = {
        cells[1].strip(): cells[2].strip()
        for cells in (line.split("|") for line in done.stdout.splitlines() if line.startswith("| "))
    }
    assert "exporters encode to OTLP protobuf and discard the bytes" in done.stdout

    has_redis = shutil.which("redis-server") is not None and installed("redis")
    if os.environ.get("CI", "").lower() == "true":
        assert has_redis, "redis-server not on PATH but CI=true: apt-get install -y redis-server"
    expected = {name: True for name in CASES}
    expected[REDIS_CASE] = has_redis
    expected.update(dict.fromkeys(LOGFIRE_CASES, installed("logfire")))

    missing = [name for name in expected if name not in rows]
    assert not missing, f"cases missing from the table: {missing}\n{done.stdout}"
    for name, measured in expected.items():
        shown = rows[name]
        if measured:
            assert not shown.startswith("skipped"), f"{name}: {shown}\n{done.stdout}"
        else:
            assert shown.startswith("skipped: "), f"{name} should show as skipped: {shown}"
    if has_redis:
        assert "## Limits backend" in done.stdout


MATRIX_OWNERS = ("modeltel", "app", "app-tracer", "app-meter")
MATRIX_LABELS = (
    "modeltel (the app installs none)",
    "the app: tracer + meter + logger",
    "the app: tracer only",
    "the app: meter only",
)
DDTRACE_PYTHON = BENCHMARKS.parent / ".venv-ddtrace" / "bin" / "python"


def table_rows(stdout: str, heading: str) -> list[list[str]]:
    """The body rows of the markdown table that follows ``heading``, as lists of cells."""
    section = stdout.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def is_number(text: str) -> bool:
    return text.split(" ", 1)[0].replace(",", "").replace(".", "", 1).isdigit()


def test_every_matrix_cell_runs() -> None:
    """``matrix.py --smoke`` runs every cell in its own process against the sink process: modeltel
    full for each owner of the providers at 100% and 1%, hand-written OTel at both, and ddtrace when
    its virtualenv is here (a skipped cell otherwise, never a failure). matrix.py exits non-zero
    when a flush failed, telemetry was dropped, or a cell's spans, metrics or records did not all
    reach the sink."""
    env = {**os.environ, "MODELTEL_STRICT": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "matrix.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]

    matrix = table_rows(done.stdout, "## CPU µs per call")
    assert [(row[0], row[1]) for row in matrix] == [
        (label, ratio) for ratio in ("1%", "100%") for label in MATRIX_LABELS
    ], done.stdout
    for row in matrix:
        assert all(is_number(cell) for cell in row[2:5]), row
    peer = [row[5:] for row in matrix if row[1] == "100%"]
    has_ddtrace = DDTRACE_PYTHON.exists()
    for figure, ratio in peer:
        assert (is_number(figure) and is_number(ratio)) if has_ddtrace else figure.startswith("skipped: ")

    cells = {row[0]: row for row in table_rows(done.stdout, "## Every cell")}
    expected = [f"modeltel / {owner} / {ratio}" for ratio in ("1%", "100%") for owner in MATRIX_OWNERS]
    expected += ["hand / app / 1%", "hand / app / 100%"]
    expected += ["ddtrace / ddtrace / 100%"] if has_ddtrace else []
    assert sorted(cells) == sorted(expected), done.stdout
    for key, row in cells.items():
        if key.endswith("100%"):  # every span of the warm-up and the timed calls arrived
            received, calls = (int(n.replace(",", "")) for n in row[4].split(" / "))
            assert received >= calls > 0, row


def test_every_fastapi_latency_setup_serves() -> None:
    """``serving.py --smoke`` serves the FastAPI example with the app's own OpenTelemetry, modeltel
    off and on at 100% and 1% traces; it exits non-zero unless every request was answered 200 and
    the spans and records reached the sink."""
    for module in ("fastapi", "uvicorn", "httpx", "opentelemetry.instrumentation.fastapi"):
        pytest.importorskip(module)
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "serving.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MODELTEL_STRICT": "1"},
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    rows = table_rows(done.stdout, "# The FastAPI example")
    assert [(row[0], row[1]) for row in rows] == [
        ("100%", "off"),
        ("100%", "on"),
        ("1%", "off"),
        ("1%", "on"),
    ], done.stdout
    assert all(is_number(cell) for row in rows for cell in row[2:]), done.stdout
