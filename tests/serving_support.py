"""Helpers for the serving tests: env for a subprocess, a server process that is always stopped, load.

Every process started here is killed in a ``finally``; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modeltel._export.otlp_flat import latest_points
from otlp_receiver import OtlpReceiver, metric_total

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
LOADGEN = EXAMPLES / "fastapi_service" / "loadgen.py"
BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 20.0
POLL_S = 0.05  # between readiness probes: polling, not synchronisation


def otel_env(endpoint: str, protocol: str = "http/protobuf", **extra: str) -> dict[str, str]:
    """The environment of a served process: this one's minus OTEL_/MODELTEL_, plus an OTLP endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_SERVICE_NAME": "serving-test",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BLRP_SCHEDULE_DELAY": "100",
            "MODELTEL_SHUTDOWN_TIMEOUT": "2",
            "MODELTEL_FEATURE_SAMPLE_RATE": "0",
            "PYTHONFAULTHANDLER": "1",
            **extra,
        }
    )
    return env


@dataclass
class Server:
    """A running server process whose output goes to a log file."""

    proc: subprocess.Popen[bytes]
    log: Path
    base_url: str

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, path: str = "/healthz", timeout: float = READY_TIMEOUT_S) -> None:
        """Poll ``path`` until it answers 200; fail with the server's output if it never does."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"server exited early:\n{self.output()}"
                try:
                    if client.get(self.base_url + path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(POLL_S)
        raise AssertionError(f"server not ready within {timeout}s:\n{self.output()}")

    def terminate(self, deadline_s: float) -> float:
        """SIGTERM, then wait at most ``deadline_s``; return the seconds it took to exit."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            dump_stacks(self.proc)
            raise AssertionError(f"no exit within {deadline_s}s of SIGTERM:\n{self.output()}") from None
        return time.monotonic() - t0


def dump_stacks(proc: subprocess.Popen[bytes]) -> None:
    """Ask a hung process for its Python stacks (faulthandler is on via PYTHONFAULTHANDLER)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGABRT)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


@contextmanager
def serve(
    cmd: Sequence[str], env: dict[str, str], log: Path, port: int, cwd: Path = ROOT
) -> Iterator[Server]:
    """Start ``cmd``, wait until it is ready, and kill it (and its group) whatever happens."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            list(cmd), env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(proc, log, f"http://127.0.0.1:{port}")
    try:
        server.wait_ready()
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def run_load(
    url: str, requests: int, concurrency: int, bad_every: int = 20, max_seconds: float = 60, rate: float = 0.0
) -> Any:
    """Run the load generator as its own process (paced at ``rate`` requests/s if > 0)."""
    cmd = [
        sys.executable,
        str(LOADGEN),
        url,
        f"--requests={requests}",
        f"--concurrency={concurrency}",
        f"--bad-every={bad_every}",
        f"--max-seconds={max_seconds}",
        f"--rate={rate}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max_seconds + 30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def served(load: Any) -> int:
    """Requests answered by the predict endpoint (any status the endpoint itself returns)."""
    assert load["errors"] == {}, load
    return sum(load["status"].values())


def predictions_by_instance(receiver: OtlpReceiver) -> Counter[str]:
    """Received ``ml.predictions`` per ``service.instance.id`` (latest cumulative values)."""
    totals: Counter[str] = Counter()
    for point in latest_points(receiver.metrics()):
        if point["name"] == "ml.predictions":
            totals[str(point["resource"].get("service.instance.id", ""))] += int(point["value"])
    return totals


def total_predictions(receiver: OtlpReceiver) -> int:
    """Every ``ml.predictions`` count received, all instances and outcomes."""
    return int(metric_total(receiver.metrics(), "ml.predictions"))
