"""modeltel overhead, side by side with the bare call and hand-written OpenTelemetry.

Run: ``make bench`` (= ``.venv/bin/python benchmarks/run.py``); ``--quick`` for fewer calls,
``--smoke`` to prove every case runs (no timing claims), ``--memory`` for RSS over 1,000,000
calls, ``--profile`` for a cProfile of modeltel full at 1% trace sampling.

Honest accounting: a figure is the CPU time of the whole process (``time.process_time()``, all
threads) over N calls plus a forced metric collection and span/log flush, divided by N; so work
moved to a background thread or to collection time is counted. Every exporter encodes what it
gets to OTLP protobuf and serializes it, as the OTLP exporters do, then drops the bytes: the
export's CPU is counted, the network is not. Wall-clock is shown beside it. Cases are interleaved
within each repeat so load on the machine slows them alike; a figure is the median over repeats,
an overhead or ratio the median of the per-repeat values.

This script measures modeltel owning the providers, in one process. ``matrix.py`` measures the
setups users deploy (the application's own providers, 100% and 1% traces) with a real OTLP/HTTP
export, one process per cell; ``serving.py`` the FastAPI example's added HTTP latency.

Peers and backends measured when present: Pydantic Logfire's ``@logfire.instrument`` (extra
``bench``), and modeltel with the Redis limits backend against a redis-server this script starts
on a free port (``redis-server`` on PATH). Missing ones are shown as skipped rows.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import gc
import logging
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

import _cases as c
import _redis

# ---------------------------------------------------------------- modes


@dataclass(frozen=True)
class Mode:
    name: str
    repeats: int
    calls: dict[str, int]  # calls per repeat, by case weight
    memory_calls: int = 1_000_000
    profile_calls: int = 50_000


MODES = {
    "full": Mode("full", 5, {"fast": 400_000, "mid": 40_000, "slow": 12_000, "batch": 20}),
    "quick": Mode("quick", 3, {"fast": 100_000, "mid": 12_000, "slow": 4_000, "batch": 8}),
    "smoke": Mode("smoke", 1, {"fast": 400, "mid": 40, "slow": 40, "batch": 1}, 2_000, 400),
}

# ---------------------------------------------------------------- measuring


@dataclass
class Timing:
    """Seconds per call, one value per repeat; ``per_call`` holds the case's counters per call."""

    calls: int
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    per_call: dict[str, list[float]] = field(default_factory=dict)


