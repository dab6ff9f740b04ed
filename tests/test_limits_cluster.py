"""The Redis backend against a real 3-node Redis Cluster (``redis+cluster://``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis.cluster

from modeltel._limits import Admission, Limiter, parse_budgets, parse_rate_limits
from modeltel._limits._redis import key_prefix
from redis_server import RedisCluster3, process_storm

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster3]:
    with RedisCluster3() as nodes:
        yield nodes


@pytest.fixture
def client(cluster: RedisCluster3) -> Iterator[redis.cluster.RedisCluster]:
    c = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    yield c
    c.close()


def make(url: str, rates: str = "", budgets: str = "", **kw: Any) -> Limiter:
    kw.setdefault("timeout_s", 2.0)
    kw.setdefault("scope", uuid.uuid4().hex)
    return Limiter(rates=parse_rate_limits(rates), budgets=parse_budgets(budgets), backend=url, **kw)


def test_processes_sharing_a_cluster_admit_exactly_the_burst(cluster: RedisCluster3) -> None:
    """4 spawned processes x 30 calls against burst 50 on a cluster admit exactly 50."""
    lim = make(cluster.url, "*=50/day")
    assert sum(process_storm(lim, "acme", processes=4, calls=30)) == 50


def test_processes_sharing_a_cluster_never_overspend_a_budget(cluster: RedisCluster3) -> None:
    """4 spawned processes x 20 calls of cost 1 against a budget of 37 on a cluster admit exactly 37."""
    lim = make(cluster.url, budgets="*=37/day")
    assert sum(process_storm(lim, "acme", processes=4, calls=20, cost=1.0)) == 37


def test_async_cluster_storm_is_exact(cluster: RedisCluster3) -> None:
    """200 concurrent admit_async calls through redis.asyncio's RedisCluster admit exactly the burst."""
    lim = make(cluster.url, "*=25/day")

    async def main() -> list[Admission]:
        decisions = await asyncio.gather(*(lim.admit_async("acme") for _ in range(200)))
        await lim.aclose()
        return decisions

    assert sum(a.allowed for a in asyncio.run(main())) == 25
    assert lim.stats.degraded == 0


def test_tenants_spread_over_nodes_but_each_stays_in_one_slot(
    cluster: RedisCluster3, client: redis.cluster.RedisCluster
) -> None:
    """Every key of a tenant hashes to one slot; different tenants land on different nodes."""
    lim = make(cluster.url, "*=5/s", "*=5/day")
    tenants = [f"tenant-{i}" for i in range(30)]
    for tenant in tenants:
        assert lim.admit(tenant, 1.0).allowed
    nodes = set()
    for tenant in tenants:
        prefix = key_prefix(lim._config["scope"], tenant)
        slots = {client.keyslot(prefix + suffix) for suffix in (":rate", ":budget", ":leases")}
        assert len(slots) == 1
        nodes.add(client.get_node_from_key(prefix + ":rate").name)
    assert len(nodes) == 3
    lim.close()


def test_settle_and_release_through_the_cluster(
    cluster: RedisCluster3, client: redis.cluster.RedisCluster
) -> None:
    """Settling and releasing on a cluster leave spend == settled costs and nothing reserved."""
    lim = make(cluster.url, budgets="acme=10/day")
    lim.settle(lim.admit("acme", 2.0), 1.5)
    lim.release(lim.admit("acme", 3.0))
    prefix = key_prefix(lim._config["scope"], "acme")
    assert client.hmget(prefix + ":budget", "spent", "reserved") == [b"1500000", b"0"]
    assert client.zcard(prefix + ":leases") == 0
    assert lim.stats.degraded == 0
    lim.close()
