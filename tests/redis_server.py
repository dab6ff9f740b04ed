"""Real ``redis-server`` processes for tests: a standalone server, or a 3-node cluster.

Servers bind 127.0.0.1 on ephemeral ports, persist nothing, and are stopped on exit. Readiness
is read from the server's own log ("Ready to accept connections"), not guessed with sleeps.
Without ``redis-server`` on PATH the tests are skipped, unless ``CI=true``: then they fail.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
_READY = "Ready to accept connections"
_BUS_OFFSET = 10000  # Redis Cluster's bus listens on port + 10000


def require_redis() -> None:
    """Skip the calling test without redis-server and redis-cli; fail instead under CI=true."""
    if REDIS_SERVER and REDIS_CLI:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("redis-server/redis-cli not on PATH but CI=true: apt-get install -y redis-server")
    pytest.skip("redis-server/redis-cli not on PATH (apt-get install -y redis-server)")


def free_port(with_bus: bool = False) -> int:
    """A port free on 127.0.0.1 right now (and its cluster-bus port, if asked)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if not with_bus:
            return port
        if port + _BUS_OFFSET < 65536 and _bindable(port + _BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair found")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RedisServer:
    """One ``redis-server`` child process; ``start()`` returns once it accepts connections."""

    def __init__(self, port: int | None = None, extra_args: tuple[str, ...] = (), cwd: str | None = None):
        self.port = port if port is not None else free_port()
        self._args = extra_args
        self._cwd = cwd
        self._proc: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None
        self._logged = threading.Condition()
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        argv = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        proc = subprocess.Popen(
            [*argv, *self._args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self._cwd
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line)
            if _READY in line:
                break
        else:
            proc.wait()
            proc.stdout.close()
            raise RuntimeError(f"redis-server on port {self.port} did not start:\n{''.join(self.log)}")
        self._proc = proc
        # Keep reading its log so a full pipe never blocks the server.
        self._drain = threading.Thread(target=self._read_log, args=(proc,), daemon=True)
        self._drain.start()
        return self

    def _read_log(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._logged:
                self.log.append(line)
                self._logged.notify_all()

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        """Block until the server logs a line containing ``text``."""
        with self._logged:
            if not self._logged.wait_for(lambda: any(text in line for line in self.log), timeout):
                raise RuntimeError(f"redis-server {self.port} never logged {text!r}:\n{''.join(self.log)}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        proc.wait(timeout=10)
        if self._drain is not None:
            self._drain.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP) and return once it has stopped: connections are still
        accepted, nothing is answered."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)
        _, status = os.waitpid(self._proc.pid, os.WUNTRACED)  # reports the stop; does not reap
        assert os.WIFSTOPPED(status)

    def resume(self) -> None:
        """Thaw a paused server (SIGCONT) and return once it runs: it answers what queued up."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)
        _, status = os.waitpid(self._proc.pid, os.WCONTINUED)
        assert os.WIFCONTINUED(status)

    def client(self) -> redis.Redis:
        """A plain client for test assertions (close it)."""
        return redis.Redis(host="127.0.0.1", port=self.port)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A started standalone server, retrying if another process grabbed the chosen port."""
    require_redis()
    for attempt in range(3):
        server = RedisServer()
        try:
            server.start()
        except RuntimeError:
            if attempt == 2:
                raise
            continue
        try:
            yield server
        finally:
            server.stop()
        return


class RedisCluster3:
    """Three masters, slots spread by ``redis-cli --cluster create``, no replicas."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def __enter__(self) -> RedisCluster3:
        require_redis()
        self._dir = workdir = tempfile.TemporaryDirectory(prefix="modeltel-cluster-")
        try:
            for _ in range(3):
                port = free_port(with_bus=True)
                conf = str(Path(workdir.name) / f"nodes-{port}.conf")
                args = (
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf,
                    "--cluster-node-timeout",
                    "5000",
                )
                self.nodes.append(RedisServer(port, args, cwd=workdir.name).start())
            self._create()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _create(self) -> None:
        assert REDIS_CLI is not None
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        argv = [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60)
        for node in self.nodes:
            # Each node logs the moment its CLUSTER INFO turns to cluster_state:ok.
            node.wait_for_log("Cluster state changed: ok")
            with node.client() as client:
                assert client.cluster("info")["cluster_state"] == "ok"

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for node in self.nodes:
            node.stop()
        if self._dir is not None:
            self._dir.cleanup()


# -- load generators shared by the Redis and Redis Cluster tests ------------------------------


def _admit_in_process(limiter: Any, tenant: str, calls: int, cost: float, barrier: Any, out: Any) -> None:
    """Child-process body: wait for the others, admit ``calls`` times, report how many were
    admitted and the limiter's counters.

    ``limiter`` may be pickled bytes: then every process imports and configures modeltel at the
    same moment, as replicas starting together do, and they call once all are configured."""
    barrier.wait()
    if isinstance(limiter, bytes):
        limiter = pickle.loads(limiter)
        barrier.wait()
    admitted = sum(limiter.admit(tenant, cost).allowed for _ in range(calls))
    limiter.close()
    out.put((admitted, limiter.stats.snapshot()))


def process_decisions(
    limiter: Any, tenant: str, processes: int, calls: int, cost: float = 0.0
) -> list[tuple[int, dict[str, int]]]:
    """Spawn ``processes`` fresh interpreters, each with a pickled copy of ``limiter``, released
    together on a barrier; return how many calls each admitted, with its limiter's counters.
    Pass ``pickle.dumps(limiter)`` to have each process import modeltel only once released."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    workers = [
        ctx.Process(target=_admit_in_process, args=(limiter, tenant, calls, cost, barrier, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        results: list[tuple[int, dict[str, int]]] = [out.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=60)
        out.close()
        out.join_thread()
    assert [worker.exitcode for worker in workers] == [0] * processes
    return results


def process_storm(limiter: Any, tenant: str, processes: int, calls: int, cost: float = 0.0) -> list[int]:
    """``process_decisions``, counting only how many calls each process had admitted."""
    return [admitted for admitted, _ in process_decisions(limiter, tenant, processes, calls, cost)]
