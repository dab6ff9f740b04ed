"""How long ``modeltel evaluate`` takes, and how much memory, at 10M and 100M predictions.

Run: ``make bench-loop`` (or ``.venv/bin/python benchmarks/loop.py --sizes 10000000``). For each
size it writes synthetic telemetry once (``modeltel.loop._synthetic``: OTLP-JSON prediction
records of two versions over 30 days, half of them labelled in a Parquet file), then times the
``modeltel evaluate`` command in a fresh process twice: first run (no conversion cache) and
cached (the Parquet cache of the first run). Wall time and the peak resident memory of the
evaluating process and its workers (``wait4``), as a Markdown table. Engine: DuckDB (the Spark
engine is not built yet).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one command, measured by ``wait4``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed:\n{stderr}")
    return wall, usage.ru_maxrss / 1024 / 1024


def _generate(folder: Path, size: int) -> float:
    if (folder / "labels.parquet").exists():
        return 0.0
    folder.mkdir(parents=True, exist_ok=True)
    wall, _ = _run(
        [sys.executable, "-m", "modeltel.loop._synthetic", str(folder), "--predictions", str(size)]
    )
    return wall


def _evaluate(folder: Path) -> tuple[float, float]:
    return _run(
        [
            sys.executable,
            "-m",
            "modeltel.cli",
            "evaluate",
            str(folder),
            "--labels",
            str(folder / "labels.parquet"),
            "--quiet",
            "--json",
            str(folder / "evaluation.json"),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000000,100000000", help="predictions, comma-separated")
    parser.add_argument("--work", type=Path, default=Path("/tmp/modeltel-bench-loop"), help="where data goes")
    args = parser.parse_args(argv)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        folder = args.work / f"{size}"
        generated = _generate(folder, size)
        shutil.rmtree(folder / ".modeltel-cache", ignore_errors=True)
        first = _evaluate(folder)
        cached = _evaluate(folder)
        data_gb = sum(p.stat().st_size for p in folder.glob("logs*.jsonl")) / 1e9
        rows.append((size, data_gb, generated, first, cached))
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"# modeltel evaluate at scale ({machine})")
    print("| predictions | logs.jsonl | engine | run | wall s | predictions/s | peak RSS GB |")
    print("|---:|---:|---|---|---:|---:|---:|")
    for size, data_gb, _, first, cached in rows:
        for label, (wall, rss) in (("first run", first), ("cached", cached)):
            rate = f"{size / wall:,.0f}"
            print(f"| {size:,} | {data_gb:.1f} GB | DuckDB | {label} | {wall:.1f} | {rate} | {rss:.1f} |")


if __name__ == "__main__":
    main()
