"""Forks children while modeltel exports; the fork test runs this in a subprocess."""

from __future__ import annotations

import os
import sys
import threading

from opentelemetry import trace

import modeltel

PARENT_BEFORE, PARENT_AFTER, CHILDREN, PER_CHILD = 10, 10, 5, 3


@modeltel.instrument(model="forky", version="1", tenant="tenant")
def predict(features: dict[str, float], tenant: str) -> float:
    return 0.5


def child() -> None:
    with trace.get_tracer("app").start_as_current_span("app work in child"):
        pass  # the application's own span, through the global provider set before the fork
    for _ in range(PER_CHILD):
        predict({"x": 1.0}, tenant="child")
    ok = modeltel.shutdown(timeout_s=5)
    os._exit(0 if ok else 3)


def main() -> None:
    for _ in range(PARENT_BEFORE):
        predict({"x": 1.0}, tenant="parent")
    pids = []
    for _ in range(CHILDREN):
        flusher = threading.Thread(target=modeltel.force_flush)
        flusher.start()  # export in progress while we fork
        pid = os.fork()
        if pid == 0:
            child()
        pids.append(pid)
        flusher.join()
    codes = [os.waitpid(pid, 0)[1] for pid in pids]
    for _ in range(PARENT_AFTER):
        predict({"x": 1.0}, tenant="parent")
    print(codes, flush=True)
    sys.exit(0 if all(c == 0 for c in codes) else 1)


if __name__ == "__main__":
    main()
