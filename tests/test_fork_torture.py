"""Fork torture: fork many times while export, collection and recording are in progress.

The test runs this file as a script in a subprocess exporting to a receiver here; the script
forks ``CHILDREN`` times, each time right after another thread started ``modeltel.force_flush()``
while a third thread records predictions and the metric reader exports every few milliseconds.
Every child records ``PER_CHILD`` predictions, shuts modeltel down and ``os._exit``s; a child that
hangs dumps its stacks (faulthandler) and exits with a distinct code.
"""

from __future__ import annotations

import faulthandler
import itertools
import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from typing import Any

import pytest

import modeltel
from modeltel._export.otlp_flat import latest_points
from otlp_receiver import OtlpReceiver
from serving_support import otel_env

pytestmark = [pytest.mark.wire, pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")]

CHILDREN = int(os.environ.get("FORK_TORTURE_CHILDREN", "50"))
PER_CHILD = 7
PARENT_PER_ROUND = 3
CHILD_DEADLINE_S = 10  # a child still alive then has hung: it dumps its stacks and exits 70
HUNG = 70
FLUSH_FAILED = 3
# The OTel SDK's BatchProcessor.force_flush exports until its queue is empty and ignores its
# timeout (opentelemetry-python #4568): while the hammer records, the queue rarely empties, so the
# flush thread keeps exporting after modeltel.force_flush has given up, and each later flush
# waits for it until its own timeout. Every round then lasts FLUSH_TIMEOUT_S, so keep it short.
FLUSH_TIMEOUT_S = 0.2


@modeltel.instrument(model="forky", version="1", tenant="tenant")
def predict(features: dict[str, float], tenant: str) -> float:
    """A trivial model: the test is about what happens around it."""
    return 0.5


def child() -> None:
    """Record a known number of predictions, flush, and leave without running the parent's atexit."""
    faulthandler.dump_traceback_later(CHILD_DEADLINE_S, exit=False)
    try:
        for _ in range(PER_CHILD):
            predict({"x": 1.0}, tenant="child")
        ok = modeltel.shutdown(timeout_s=5)
        faulthandler.cancel_dump_traceback_later()
        if not ok:
            print(f"child {os.getpid()}: shutdown did not complete; stacks:", file=sys.stderr, flush=True)
            faulthandler.dump_traceback(all_threads=True)
        os._exit(0 if ok else FLUSH_FAILED)
    finally:
        os._exit(1)


class Hammer(threading.Thread):
    """Records predictions as fast as it can, so forks land while locks are held."""

    def __init__(self) -> None:
        super().__init__(name="hammer", daemon=True)
        self.calls = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            predict({"x": 1.0}, tenant="parent")
            self.calls += 1


def fork_during_flush() -> int:
    """Start a flush on another thread and fork while it runs; return the child's pid."""
    flusher = threading.Thread(target=modeltel.force_flush, args=(FLUSH_TIMEOUT_S,), name="flusher")
    flusher.start()
    pid = os.fork()
    if pid == 0:
        child()
    flusher.join()
    return pid


def main() -> None:
    """Fork ``CHILDREN`` times under fire; print the parent's count and the children's exit codes."""
    faulthandler.enable()
    hammer = Hammer()
    hammer.start()
    parent_calls, pids = 0, []
    for _ in range(CHILDREN):
        for _ in range(PARENT_PER_ROUND):
            predict({"x": 1.0}, tenant="parent")
        parent_calls += PARENT_PER_ROUND
        pids.append(fork_during_flush())
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    hammer.stop.set()
    hammer.join()
    print(json.dumps({"parent_calls": parent_calls + hammer.calls, "codes": codes}), flush=True)
    ok = modeltel.shutdown(timeout_s=10)
    sys.exit(0 if ok else FLUSH_FAILED)


def _run(protocol: str, children: int) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        env = otel_env(
            endpoint,
            protocol,
            OTEL_METRIC_EXPORT_INTERVAL="20",
            OTEL_BSP_SCHEDULE_DELAY="5",
            # Some spans and records, not a flood: the hammer would keep every flush busy to its deadline.
            OTEL_TRACES_SAMPLER="traceidratio",
            OTEL_TRACES_SAMPLER_ARG="0.02",
            MODELTEL_PREDICTION_RECORDS="0.02",
            FORK_TORTURE_CHILDREN=str(children),
        )
        proc = subprocess.run(
            [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=CHILD_DEADLINE_S + 60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr, receiver.metrics()


def _predictions(points: list[dict[str, Any]], tenant: str) -> dict[str, int]:
    """Latest ml.predictions per service.instance.id for ``tenant``."""
    totals: dict[str, int] = defaultdict(int)
    for p in latest_points(points):
        if p["name"] == "ml.predictions" and p["attributes"]["ml.tenant"] == tenant:
            totals[p["resource"]["service.instance.id"]] += int(p["value"])
    return dict(totals)


def _never_decreases(points: list[dict[str, Any]]) -> bool:
    """A cumulative series re-exported from a stale copy (a child re-sending the parent's) goes down."""
    series: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for p in points:
        if p["name"] == "ml.predictions":
            key = json.dumps([p["resource"], p["attributes"], p["start_ns"]], sort_keys=True)
            series[key].append((p["time_ns"], int(p["value"])))
    return all(all(a[1] <= b[1] for a, b in itertools.pairwise(s)) for s in map(sorted, series.values()))


@pytest.mark.parametrize(
    ("protocol", "children"),
    [
        ("http/protobuf", 50),
        # More forks over gRPC; exports hold modeltel's fork gate, so no fork lands inside one of
        # our own gRPC calls.
        ("grpc", 80),
    ],
)
def test_forks_during_export_never_hang_and_never_double_count(protocol: str, children: int) -> None:
    """Every child exits in time and the received totals are exactly parent + children."""
    out, stderr, points = _run(protocol, children)
    assert out["codes"] == [0] * children, f"{out['codes']}\n{stderr}"
    parent, by_child = _predictions(points, "parent"), _predictions(points, "child")
    assert list(parent.values()) == [out["parent_calls"]]
    assert len(by_child) == children and set(by_child.values()) == {PER_CHILD}
    assert not set(parent) & set(by_child)
    assert _never_decreases(points)


if __name__ == "__main__":
    main()
