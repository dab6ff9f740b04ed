"""The slow loop's analytical engine: DuckDB, imported only here and only when the loop runs.

``import modeltel`` never imports this module, so a model server pulls in none of the loop's
dependencies; ``modeltel[loop]`` installs them.
"""

from __future__ import annotations

import os
import tempfile
from types import ModuleType
from typing import Any

__all__ = ["INSTALL_HINT", "LoopDependencyError", "connect", "require_duckdb"]

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


def connect(workdir: str | None = None) -> Any:
    """A DuckDB connection whose tables spill to a temporary folder, so data may exceed RAM."""
    duckdb = require_duckdb()
    spill = workdir or tempfile.gettempdir()
    con = duckdb.connect(config={"temp_directory": os.path.join(spill, "modeltel-duckdb.tmp")})
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    return con
