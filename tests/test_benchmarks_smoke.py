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


def test_app_providers_benchmark_runs() -> None:
    """``bench_app_providers.py``: modeltel and hand-written OTel on the application's providers,
    exporting to its local sink, each timed and compared."""
    env = {**os.environ, "MODELTEL_STRICT": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_app_providers.py"), "--calls", "200", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    assert "ratio modeltel/hand" in done.stdout
