"""Promise 1: nothing inside modeltel ever breaks a prediction.

Every SDK-side step runs under :data:`handle_internal_errors`, which swallows ``Exception``,
counts it, and logs each distinct failure site once. The test suite sets ``MODELTEL_STRICT`` so
our own bugs re-raise and fail loudly there.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

logger = logging.getLogger("modeltel")

P = ParamSpec("P")
R = TypeVar("R")


class _ErrorCounts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_site: dict[str, int] = {}

    def add(self, site: str) -> int:
        with self.lock:
            n = self.by_site.get(site, 0) + 1
            self.by_site[site] = n
            return n

    def total(self) -> int:
        return sum(self.by_site.values())

    def reset_after_fork(self) -> None:
        self.lock = threading.Lock()
        self.by_site = {}


error_counts = _ErrorCounts()
os.register_at_fork(after_in_child=error_counts.reset_after_fork)


def strict() -> bool:
    """Whether internal errors re-raise (only in modeltel's own test suite)."""
    return os.environ.get("MODELTEL_STRICT", "") == "1"


def report_internal_error(site: str, exc: BaseException) -> None:
    """Count an internal failure and log it the first time this site fails."""
    if error_counts.add(site) == 1:
        logger.error("modeltel: internal error in %s (logged once; predictions continue)", site, exc_info=exc)


class handle_internal_errors:
    """Context manager and decorator that swallows, counts and logs SDK-side exceptions."""

    __slots__ = ("site",)

    def __init__(self, site: str) -> None:
        self.site = site

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        report_internal_error(self.site, exc)
        return not strict()

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R | None]:
        site = self.site

        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                report_internal_error(site, exc)
                if strict():
                    raise
                return None

        guarded.__name__ = getattr(fn, "__name__", "guarded")
        guarded.__doc__ = fn.__doc__
        return guarded
