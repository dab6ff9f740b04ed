"""SIGTERM to a process running predictions: bounded exit whatever the collector does, nothing lost.

Python's default SIGTERM action kills the process without running ``atexit`` (so without
modeltel's exit flush), and modeltel installs no handler of its own. This file is also the
script under test (run as a subprocess): a plain service loop that, like uvicorn and gunicorn,
turns SIGTERM into a clean exit with ``signal.signal(SIGTERM, lambda *_: sys.exit(0))``.
"""

from __future__ import annotations

import atexit
import json
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

import modeltel
from otlp_receiver import HungServer, OtlpReceiver, closed_port
from serving_support import otel_env, total_predictions

pytestmark = pytest.mark.wire

READY_AFTER = 200
EXIT_DEADLINE_S = 10.0  # MODELTEL_SHUTDOWN_TIMEOUT=2: the flush gives up long before this


@modeltel.instrument(model="sig", version="1", tenant="tenant")
def predict(features: dict[str, float], tenant: str) -> float:
    """A trivial model: the test is about what happens at exit."""
    return 0.5


class Counts:
    """Calls started and finished; the one a signal interrupts is started but maybe not recorded."""

    started = 0
    done = 0

    @classmethod
    def report(cls) -> None:
        print(json.dumps({"started": cls.started, "done": cls.done}), flush=True)


def call() -> None:
    """One counted prediction."""
    Counts.started += 1
    predict({"x": 1.0}, tenant="acme")
    Counts.done += 1


def main(mode: str) -> None:
    """``idle``: READY_AFTER calls, then wait for the signal; ``busy``: keep predicting until it comes."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for _ in range(READY_AFTER):
        call()
    atexit.register(Counts.report)  # registered after modeltel's hook, so it runs before the flush
    print("ready", flush=True)
    if mode == "idle":
        while True:
            signal.pause()
    while True:
        call()


def _wait_for_line(proc: subprocess.Popen[str], expected: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if ready:
            line = proc.stdout.readline()
            assert line, f"exited before {expected!r}: {proc.wait()}"
            if line.strip() == expected:
                return
    raise AssertionError(f"no {expected!r} line within {timeout}s")


def _sigterm(env: dict[str, str], mode: str) -> tuple[float, dict[str, int], str]:
    """Start the script, SIGTERM it once ready; return seconds to exit, its counts and stderr."""
    proc = subprocess.Popen(
        [sys.executable, __file__, mode], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_line(proc, "ready")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=EXIT_DEADLINE_S)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return elapsed, json.loads(out.strip().splitlines()[-1]), err


@contextmanager
def _collector(state: str, protocol: str) -> Iterator[tuple[str, OtlpReceiver | None]]:
    with ExitStack() as stack:
        if state == "healthy":
            receiver = stack.enter_context(OtlpReceiver())
            grpc = protocol == "grpc"
            yield (receiver.grpc_endpoint if grpc else receiver.http_endpoint), receiver
        elif state == "hung":
            yield stack.enter_context(HungServer()).endpoint, None
        else:
            yield f"http://127.0.0.1:{closed_port()}", None


PROTOCOLS = ["http/protobuf", "grpc"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_idle_service_loses_nothing_on_sigterm(protocol: str) -> None:
    """Every prediction made before SIGTERM reaches a healthy collector."""
    with _collector("healthy", protocol) as (endpoint, receiver):
        elapsed, counts, _ = _sigterm(otel_env(endpoint, protocol), "idle")
        assert receiver is not None
        assert total_predictions(receiver) == counts["done"] == READY_AFTER
    assert elapsed < EXIT_DEADLINE_S


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_busy_service_loses_nothing_on_sigterm(protocol: str) -> None:
    """SIGTERM mid-traffic: every finished prediction arrives (the interrupted one may or may not)."""
    with _collector("healthy", protocol) as (endpoint, receiver):
        _, counts, _ = _sigterm(otel_env(endpoint, protocol), "busy")
        assert receiver is not None
        assert counts["done"] <= total_predictions(receiver) <= counts["started"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("state", ["dead", "hung"])
def test_sigterm_exits_within_deadline_when_collector_fails(state: str, protocol: str) -> None:
    """Collector port closed or never answering: the process still exits well within the deadline."""
    with _collector(state, protocol) as (endpoint, _):
        elapsed, counts, err = _sigterm(otel_env(endpoint, protocol), "busy")
    print(f"\n{state} collector over {protocol}: exited {elapsed:.2f}s after SIGTERM")
    assert counts["done"] >= READY_AFTER
    assert elapsed < EXIT_DEADLINE_S, err


if __name__ == "__main__":
    main(sys.argv[1])
