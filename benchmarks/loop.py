"""How long ``modeltel evaluate`` takes, and how much memory, at 10M and 100M predictions.

Run: ``make bench-loop`` (or ``.venv/bin/python benchmarks/loop.py --sizes 10000000``). For each
size it writes synthetic telemetry once (``modeltel.loop._synthetic``: OTLP-JSON prediction
records of two versions over 30 days, half of them labelled in a Parquet file), then times the
``modeltel evaluate`` command in a fresh process on each engine: DuckDB first run (no conversion
cache) and cached (the Parquet cache of the first run); then ``modeltel tables`` lands the four
tables as Parquet (from the cache) and both engines evaluate that tables folder, Spark on
``local[2]`` (``--engine spark`` on the telemetry folder is the landing plus that run). Wall
time and peak memory, as a Markdown table: the largest sum of the resident memory of the
command's whole process tree (the evaluating process, its conversion workers, Spark's JVM; not a
fork that has not exec'd, whose pages are its parent's), sampled every 50 ms. Each
evaluation's progress (its time per stage) is kept beside the data as
`<size>-<engine>[-first].log`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree_memory(root: int) -> int:
    """Resident bytes of process ``root`` and its descendants, from /proc, leaving out a child
    that has not exec'd since its fork (its command line is its parent's).

    Such a child (Hadoop's local file system has the JVM fork to run ``chmod`` and the like)
    maps all of its parent's pages until it execs, and its resident size counts them again:
    summed over the tree, a Spark run at 100M read 14.2 GB while the JVM held 7.0 GB. The
    proportional set size would split shared pages exactly, but reading it walks every page
    of a process, and every 50 ms that slowed the measured runs by a third."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        children = [child for child, parent in parents.items() if parent == pid]
        stack.extend(child for child in children if _cmdline(child) != _cmdline(pid))
    return total


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()
    except OSError:
        return None  # gone already


def _run(argv: list[str], log: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GB) of one command's process tree (see
    :func:`_tree_memory`); its stderr to ``log``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_memory(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if log is not None:
        log.write_bytes(stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{stderr.decode()}")
    return wall, peak[0] / 1e9


def _generate(folder: Path, size: int) -> float:
    if (folder / "labels.parquet").exists():
        return 0.0
    folder.mkdir(parents=True, exist_ok=True)
    wall, _ = _run(
        [sys.executable, "-m", "modeltel.loop._synthetic", str(folder), "--predictions", str(size)]
    )
    return wall


def _evaluate(folder: Path, *engine: str, labels: Path | None = None, run: str = "") -> tuple[float, float]:
    argv = [sys.executable, "-m", "modeltel.cli", "evaluate", str(folder), *engine]
    if labels is not None:
        argv += ["--labels", str(labels)]
    name = f"{folder.name}-{engine[1]}{run}"  # the report and the stage timings, beside the data
    json, log = folder.with_name(f"{name}.json"), folder.with_name(f"{name}.log")
    return _run([*argv, "--json", str(json)], log)


DUCKDB = ("--engine", "duckdb")


def _measure(
    folder: Path, engines: set[str], spark_memory: str
) -> Iterator[tuple[str, str, tuple[float, float]]]:
    labels = folder / "labels.parquet"
    shutil.rmtree(folder / ".modeltel-cache", ignore_errors=True)
    if "duckdb" in engines:
        yield "DuckDB", "first run", _evaluate(folder, *DUCKDB, labels=labels, run="-first")
        yield "DuckDB", "cached", _evaluate(folder, *DUCKDB, labels=labels)
    if "spark" in engines:
        tables = folder.with_name(f"{folder.name}-tables")
        command = [sys.executable, "-m", "modeltel.cli", "tables", str(folder), str(tables)]
        yield "DuckDB", "modeltel tables (landing)", _run([*command, "--labels", str(labels)])
        yield "DuckDB", "tables folder", _evaluate(tables, *DUCKDB)
        spark = ("--engine", "spark", "--spark-master", "local[2]", "--memory-limit", spark_memory)
        yield f"Spark local[2], {spark_memory} heap", "tables folder", _evaluate(tables, *spark)
        shutil.rmtree(tables)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000000,100000000", help="predictions, comma-separated")
    parser.add_argument("--work", type=Path, default=Path("/tmp/modeltel-bench-loop"), help="where data goes")
    parser.add_argument("--engines", default="duckdb,spark", help="engines to time, comma-separated")
    # Spark's default 4 GB driver heap runs out materialising the join at 100M rows.
    parser.add_argument("--spark-memory", default="6GB", help="Spark's driver heap (--memory-limit)")
    args = parser.parse_args(argv)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"# modeltel evaluate at scale ({machine})")
    print("| predictions | logs.jsonl | engine | run | wall s | predictions/s | peak RSS GB |")
    print("|---:|---:|---|---|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        folder = args.work / f"{size}"
        _generate(folder, size)
        data_gb = sum(p.stat().st_size for p in folder.glob("logs*.jsonl")) / 1e9
        for engine, label, (wall, rss) in _measure(folder, set(args.engines.split(",")), args.spark_memory):
            rate = f"{size / wall:,.0f}"
            print(
                f"| {size:,} | {data_gb:.1f} GB | {engine} | {label} | {wall:.1f} | {rate} | {rss:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
