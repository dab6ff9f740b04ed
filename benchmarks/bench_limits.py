"""Cost per check of the limiter, as µs medians and as ratios to a bare function call.

    python benchmarks/bench_limits.py [--redis]   # --redis also starts a local redis-server

Each figure is the median over 15 batches of the per-call time of one batch.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from modeltel._limits import Limiter, parse_budgets, parse_rate_limits

BATCHES = 15


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    """Median over batches of the time per call, in µs."""
    samples = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def predict(x: float) -> float:
    return x


def limiter(backend: str = "memory", rates: str = "*=1000000/s", budgets: str = "*=1000000/day") -> Limiter:
    return Limiter(
        rates=parse_rate_limits(rates), budgets=parse_budgets(budgets), backend=backend, timeout_s=1.0
    )


def cases(backend: str) -> tuple[dict[str, Callable[[], object]], list[Limiter]]:
    off = limiter(backend, "", "")
    unlisted = limiter(backend, "acme=100/s", "")
    rate_only = limiter(backend, budgets="")
    both = limiter(backend)

    def admit_settle() -> None:
        both.settle(both.admit("acme", 0.0004), 0.0004)

    calls: dict[str, Callable[[], object]] = {
        "admit, no limits configured": lambda: off.admit("acme"),
        "admit, tenant without a limit": lambda: unlisted.admit("globex"),
        "admit, rate": lambda: rate_only.admit("acme"),
        "admit, rate + budget check (cost 0)": lambda: both.admit("acme"),
        "admit+settle, rate + budget": admit_settle,
    }
    return calls, [off, unlisted, rate_only, both]


def measure(backend: str, calls_per_batch: int) -> dict[str, float]:
    calls, limiters = cases(backend)
    try:
        return {name: per_call_us(fn, calls_per_batch) for name, fn in calls.items()}
    finally:
        for lim in limiters:
            lim.close()


@contextmanager
def local_redis() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ready to accept connections" in line:
            break
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait()
        proc.stdout.close()


def ping_us(url: str) -> float:
    """The floor any Redis-backed check pays: one redis-py round trip."""
    import redis

    with redis.Redis.from_url(url) as client:
        return per_call_us(client.ping, 300)


def report(title: str, results: dict[str, float], bare: float) -> None:
    print(f"\n{title}")
    for name, us in results.items():
        print(f"  {name:<38} {us:9.3f} µs  {us / bare:9.1f}x bare call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", action="store_true", help="also measure against a local redis-server")
    opts = parser.parse_args()
    bare = per_call_us(lambda: predict(1.0), 200_000)
    print(f"bare function call: {bare:.3f} µs")
    report("memory backend", measure("memory", 100_000), bare)
    if opts.redis:
        if shutil.which("redis-server") is None:
            print("\nredis-server not on PATH: skipped")
            return
        with local_redis() as url:
            results = measure(url, 300)
            results["(raw redis-py PING round trip)"] = ping_us(url)
            report(f"redis backend ({url})", results, bare)


if __name__ == "__main__":
    main()