def measure(case: c.Case, n: int) -> tuple[float, float, dict[str, float]]:
    """CPU and wall seconds per call over ``n`` calls plus the forced flush, and the growth of the
    case's counters per call (read outside the timed region)."""
    case.activate()
    gc.collect()
    before = case.counters() if case.counters else {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    case.run(n)
    case.flush()
    cpu, wall = (time.process_time() - cpu0) / n, (time.perf_counter() - wall0) / n
    after = case.counters() if case.counters else {}
    return cpu, wall, {key: (after[key] - before[key]) / n for key in after}


def run_cases(cases: Sequence[c.Case], mode: Mode) -> dict[str, Timing]:
    cases = [case for case in cases if case.skipped is None]
    timings = {case.name: Timing(mode.calls[case.weight]) for case in cases}
    for case in cases:  # warm-up: imports, caches, first binding to the runtime
        measure(case, min(timings[case.name].calls, 1_000))
    for _ in range(mode.repeats):
        for case in cases:
            cpu, wall, per_call = measure(case, timings[case.name].calls)
            timing = timings[case.name]
            timing.cpu.append(cpu)
            timing.wall.append(wall)
            for key, value in per_call.items():
                timing.per_call.setdefault(key, []).append(value)
    return timings


class DropWatch(logging.Handler):
    """Catches the OTel SDK's "Queue full, dropping ..." warnings: dropped records were never
    encoded, so a run that had any says so (it should not, with the queues sized in _cases)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "dropping" in message.lower():
            self.seen.add(message)


DROPS = DropWatch()
logging.getLogger("opentelemetry").addHandler(DROPS)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def overheads(t: dict[str, Timing], name: str, bare: str) -> list[float]:
    return [a - b for a, b in zip(t[name].cpu, t[bare].cpu, strict=True)]


def overhead_ratio(t: dict[str, Timing], name: str, versus: str, bare: str) -> float:
    """Median over repeats of (case - bare) / (versus - bare)."""
    mine, theirs = overheads(t, name, bare), overheads(t, versus, bare)
    return median([a / b for a, b in zip(mine, theirs, strict=True) if b > 0] or [float("nan")])


# ---------------------------------------------------------------- reporting


@dataclass(frozen=True)
class Unit:
    label: str
    scale: float  # per-call seconds -> shown value


US = Unit("µs/call", 1e6)
NS_PER_ROW = Unit("ns/row", 1e9 / c.ROWS)


def table(cases: Sequence[c.Case], t: dict[str, Timing], unit: Unit) -> list[str]:
    head = (
        f"| case | calls | CPU {unit.label} | wall {unit.label} | overhead (CPU) | x bare (CPU) "
        "| overhead ÷ hand-OTel's |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for case in cases:
        lines.append(row(case, t, unit))
    return lines


def row(case: c.Case, t: dict[str, Timing], unit: Unit) -> str:
    if case.skipped is not None:
        return f"| {case.name} | skipped: {case.skipped} | — | — | — | — | — |"
    timing = t[case.name]
    cells = [
        case.name,
        f"{timing.calls:,}",
        fmt(median(timing.cpu) * unit.scale),
        fmt(median(timing.wall) * unit.scale),
    ]
    if case.bare is None:
        cells += ["—", "1.00", "—"]
    else:
        cells.append(fmt(median(overheads(t, case.name, case.bare)) * unit.scale))
        cells.append(f"{median([a / b for a, b in zip(timing.cpu, t[case.bare].cpu, strict=True)]):,.2f}")
        cells.append(f"{overhead_ratio(t, case.name, case.versus, case.bare):.3f}" if case.versus else "—")
    return "| " + " | ".join(cells) + " |"


def fmt(value: float) -> str:
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def throughput(cases: Sequence[c.Case], t: dict[str, Timing]) -> list[str]:
    lines = ["", "| case (4 threads, one function) | calls/s (wall) | x bare throughput |", "|---|---:|---:|"]
    bare = 1 / median(t[cases[0].name].wall)
    for case in cases:
        rate = 1 / median(t[case.name].wall)
        lines.append(f"| {case.name} | {rate:,.0f} | {rate / bare:.3f} |")
    return lines


def header(mode: Mode, full: c.Full, notes: Sequence[str]) -> list[str]:
    options = ", ".join(sorted(full.options)) or "none"
    return [
        "# modeltel benchmarks",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, opentelemetry-sdk {metadata.version('opentelemetry-sdk')}, "
        f"modeltel {metadata.version('modeltel')}",
        f"- command: python {' '.join(sys.argv)}",
        f"- mode: {mode.name}, {mode.repeats} repeat(s), cases interleaved; figures are medians; "
        "CPU = process time of all threads incl. a forced metric collection and span/log flush per repeat",
        "- exporters encode to OTLP protobuf and discard the bytes: every case's spans, metrics and logs "
        "are encoded with the OTLP exporters' own encoders and serialized (on the SDK's export "
        "threads, counted in CPU); no network I/O",
        f"- span and log batch queues hold {c.QUEUE_SIZE:,} records, so nothing is dropped unencoded; "
        + (
            f"**WARNING: telemetry was dropped anyway ({'; '.join(sorted(DROPS.seen))}): "
            "figures undercount export**"
            if DROPS.seen
            else "no drops in this run"
        ),
        f"- modeltel full = {c.FEATURES}-feature dict, payload hash, 1% feature sampling, cost accounting; "
        f"options: {options}",
        *[f"- {note}" for note in [*full.notes, *notes]],
    ]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def targets(t: dict[str, Timing]) -> list[str]:
    full, hand, bare = "modeltel full @1%", "hand-written OTel @1%", "bare call"
    ratio = overhead_ratio(t, full, hand, bare)
    per_call = median(overheads(t, full, bare)) * 1e6
    disabled = median(t["modeltel disabled"].cpu) * 1e6
    wrapped = median(t["functools.wraps pass-through"].cpu) * 1e6
    per_row = median(overheads(t, c.BATCH_CORE, "batch bare predict")) * NS_PER_ROW.scale
    full_row = median(overheads(t, "batch modeltel full @1%", "batch bare predict")) * NS_PER_ROW.scale
    checks = [
        (ratio <= 0.1, f"full @1% overhead ÷ hand-written OTel @1% overhead = {ratio:.3f} (goal ≤ 0.1)"),
        (per_call <= 5.0, f"full @1% overhead = {per_call:.2f} µs per call (goal ≤ 5 µs)"),
        (
            disabled <= wrapped + 0.1,
            f"disabled = {disabled:.3f} µs per call vs pass-through {wrapped:.3f} µs "
            "(goal ≤ pass-through + 0.1 µs)",
        ),
        (
            per_row <= 200,
            f"batch overhead with contract, row hashes and score statistics = {per_row:.0f} ns per row "
            f"at {c.ROWS:,} rows (goal ≤ 200 ns/row)",
        ),
    ]
    return [
        "",
        "## Targets (issue 5), this run",
        "",
        *[f"- {'met' if ok else 'NOT met'}: {text}" for ok, text in checks],
        f"- for reference, batch full @1% (adds a record per row, 1% feature sampling, limits): "
        f"{full_row:.0f} ns per row",
    ]


# ---------------------------------------------------------------- the modes of the script


def redis_for_bench(stack: contextlib.ExitStack) -> tuple[_redis.RedisServer | None, str]:
    """A redis-server started for this run (stopped by ``stack``), or None and why not."""
    if _redis.redis_server_binary() is None:
        return None, "redis-server not on PATH"
    try:
        import redis  # noqa: F401
    except ImportError:
        return None, "the redis Python client is not installed (pip install -e '.[bench]')"
    return stack.enter_context(_redis.local_redis()), ""


def redis_notes(server: _redis.RedisServer | None, skip: str) -> list[str]:
    if server is None:
        return [f"Redis limits backend: not measured, {skip}"]
    return [
        f"Redis limits backend: redis-server {server.version} started by this run on 127.0.0.1:{server.port} "
        "(no persistence); its CPU is not in the process CPU column and is shown separately"
    ]


def limits_backends(t: dict[str, Timing]) -> list[str]:
    """Memory vs Redis limits backend for modeltel full @1%: what the Redis round trips add."""
    memory, remote = "modeltel full @1%", c.REDIS_CASE
    if remote not in t:
        return []

    def added(kind: str) -> float:
        mine, theirs = getattr(t[remote], kind), getattr(t[memory], kind)
        return median([a - b for a, b in zip(mine, theirs, strict=True)]) * 1e6

    per_call = t[remote].per_call
    trips = median(per_call.get("redis round trips", [float("nan")]))
    server_cpu = median(per_call.get("redis-server CPU s", [float("nan")])) * 1e6
    return [
        "",
        "## Limits backend (modeltel full @1%, single row; rate limit + budget on every call)",
        "",
        "| limits backend | CPU µs/call | wall µs/call | added CPU vs memory | added wall vs memory "
        "| Redis round trips/call | redis-server CPU µs/call |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| memory (in-process) | {fmt(median(t[memory].cpu) * 1e6)} | {fmt(median(t[memory].wall) * 1e6)} "
        "| — | — | — | — |",
        f"| Redis (local redis-server, loopback) | {fmt(median(t[remote].cpu) * 1e6)} "
        f"| {fmt(median(t[remote].wall) * 1e6)} | {fmt(added('cpu'))} | {fmt(added('wall'))} "
        f"| {trips:.2f} | {fmt(server_cpu)} |",
        "",
        "Wall time with Redis is dominated by the round trips (the caller waits on the socket); "
        "CPU is this process only, the server's own CPU is the last column.",
    ]


def did_no_work(cases: Sequence[c.Case], t: dict[str, Timing]) -> list[str]:
    """Cases whose figures would be hollow: exporters that never encoded anything (the telemetry
    went elsewhere), a Redis case whose calls never reached redis-server (a silent fallback)."""
    problems = []
    for case in cases:
        if case.skipped is not None or case.counters is None:
            continue
        per_call = t[case.name].per_call
        if not sum(per_call.get("OTLP bytes", [0.0])) > 0:
            problems.append(f"{case.name}: its exporters encoded nothing")
        if case.name == c.REDIS_CASE and not sum(per_call.get("redis round trips", [0.0])) > 0:
            problems.append(f"{case.name}: no command reached redis-server")
    return problems


def benchmark(mode: Mode) -> None:
    with contextlib.ExitStack() as stack:
        server, skip = redis_for_bench(stack)
        benchmark_with(mode, server, skip)


def benchmark_with(mode: Mode, server: _redis.RedisServer | None, redis_skip: str) -> None:
    full = c.probe_full()
    pool, matrix = c.payload_pool(), c.feature_matrix()
    single, notes = c.single_row_cases(pool, full, server, redis_skip)
    groups: list[tuple[str, list[c.Case], Unit]] = [
        ("Single row (20-feature dict)", single, US),
        ("Async (asyncio)", c.async_cases(pool, full), US),
        (
            f"Batch ({c.ROWS:,} rows x {c.FEATURES} float features, 2-D ndarray, per row)",
            c.batch_cases(matrix, full),
            NS_PER_ROW,
        ),
        ("Threads (4 threads calling one function; CPU and wall per call)", c.thread_cases(pool, full), US),
    ]
    everything = [case for _, cases, _ in groups for case in cases]
    try:
        timings = run_cases(everything, mode)
    finally:
        for case in everything:
            case.close()
    lines = header(mode, full, [*redis_notes(server, redis_skip), *notes])
    for title, cases, unit in groups:
        lines += ["", f"## {title}", "", *table(cases, timings, unit)]
    lines += throughput(groups[-1][1], timings)
    lines += limits_backends(timings)
    if mode.name == "smoke":
        lines += ["", "smoke run: every case ran; the figures above are not timing claims"]
    else:
        lines += targets(timings)
    print("\n".join(lines))
    problems = did_no_work(everything, timings)
    if problems:
        sys.exit("benchmark cases that did not do their work:\n" + "\n".join(problems))


def rss_kib() -> int:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def full_at_1_percent() -> c.Case:
    """modeltel full at 1% trace sampling, its runtime installed and warmed up."""
    full = c.probe_full()
    run = c.sync_driver(c.instrumented(c.predict, **full.options), c.payload_pool())
    case = c.modeltel_case("modeltel full @1%", "1%", c.FULL_SETTINGS, run)
    print(f"modeltel full @1%, options: {', '.join(sorted(full.options)) or 'none'}")
    measure(case, 10_000)
    return case


def memory(mode: Mode) -> None:
    case, steps = full_at_1_percent(), 4
    before = rss_kib()
    print(f"RSS after 10,000 warm-up calls: {before / 1024:.1f} MiB")
    first = before
    for step in range(1, steps + 1):
        measure(case, mode.memory_calls // steps)
        print(f"RSS after {step * mode.memory_calls // steps:,} calls: {rss_kib() / 1024:.1f} MiB")
        first = rss_kib() if step == 1 else first
    print(f"growth over {mode.memory_calls:,} calls: {(rss_kib() - before) / 1024:+.1f} MiB")
    # The first quarter reaches the high-water marks of the export buffers (bounded queues, the
    # encoders' native buffers); growth after it is what a leak would show.
    later = mode.memory_calls - mode.memory_calls // steps
    print(f"growth over the last {later:,} calls: {(rss_kib() - first) / 1024:+.1f} MiB")
    case.close()


def profile(mode: Mode) -> None:
    case = full_at_1_percent()
    profiler = cProfile.Profile()
    profiler.runcall(measure, case, mode.profile_calls)
    case.close()
    stats = pstats.Stats(profiler)
    print(f"cProfile over {mode.profile_calls:,} calls + flush (the profiler inflates per-call costs)")
    stats.sort_stats("cumulative").print_stats("modeltel", 15)
    stats.sort_stats("tottime").print_stats(15)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    size.add_argument("--smoke", action="store_true", help="tiny N: proves every case runs, no timing claims")
    parser.add_argument("--memory", action="store_true", help="RSS before and after 1,000,000 modeltel calls")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile of modeltel full at 1%% trace sampling"
    )
    args = parser.parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    action: Callable[[Mode], None] = memory if args.memory else profile if args.profile else benchmark
    action(mode)


if __name__ == "__main__":
    main()
