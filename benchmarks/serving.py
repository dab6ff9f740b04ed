"""The FastAPI example's added HTTP latency where the application runs its own OpenTelemetry: modeltel
on vs off (``MODELTEL_DISABLED=true``), at 100% and 1% trace sampling.

Run: ``make bench`` (after ``matrix.py``), or ``.venv/bin/python benchmarks/serving.py``;
``--quick`` for fewer requests, ``--smoke`` to prove every setup serves (no timing claims).

Each setup is the example (``examples/fastapi_service/app.py``) under uvicorn, one worker, with
``FRAUD_API_APP_OTEL=true`` (the application installs its tracer, meter and logger providers,
OTLP/HTTP exporters, before modeltel is configured) and ``FRAUD_API_HTTP_SPANS=true`` (FastAPI
request spans): a FastAPI service with OpenTelemetry that then adopts modeltel. Telemetry goes to
the sink process of ``sink.py``. The load generator (``loadgen.py``) runs in its own process,
sequentially (concurrency 1) and with 8 connections; every payload is valid, so modeltel off
(no contract, no fallback) and on answer the same requests. The setups are interleaved within
each repeat; a figure is the median over repeats, "added" the median of per-repeat differences.
Latency is wall-clock, with server, load generator and sink sharing this machine's cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sink
from matrix import SAMPLERS

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "examples" / "fastapi_service"
LOADGEN = APP_DIR / "loadgen.py"
NEEDS = ("fastapi", "uvicorn", "httpx", "opentelemetry.instrumentation.fastapi")
READY_TIMEOUT_S, STOP_TIMEOUT_S, POLL_S = 30.0, 20.0, 0.1
CONCURRENCY = (1, 8)


@dataclass(frozen=True)
class Mode:
    name: str
    repeats: int
    requests: int  # per concurrency level
    warmup: int


MODES = {
    "full": Mode("full", 5, 1_500, 300),
    "quick": Mode("quick", 1, 1_000, 200),
    "smoke": Mode("smoke", 1, 20, 5),
}


@dataclass(frozen=True)
class Setup:
    ratio: str
    modeltel: bool

    @property
    def label(self) -> str:
        return f"traces {self.ratio}, modeltel {'on' if self.modeltel else 'off'}"


SETUPS = [Setup(ratio, on) for ratio in ("100%", "1%") for on in (False, True)]


# ---------------------------------------------------------------- a server and its load


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(setup: Setup, endpoint: str) -> dict[str, str]:
    """This environment without OTEL_/MODELTEL_ settings, plus the setup's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "fraud-api",
            "FRAUD_API_APP_OTEL": "true",
            "FRAUD_API_HTTP_SPANS": "true",
            **SAMPLERS[setup.ratio],
        }
    )
    if not setup.modeltel:
        env["MODELTEL_DISABLED"] = "true"
    return env


def wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    """Poll ``/healthz`` until it answers (bounded); fail if the server exits or never answers."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early ({proc.returncode})")
        with suppress(OSError), urllib.request.urlopen(url + "/healthz", timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(POLL_S)
    raise RuntimeError(f"the server was not ready within {READY_TIMEOUT_S}s")


@contextmanager
def uvicorn(setup: Setup, endpoint: str, log: Path) -> Iterator[str]:
    """The example under uvicorn; stopped by SIGTERM (its lifespan flushes), killed if it hangs."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "app:app", f"--app-dir={APP_DIR}"]
    cmd += ["--host=127.0.0.1", f"--port={port}", "--no-access-log"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=server_env(setup, endpoint), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}/predict"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def load(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    """The example's load generator, valid payloads only; every request must be answered 200."""
    cmd = [sys.executable, str(LOADGEN), url, f"--requests={requests}", f"--concurrency={concurrency}"]
    done = subprocess.run([*cmd, "--bad-every=0"], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != {"200": requests} or result["errors"]:
        raise RuntimeError(f"not every request was answered 200: {result}")
    return result


def measure(setup: Setup, mode: Mode, at: sink.Sink, log: Path) -> dict[int, dict[str, Any]]:
    """One server run: warm-up, then the load at each concurrency; its telemetry must arrive."""
    before = at.stats()
    with uvicorn(setup, at.url, log) as url:
        load(url, mode.warmup, 4)
        results = {c: load(url, mode.requests, c) for c in CONCURRENCY}
    got = sink.received(before, at.stats())
    if setup.ratio == "100%" and got["traces"] < mode.warmup + mode.requests * len(CONCURRENCY):
        raise RuntimeError(f"only {got['traces']} spans reached the sink")
    if setup.modeltel and got["logs"] == 0:
        raise RuntimeError("no prediction record reached the sink")
    return results


# ---------------------------------------------------------------- reporting


Results = dict[Setup, list[dict[int, dict[str, Any]]]]


def ms(results: Results, setup: Setup, c: int, key: str) -> list[float]:
    return [run[c][key] for run in results[setup]]


def cell(results: Results, setup: Setup, c: int, key: str) -> str:
    """Median over repeats, with what modeltel added (on minus off, per repeat) when on."""
    text = f"{statistics.median(ms(results, setup, c, key)):.2f}"
    if not setup.modeltel:
        return text
    off = Setup(setup.ratio, False)
    added = [a - b for a, b in zip(ms(results, setup, c, key), ms(results, off, c, key), strict=True)]
    return f"{text} ({statistics.median(added):+.2f})"


def rate(results: Results, setup: Setup, c: int) -> str:
    return f"{statistics.median([run[c]['sent'] / run[c]['elapsed_s'] for run in results[setup]]):,.0f}"


def table(results: Results) -> list[str]:
    head = "| traces | modeltel |" + "".join(f" c={c} p50 ms | c={c} p99 ms |" for c in CONCURRENCY)
    lines = [head + f" c={CONCURRENCY[-1]} req/s |", "|---|---|" + "---:|" * (2 * len(CONCURRENCY) + 1)]
    for setup in SETUPS:
        cells = [setup.ratio, "on" if setup.modeltel else "off"]
        for c in CONCURRENCY:
            cells += [cell(results, setup, c, "p50_ms"), cell(results, setup, c, "p99_ms")]
        cells.append(rate(results, setup, CONCURRENCY[-1]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def header(mode: Mode) -> list[str]:
    return [
        "# The FastAPI example: added HTTP latency with the app's own OpenTelemetry, modeltel on vs off",
        "",
        f"- command: python {' '.join(sys.argv)}; mode {mode.name}: {mode.repeats} repeat(s), setups "
        f"interleaved, {mode.requests:,} requests per concurrency after {mode.warmup:,} warm-up requests",
        "- uvicorn, one worker, examples/fastapi_service/app.py with FRAUD_API_APP_OTEL=true (the app "
        "installs tracer + meter + logger providers, OTLP/HTTP to a local sink process) and "
        "FRAUD_API_HTTP_SPANS=true (FastAPI request spans); off = MODELTEL_DISABLED=true",
        "- wall-clock latency per request from loadgen.py in its own process; server, load generator "
        "and sink share the machine's cores; (+x) = on minus off at the same trace ratio, median of "
        "per-repeat differences",
    ]


def found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def run_setups(mode: Mode, logs: Path) -> Results:
    """Every setup once per repeat, interleaved, against one sink process."""
    results: Results = {setup: [] for setup in SETUPS}
    with sink.running() as at:
        for repeat in range(mode.repeats):
            for i, setup in enumerate(SETUPS):
                log = logs / f"modeltel-bench-serving-{os.getpid()}-{repeat}-{i}.log"
                try:
                    results[setup].append(measure(setup, mode, at, log))
                except Exception as exc:
                    output = log.read_text(errors="replace")[-4000:] if log.exists() else ""
                    raise RuntimeError(f"{setup.label}: {exc}\nserver output ({log}):\n{output}") from exc
                log.unlink()
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer requests, one repeat")
    size.add_argument("--smoke", action="store_true", help="a few requests: proves every setup serves")
    parser.add_argument("--logs", type=Path, default=Path("/tmp"), help="folder for the servers' output")
    args = parser.parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    absent = [name for name in NEEDS if not found(name)]
    if absent:
        print(f"FastAPI latency: skipped, not installed: {', '.join(absent)} (pip install -e '.[examples]')")
        return
    lines = [*header(mode), "", *table(run_setups(mode, args.logs))]
    if mode.name == "smoke":
        lines += ["", "smoke run: every setup served every request; the figures are not timing claims"]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
