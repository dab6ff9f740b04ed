"""The slow loop's analytical engine: DuckDB, imported only here and only when the loop runs.

``import modeltel`` never imports this module, so a model server pulls in none of the loop's
dependencies; ``modeltel[loop]`` installs them.
"""

from __future__ import annotations

import os
import tempfile
from types import ModuleType
from typing import Any

__all__ = ["DEFAULT_MEMORY_LIMIT", "INSTALL_HINT", "LoopDependencyError", "connect", "require_duckdb"]

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


def connect(workdir: str | None = None, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> Any:
    """A DuckDB connection whose tables spill to a temporary folder past ``memory_limit`` (a
    DuckDB size such as ``"4GB"``), so data may exceed RAM and memory stays bounded."""
    duckdb = require_duckdb()
    spill = workdir or tempfile.gettempdir()
    config = {"temp_directory": os.path.join(spill, "modeltel-duckdb.tmp"), "memory_limit": memory_limit}
    con = duckdb.connect(config=config)
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    return con
