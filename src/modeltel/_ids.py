"""Prediction ids: 32 hex chars, unique across processes, cheap to make.

A random 64-bit prefix per process (renewed in a forked child) followed by a 64-bit counter;
uuid4 costs a system call per id, this costs a string format.
"""

from __future__ import annotations

import itertools
import os
import secrets


class _IdSource:
    __slots__ = ("counter", "prefix")

    def __init__(self) -> None:
        self.prefix = ""
        self.counter: itertools.count[int] = itertools.count(1)
        self.renew()

    def renew(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count(1)


_source = _IdSource()
os.register_at_fork(after_in_child=_source.renew)


def new_prediction_id() -> str:
    """A fresh prediction id (32 lowercase hex chars)."""
    return f"{_source.prefix}{next(_source.counter):016x}"
