"""The Flask example under ``gunicorn --preload -w 4``: pre-fork workers, exact counts, bounded shutdown."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path

import gunicorn.config
import pytest

from otlp_receiver import OtlpReceiver, closed_port
from serving_support import EXAMPLES, Server, otel_env, predictions_by_instance, run_load, serve, served

pytestmark = pytest.mark.wire

APP_DIR = EXAMPLES / "flask_service"
WORKERS = 4
# gunicorn SIGKILLs a worker still alive after --graceful-timeout; the deadline is well below it,
# so a worker hung in its exit flush fails the test instead of being killed quietly.
GRACEFUL_TIMEOUT_S = 30
EXIT_DEADLINE_S = 15.0


def _gunicorn(port: int) -> list[str]:
    cmd = [
        sys.executable, "-m", "gunicorn", "--preload", f"--workers={WORKERS}", f"--bind=127.0.0.1:{port}",
        f"--chdir={APP_DIR}", f"--graceful-timeout={GRACEFUL_TIMEOUT_S}", "app:app",
    ]  # fmt: skip
    if any(s.name == "control_socket_disable" for s in gunicorn.config.KNOWN_SETTINGS):
        cmd.insert(3, "--no-control-socket")  # gunicorn >= 24 also opens a socket under ~/.gunicorn
    return cmd


def _stop(server: Server) -> None:
    server.terminate(EXIT_DEADLINE_S)
    log = server.output()
    assert server.proc.returncode == 0, log
    assert "SIGKILL" not in log and "WORKER TIMEOUT" not in log, log


def _start(tmp_path: Path, env: dict[str, str]) -> AbstractContextManager[Server]:
    port = closed_port()
    return serve(_gunicorn(port), env, tmp_path / "gunicorn.log", port)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_per_worker_counts_sum_to_requests_served(tmp_path: Path, protocol: str) -> None:
    """Each worker exports its own counts once: their sum is exactly the requests served."""
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        with _start(tmp_path, otel_env(endpoint, protocol)) as server:
            load = run_load(server.base_url + "/predict", requests=2000, concurrency=8, bad_every=20)
            _stop(server)
        per_worker = predictions_by_instance(receiver)
    print(f"\nper-worker ml.predictions: {sorted(per_worker.values())}; load {load}")
    assert load["status"] == {"200": 1900, "422": 100}
    assert sum(per_worker.values()) == served(load)
    assert 2 <= len(+per_worker) <= WORKERS


def test_workers_exit_promptly_with_the_collector_down(tmp_path: Path) -> None:
    """Nothing listens at the OTLP endpoint: every request is served and SIGTERM ends every worker in time."""
    env = otel_env(f"http://127.0.0.1:{closed_port()}", OTEL_EXPORTER_OTLP_TIMEOUT="5")
    with _start(tmp_path, env) as server:
        load = run_load(server.base_url + "/predict", requests=1000, concurrency=8, bad_every=0)
        _stop(server)
    assert load["status"] == {"200": 1000} and served(load) == 1000
    assert server.output().count("Worker exiting") == WORKERS  # each one left through its own exit path
