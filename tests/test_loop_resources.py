"""An evaluation that runs out of memory or of room to spill says so in one line and exits 1.

DuckDB spills to ``modeltel-duckdb.tmp`` under ``TMPDIR`` past ``--memory-limit``. These runs
use a limit small enough that 100K predictions must spill, then take that folder away (a file
stands where it would be created), or lower the limit below what DuckDB needs at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeltel.loop._synthetic import generate

SPILLING_LIMIT = "30MB"


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("telemetry")
    generate(folder, 100_000, parquet=True)
    return folder


def _modeltel(tmpdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    command = [sys.executable, "-m", "modeltel.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def _spill_blocked(tmp_path: Path) -> Path:
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "modeltel-duckdb.tmp").write_text("not a folder")
    return blocked


def _one_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"modeltel {command}: ")
    return lines[0]


def test_evaluate_names_the_spill_folder_it_could_not_use(telemetry: Path, tmp_path: Path) -> None:
    """The same run that completes with a usable TMPDIR fails in one line naming the folder,
    TMPDIR and --memory-limit when DuckDB cannot spill there."""
    labels = str(telemetry / "labels.parquet")
    args = ["evaluate", str(telemetry), "--labels", labels, "--memory-limit", SPILLING_LIMIT, "--quiet"]
    usable = tmp_path / "usable"
    usable.mkdir()
    assert _modeltel(usable, *args).returncode == 0

    blocked = _spill_blocked(tmp_path)
    failed = _modeltel(blocked, *args)
    assert failed.returncode == 1
    line = _one_line(failed.stderr, "evaluate")
    assert str(blocked / "modeltel-duckdb.tmp") in line
    assert "TMPDIR" in line and f"--memory-limit {SPILLING_LIMIT}" in line
    assert failed.stdout == ""


def test_tables_names_the_spill_folder_it_could_not_use(telemetry: Path, tmp_path: Path) -> None:
    """``modeltel tables`` fails the same way, and writes no tables."""
    out = tmp_path / "tables"
    labels = str(telemetry / "labels.parquet")
    blocked = _spill_blocked(tmp_path)
    failed = _modeltel(
        blocked, "tables", str(telemetry), str(out), "--labels", labels, "--memory-limit", SPILLING_LIMIT
    )
    assert failed.returncode == 1
    line = _one_line(failed.stderr, "tables")
    assert str(blocked / "modeltel-duckdb.tmp") in line and "TMPDIR" in line
    assert not (out / "predictions").exists() or not any((out / "predictions").iterdir())


def test_evaluate_out_of_memory_names_the_limit(telemetry: Path, tmp_path: Path) -> None:
    """A limit below what DuckDB needs at all is one line naming it, not a traceback."""
    labels = str(telemetry / "labels.parquet")
    failed = _modeltel(
        tmp_path, "evaluate", str(telemetry), "--labels", labels, "--memory-limit", "2MB", "--quiet"
    )
    assert failed.returncode == 1
    line = _one_line(failed.stderr, "evaluate")
    assert "Out of Memory" in line and "raise --memory-limit (now 2MB)" in line
