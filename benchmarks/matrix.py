"""The benchmark matrix: who owns the OpenTelemetry providers x trace sampling ratio, modeltel full vs
hand-written OpenTelemetry, every pipeline exporting OTLP/HTTP to a local sink process; ddtrace as a
peer.

Run: ``make bench`` (after ``run.py``), or ``.venv/bin/python benchmarks/matrix.py``; ``--quick``
for fewer calls and repeats, ``--smoke`` to prove every cell runs (no timing claims).

A cell is one implementation (hand-written OTel, modeltel full, ddtrace) in one setup (who
installed the global providers, which trace ratio). A process installs its global OTel providers
once, so every cell runs in a fresh interpreter (``_cell.py``; ddtrace's in its own virtualenv,
``_ddtrace_cell.py``), and the cells are interleaved within each repeat so that load on the machine
slows them alike. A figure is the cell's process CPU time (all threads) over N calls plus a forced
flush of every pipeline, divided by N; the table shows the median over repeats, and a ratio is the
median of the per-repeat ratios (each from cells of the same repeat). The sink (``sink.py``) runs
in its own process, so receiving costs nothing here; it also counts what arrived, and a cell whose
telemetry did not all arrive fails the run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import sink

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DDTRACE_PYTHON = ROOT / ".venv-ddtrace" / "bin" / "python"
CELL_TIMEOUT_S = 900
# Big enough that a tight loop never overflows a span or log queue: telemetry dropped unexported
# would flatter exactly the cells whose export is most expensive.
QUEUE_SIZE = "1000000"

RATIOS = ("1%", "100%")
SAMPLERS = {
    "1%": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "100%": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},  # the SDK's default
}
OWNERS = {  # _cell.py's owner names, as the table says them
    "modeltel": "modeltel (the app installs none)",
    "app": "the app: tracer + meter + logger",
    "app-tracer": "the app: tracer only",
    "app-meter": "the app: meter only",
}
HAND, MODELTEL, DDTRACE = "hand", "modeltel", "ddtrace"


@dataclass(frozen=True)
class Mode:
    name: str
    repeats: int
    calls: dict[str, int]  # timed calls per cell, by trace ratio
    warmup: int


MODES = {
    "full": Mode("full", 5, {"1%": 20_000, "100%": 8_000}, 1_000),
    "quick": Mode("quick", 3, {"1%": 6_000, "100%": 3_000}, 500),
    "smoke": Mode("smoke", 1, {"1%": 200, "100%": 200}, 20),
}


@dataclass(frozen=True)
class Cell:
    """One implementation in one setup."""

    impl: str
    owner: str  # who installed the providers; hand-written OTel always installs its own
    ratio: str

    @property
    def key(self) -> str:
        return f"{self.impl} / {self.owner} / {self.ratio}"


def cells() -> list[Cell]:
    """Every cell: modeltel per owner and ratio, hand-written OTel per ratio, ddtrace at 100%.

    Hand-written OTel needs a tracer and a meter whoever else is there, so it installs both
    itself: its setup is the same in every owner row, and it is measured once per ratio."""
    found = [Cell(MODELTEL, owner, ratio) for ratio in RATIOS for owner in OWNERS]
    found += [Cell(HAND, "app", ratio) for ratio in RATIOS]
    return [*found, Cell(DDTRACE, DDTRACE, "100%")]


@dataclass
class Runs:
    """Per-repeat results of one cell."""

    cpu: list[float] = field(default_factory=list)  # seconds per call
    wall: list[float] = field(default_factory=list)
    received: list[dict[str, int]] = field(default_factory=list)  # items at the sink, per signal
    expected_spans: int = 0


# ---------------------------------------------------------------- running a cell


def cell_env(cell: Cell, endpoint: str) -> dict[str, str]:
    """This environment without OTEL_/MODELTEL_/DD_ settings (MODELTEL_STRICT kept), plus the
    cell's: exporters to the sink, its sampler, queues that never drop."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "MODELTEL_", "DD_")) or k == "MODELTEL_STRICT"
    }
    if cell.impl == DDTRACE:
        env.pop("PYTHONPATH", None)
        return {**env, **ddtrace_env(endpoint)}
    return {
        **env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "modeltel-bench",
        # Metrics are exported by the flush in the timed region, not by a timer mid-run.
        "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
        "OTEL_BSP_MAX_QUEUE_SIZE": QUEUE_SIZE,
        "OTEL_BLRP_MAX_QUEUE_SIZE": QUEUE_SIZE,
        **SAMPLERS[cell.ratio],
    }


