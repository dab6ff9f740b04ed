"""Shared fixtures. modeltel's own bugs must be loud here, so internal errors re-raise."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from modeltel.testing import Capture, capture

os.environ["MODELTEL_STRICT"] = "1"
# Anything that configures from the environment (spawned children, subprocesses) writes here,
# never into the checkout.
os.environ.setdefault("MODELTEL_OUTPUT", tempfile.mkdtemp(prefix="modeltel-tests-"))


@pytest.fixture
def cap() -> Iterator[Capture]:
    """Capture everything modeltel records during the test, in memory."""
    with capture() as c:
        yield c


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Internal errors are swallowed as in production (for fail-open tests)."""
    monkeypatch.delenv("MODELTEL_STRICT", raising=False)
