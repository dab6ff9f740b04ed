"""The benchmarks never rot: ``benchmarks/run.py --smoke`` runs every case (no timing claims)."""

from __future__ import annotations

import os
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
    "batch modeltel full @1%",
    "4 threads bare call",
    "4 threads hand-written OTel @1%",
    "4 threads modeltel full @1%",
)


def test_every_benchmark_case_runs() -> None:
    env = {**os.environ, "MODELTEL_STRICT": "1"}  # an internal error fails the run loudly
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = {line.split("|")[1].strip() for line in done.stdout.splitlines() if line.startswith("| ")}
    missing = [name for name in CASES if name not in rows]
    assert not missing, f"cases missing from the table: {missing}\n{done.stdout}"