def ddtrace_env(agent_url: str) -> dict[str, str]:
    """ddtrace sending traces to the stand-in agent, and nothing else anywhere."""
    return {
        "DD_TRACE_AGENT_URL": agent_url,
        "DD_SERVICE": "modeltel-bench",
        "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
        "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        "DD_TRACE_STARTUP_LOGS": "false",
        "DD_CRASHTRACKING_ENABLED": "false",
        "DD_TRACE_STATS_COMPUTATION_ENABLED": "false",
    }


def cell_command(cell: Cell, mode: Mode, ddtrace_python: Path) -> list[str]:
    n = str(mode.calls[cell.ratio])
    if cell.impl == DDTRACE:
        return [str(ddtrace_python), str(HERE / "_ddtrace_cell.py"), n, str(mode.warmup)]
    return [sys.executable, str(HERE / "_cell.py"), cell.impl, cell.owner, n, str(mode.warmup)]


def run_cell(
    cell: Cell, mode: Mode, at: sink.Sink, ddtrace_python: Path
) -> tuple[dict[str, Any], dict[str, int]]:
    """One run of ``cell`` in a fresh process: its JSON result, and what the sink received."""
    before = at.stats()
    done = subprocess.run(
        cell_command(cell, mode, ddtrace_python),
        env=cell_env(cell, at.url),
        capture_output=True,
        text=True,
        timeout=CELL_TIMEOUT_S,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cell {cell.key} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result, sink.received(before, at.stats())


def problems_of(cell: Cell, result: dict[str, Any], got: dict[str, int], expected_spans: int) -> list[str]:
    """Why a run's figure would be hollow: a flush that failed, dropped telemetry, spans that
    never arrived, no metrics or records at the sink."""
    found = []
    if not result["flushed"]:
        found.append("a force_flush() returned False")
    found += [f"dropped: {message}" for message in result["drops"]]
    spans = got["datadog"] if cell.impl == DDTRACE else got["traces"]
    if cell.ratio == "100%" and spans < expected_spans:
        found.append(f"{spans} spans reached the sink, {expected_spans} expected")
    if cell.impl != DDTRACE and got["metrics"] == 0:
        found.append("no metric data point reached the sink")
    if cell.impl == MODELTEL and got["logs"] == 0:
        found.append("no prediction record reached the sink")
    return [f"{cell.key}: {problem}" for problem in found]


def run_matrix(todo: Sequence[Cell], mode: Mode, ddtrace_python: Path) -> tuple[dict[Cell, Runs], list[str]]:
    """Every cell once per repeat, interleaved (the order rotates from one repeat to the next)."""
    runs = {cell: Runs() for cell in todo}
    problems: list[str] = []
    with sink.running() as at:
        for repeat in range(mode.repeats):
            shift = repeat % len(todo)
            for cell in [*todo[shift:], *todo[:shift]]:
                result, got = run_cell(cell, mode, at, ddtrace_python)
                expected = result["calls"] + result["warmup"]
                runs[cell].cpu.append(result["cpu_s"])
                runs[cell].wall.append(result["wall_s"])
                runs[cell].received.append(got)
                runs[cell].expected_spans = expected
                problems += problems_of(cell, result, got, expected)
    return runs, problems


# ---------------------------------------------------------------- ddtrace's virtualenv


def ddtrace_version(python: Path) -> tuple[str | None, str]:
    """ddtrace's version in its virtualenv, or None and why it cannot be measured."""
    if not python.exists():
        return None, f"no virtualenv at {python.parent.parent.name}/ (make ddtrace-venv)"
    done = subprocess.run(
        [str(python), "-c", "import ddtrace; print(ddtrace.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        return None, f"ddtrace does not import in {python}: {done.stderr.strip().splitlines()[-1:]}"
    return done.stdout.strip(), ""


# ---------------------------------------------------------------- reporting


def us(seconds: float) -> str:
    value = seconds * 1e6
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"


def ratio_text(mine: Runs, theirs: Runs) -> str:
    """Median of the per-repeat ratios, with their range when there are several."""
    ratios = [a / b for a, b in zip(mine.cpu, theirs.cpu, strict=True)]
    text = f"{statistics.median(ratios):.2f}"
    return text if len(ratios) == 1 else f"{text} ({min(ratios):.2f}-{max(ratios):.2f})"


def peer_cells(mine: Runs, ratio: str, peer: Runs | None, skip: str) -> list[str]:
    """ddtrace's figure and modeltel's ratio to it, beside the 100% rows."""
    if ratio != "100%":
        return ["—", "—"]
    if peer is None:
        return [f"skipped: {skip}", "—"]
    return [us(statistics.median(peer.cpu)), ratio_text(mine, peer)]


def matrix_table(runs: dict[Cell, Runs], ddtrace_skip: str) -> list[str]:
    lines = [
        "| providers installed by | traces | hand-written OTel | modeltel full | modeltel ÷ hand-written "
        "| ddtrace (peer) | modeltel ÷ ddtrace |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    peer = runs.get(Cell(DDTRACE, DDTRACE, "100%"))
    for ratio in RATIOS:
        hand = runs[Cell(HAND, "app", ratio)]
        for owner, label in OWNERS.items():
            mine = runs[Cell(MODELTEL, owner, ratio)]
            cells = [label, ratio, us(statistics.median(hand.cpu)), us(statistics.median(mine.cpu))]
            cells += [ratio_text(mine, hand), *peer_cells(mine, ratio, peer, ddtrace_skip)]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def details_table(runs: dict[Cell, Runs]) -> list[str]:
    """Every cell: CPU and wall per call, the spread over repeats, and what reached the sink."""
    lines = [
        "| cell (implementation / providers / traces) | CPU µs/call | CPU min-max | wall µs/call "
        "| spans at the sink / calls | metric points | log records |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cell, run in runs.items():
        got = run.received[-1]
        spans = got["datadog"] if cell.impl == DDTRACE else got["traces"]
        cells = [
            cell.key,
            us(statistics.median(run.cpu)),
            f"{us(min(run.cpu))}-{us(max(run.cpu))}",
            us(statistics.median(run.wall)),
            f"{spans:,} / {run.expected_spans:,}",
            f"{got['metrics']:,}",
            f"{got['logs']:,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def header(mode: Mode, ddtrace: str | None) -> list[str]:
    import modeltel

    peer = f"ddtrace {ddtrace}" if ddtrace else "ddtrace not measured"
    return [
        "# modeltel benchmark matrix: who owns the providers x trace ratio",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; "
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, opentelemetry-sdk {metadata.version('opentelemetry-sdk')}, "
        f"modeltel {modeltel.__version__}, {peer}",
        f"- command: python {' '.join(sys.argv)}",
        f"- mode: {mode.name}: {mode.repeats} repeat(s) of every cell, each run a fresh process, cells "
        f"interleaved; {mode.calls['1%']:,} calls at 1%, {mode.calls['100%']:,} at 100%, after "
        f"{mode.warmup:,} warm-up calls and a flush",
        "- figure: process CPU µs per call (all threads) over the calls plus a forced flush of every "
        "pipeline (modeltel.force_flush() and each application provider's force_flush()); median "
        "over repeats; a ratio is the median of per-repeat ratios (range in brackets)",
        "- export: OTLP/HTTP (protobuf) over loopback to a sink process that answers 200 (its CPU is not "
        "counted); span and log queues of 1,000,000 so nothing is dropped; every span reached the sink "
        "(checked)",
        "- payload: 19 floats + `country` in {DE, FR}; modeltel full: 20-field contract with the "
        "categorical, payload hash, 1% feature sample, rate limit + budget, cost, per-call records; "
        "hand-written OTel: a span with the ml.* attributes, duration and score histograms, a counter "
        "(it installs its own tracer + meter: the same in every row)",
        "- ddtrace: `@tracer.wrap`, 4 tags + the score as a metric, every trace kept, sent to a "
        "stand-in agent (the same sink process, /v0.5/traces), in its own virtualenv",
    ]


def report(mode: Mode, runs: dict[Cell, Runs], ddtrace: str | None, ddtrace_skip: str) -> list[str]:
    lines = [*header(mode, ddtrace), "", "## CPU µs per call", "", *matrix_table(runs, ddtrace_skip)]
    lines += ["", "## Every cell", "", *details_table(runs)]
    if mode.name == "smoke":
        lines += ["", "smoke run: every cell ran; the figures above are not timing claims"]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    size.add_argument("--smoke", action="store_true", help="tiny N: proves every cell runs, no timing claims")
    parser.add_argument(
        "--ddtrace-python", type=Path, default=DDTRACE_PYTHON, help="the Python of ddtrace's virtualenv"
    )
    args = parser.parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    version, skip = ddtrace_version(args.ddtrace_python)
    todo = [cell for cell in cells() if cell.impl != DDTRACE or version is not None]
    runs, problems = run_matrix(todo, mode, args.ddtrace_python)
    print("\n".join(report(mode, runs, version, skip)), flush=True)
    if problems:
        sys.exit("cells whose figures would be hollow:\n" + "\n".join(problems))


if __name__ == "__main__":
    main()
