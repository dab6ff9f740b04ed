"""A per-stage progress indicator on stderr for long evaluations."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Prints ``[i/n] stage ... 1.2s`` to ``stream`` as each stage finishes, ``... failed`` when
    one raises (when enabled)."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        """Time the block as the next stage."""
        self.done += 1
        if self.enabled:
            print(f"[{self.done}/{self.total}] {stage} ...", end="", file=self.stream, flush=True)
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            if self.enabled:  # end the line: the caller's error message goes on its own
                print(" failed", file=self.stream, flush=True)
            raise
        if self.enabled:
            print(f" {time.perf_counter() - started:.1f}s", file=self.stream, flush=True)
