"""The slow loop's analytical engine: DuckDB, imported only here and only when the loop runs.

``import modeltel`` never imports this module, so a model server pulls in none of the loop's
dependencies; ``modeltel[loop]`` installs them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType
from typing import Any

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "INSTALL_HINT",
    "LoopDependencyError",
    "connect",
    "require_duckdb",
    "resource_problem",
    "spill_folder",
]

INSTALL_HINT = "the evaluation loop needs DuckDB: pip install 'modeltel[loop]'"


class LoopDependencyError(ImportError):
    """The optional ``modeltel[loop]`` dependencies are not installed."""


def require_duckdb() -> ModuleType:
    """Import DuckDB, or raise :class:`LoopDependencyError` with the install hint."""
    try:
        import duckdb
    except ImportError as exc:
        raise LoopDependencyError(INSTALL_HINT) from exc
    return duckdb


# DuckDB's own default is 80% of RAM: at 100M predictions that was 19.5 GB here. Past this limit its
# tables and operators spill to the temporary folder instead.
DEFAULT_MEMORY_LIMIT = "4GB"


def spill_folder(workdir: str | None = None) -> str:
    """Where DuckDB spills past its memory limit: ``modeltel-duckdb.tmp`` in ``workdir``, by
    default the temporary folder (``TMPDIR``)."""
    return os.path.join(workdir or tempfile.gettempdir(), "modeltel-duckdb.tmp")


def connect(workdir: str | None = None, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> Any:
    """A DuckDB connection whose tables spill to :func:`spill_folder` past ``memory_limit`` (a
    DuckDB size such as ``"4GB"``), so data may exceed RAM and memory stays bounded."""
    duckdb = require_duckdb()
    config = {"temp_directory": spill_folder(workdir), "memory_limit": memory_limit}
    con = duckdb.connect(config=config)
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    return con


def resource_problem(exc: BaseException, memory_limit: str) -> str | None:
    """One line for DuckDB running out of memory or of disk to spill to: what happened, the
    folder or limit involved and what to change. None for any other error."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is None or not isinstance(exc, (duckdb.OutOfMemoryException, duckdb.IOException)):
        return None
    text = str(exc)
    first, folder = (text.strip().splitlines() or [type(exc).__name__])[0], spill_folder()
    # DuckDB's own cap on its spill folder is the free space of that disk.
    disk = "max_temp_directory_size" in text or "No space left on device" in text
    if disk or (isinstance(exc, duckdb.IOException) and folder in text):
        return (
            f"{first} (past --memory-limit {memory_limit} DuckDB spills to {folder}): make room "
            "there, point TMPDIR at a folder on a disk that has it, or raise --memory-limit"
        )
    if isinstance(exc, duckdb.OutOfMemoryException):
        return f"{first}: raise --memory-limit (now {memory_limit})"
    return None
