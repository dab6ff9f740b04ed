"""A bounded HTTP load generator for the example services (FastAPI or Flask), run as its own process.

    python loadgen.py http://127.0.0.1:8000/predict --requests 2000 --concurrency 8

Sends exactly ``--requests`` POSTs (fewer only if ``--max-seconds`` runs out) from ``--concurrency``
workers, cycling tenants in ``X-Tenant``; every ``--bad-every``-th payload breaks the contract.
``--rate`` paces the requests (request i is sent at start + i / rate, or as soon as a worker is
free after that), to load a service below saturation; without it workers send back to back.
Prints one JSON line: responses by status, transport errors, and latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any

import httpx

TENANTS = ("acme", "globex", "initech")
COUNTRIES = ("DE", "FR", "US")


def payload(i: int, bad_every: int) -> dict[str, Any]:
    """The i-th transaction; a bad one has a country the contract does not allow."""
    bad = bad_every > 0 and i % bad_every == 0
    return {
        "amount": float(i % 997),
        "country": "XX" if bad else COUNTRIES[i % 3],
        "account_age_days": i % 365,
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def worker(
    client: httpx.AsyncClient,
    url: str,
    jobs: itertools.count[int],
    args: argparse.Namespace,
    out: dict[str, Any],
) -> None:
    """Send requests until the count or the time runs out."""
    while time.monotonic() < out["deadline"]:
        i = next(jobs)
        if i >= args.requests:
            return
        if args.rate > 0:
            await asyncio.sleep(max(0.0, out["start"] + i / args.rate - time.monotonic()))
        headers = {"X-Tenant": TENANTS[i % len(TENANTS)], **args.header_map}
        t0 = time.perf_counter()
        try:
            response = await client.post(url, json=payload(i, args.bad_every), headers=headers)
        except httpx.HTTPError as exc:
            out["errors"][type(exc).__name__] += 1
            continue
        out["latencies_ms"].append((time.perf_counter() - t0) * 1000)
        out["status"][str(response.status_code)] += 1


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the load and summarise it."""
    out: dict[str, Any] = {
        "deadline": time.monotonic() + args.max_seconds,
        "start": time.monotonic(),
        "latencies_ms": [],
        "status": Counter(),
        "errors": Counter(),
    }
    jobs = itertools.count()
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=args.timeout, limits=limits) as client:
        await asyncio.gather(*(worker(client, args.url, jobs, args, out) for _ in range(args.concurrency)))
    latencies = sorted(out["latencies_ms"])
    return {
        "sent": len(latencies) + sum(out["errors"].values()),
        "status": dict(out["status"]),
        "errors": dict(out["errors"]),
        "elapsed_s": time.perf_counter() - t0,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second; 0: unpaced")
    parser.add_argument("--bad-every", type=int, default=20, help="0: every payload is valid")
    parser.add_argument("--header", action="append", default=[], help="NAME=VALUE, repeatable")
    args = parser.parse_args(argv)
    args.header_map = dict(h.split("=", 1) for h in args.header)
    return args


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(parse_args()))), flush=True)
