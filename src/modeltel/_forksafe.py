"""One fork hook for every stateful helper: locks, threads and caches are rebuilt in the child."""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def _after_fork(self) -> None: ...


_objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork()`` in every child forked from now on, while ``obj`` lives."""
    _objects.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_objects):
        obj._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
