"""A throwaway ``redis-server`` for the Redis limits-backend case (the same approach as
``tests/redis_server.py``, without pytest): 127.0.0.1, a free port, no persistence, stopped on exit.

Readiness is read from the server's own log ("Ready to accept connections"), not guessed with
sleeps; the log is drained on a thread so a full pipe never blocks the server. ``counters()``
reads the server's own bookkeeping (replies written, its CPU seconds) so the benchmark can
show that every call really reached Redis, and what the server spent that this process's CPU
time does not include.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

READY = "Ready to accept connections"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class RedisServer:
    """One ``redis-server`` child process; ``start()`` returns once it accepts connections."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary, self.port = binary, port
        self.log: list[str] = []
        self.version = "?"
        self._proc: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None
        self._client: Any = None
        self._readings = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line)
            if READY in line:
                break
        else:
            proc.wait()
            proc.stdout.close()
            raise RuntimeError(f"redis-server on port {self.port} did not start:\n{''.join(self.log)}")
        self._proc = proc
        self._drain = threading.Thread(target=self._read_log, args=(proc,), daemon=True)
        self._drain.start()
        import redis

        self._client = redis.Redis(host="127.0.0.1", port=self.port)
        self.version = str(self._client.info("server").get("redis_version", "?"))
        return self

    def _read_log(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line)

    def counters(self) -> dict[str, float]:
        """Round trips the server has answered and the CPU seconds it has used, so far.

        Round trips are the server's write events (one per reply to a client that does not
        pipeline, as the limiter does not); commands run inside Lua scripts do not count. Each
        reading is one INFO, whose reply is written after it is read: the earlier readings' own
        replies are taken off, so a difference of two readings is the benchmark's round trips.
        """
        info = self._client.info()
        trips = info["total_writes_processed"] - self._readings
        self._readings += 1
        return {
            "redis round trips": float(trips),
            "redis-server CPU s": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        }

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        proc.wait(timeout=10)
        if self._drain is not None:
            self._drain.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


@contextmanager
def local_redis() -> Iterator[RedisServer]:
    """A started server, retrying if another process grabbed the chosen port first."""
    binary = redis_server_binary()
    if binary is None:
        raise FileNotFoundError("redis-server not on PATH")
    for attempt in range(3):
        server = RedisServer(binary, free_port())
        try:
            server.start()
        except BaseException as exc:
            server.stop()
            if attempt == 2 or not isinstance(exc, RuntimeError):
                raise
            continue
        try:
            yield server
        finally:
            server.stop()
        return
