"""Decorated functions travel: pickled to a multiprocessing child, and across fork."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys

import pytest

import modeltel
from modeltel._ids import new_prediction_id


@modeltel.instrument(model="pickled", version="1", tenant="tenant")
def predict(features: dict[str, float], tenant: str = "t") -> float:
    return features["x"] * 2


def test_pickle_round_trip_keeps_the_instrumented_function() -> None:
    """pickle.loads(pickle.dumps(f)) is the same instrumented function."""
    assert pickle.loads(pickle.dumps(predict)) is predict


def test_call_in_a_multiprocessing_child() -> None:
    """A spawned worker can receive and call the decorated function."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        assert pool.map(predict, [{"x": 1.0}, {"x": 2.5}]) == [2.0, 5.0]


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_forked_child_gets_fresh_prediction_ids() -> None:
    """A forked child draws ids from a new random prefix, never the parent's sequence."""
    read, write = os.pipe()
    parent_next = new_prediction_id()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, new_prediction_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child_id) == 32 and child_id[:16] != parent_next[:16]
