"""Apache Spark as the loop's engine: the same queries as on DuckDB, run by a SparkSession.

:class:`SparkConnection` answers the one call every stage makes, ``con.execute(sql,
params).fetchall()``, so the join, the metrics, drift, cost and periods run unchanged; where the
two SQL dialects differ the queries ask :mod:`modeltel.loop._dialect`. ``CREATE OR REPLACE
TABLE t AS q`` (the joined table) is materialised once: as Parquet in a scratch folder on a local
master, persisted in the executors' memory and disks on a cluster. The session sees the four
tables of :mod:`modeltel.loop._tables` as temporary views of the same names, dropped again by
:meth:`SparkConnection.close`.

pyspark is imported only here, and only when ``--engine spark`` runs (``modeltel[spark]``; Spark
needs Java 17 or newer).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from modeltel.loop._dialect import SPARK
from modeltel.loop._engine import LoopDependencyError
from modeltel.loop._tables import TABLES

__all__ = [
    "SPARK_HINT",
    "SparkConnection",
    "require_pyspark",
    "session_master",
    "shuffle_partitions",
    "spark_memory",
    "spark_session",
]

SPARK_HINT: Final = "--engine spark needs pyspark and Java 17 or newer: pip install 'modeltel[spark]'"
_CREATE: Final = re.compile(r"\s*CREATE OR REPLACE TABLE (\w+) AS\s(.*)", re.DOTALL)
_PARTITION_BYTES: Final = 32 * 2**20
_SIZE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", re.IGNORECASE)


def require_pyspark() -> ModuleType:
    """Import pyspark, or raise :class:`LoopDependencyError` with the install hint."""
    try:
        import pyspark
        import pyspark.sql
    except ImportError as exc:
        raise LoopDependencyError(SPARK_HINT) from exc
    return pyspark


def spark_memory(limit: str) -> str:
    """A DuckDB-style size (``4GB``, ``512MB``) as a JVM size in MiB (``4096m``)."""
    match = _SIZE.fullmatch(limit)
    if match is None:
        raise ValueError(f"memory limit {limit!r}: expected a size such as 4GB or 512MB")
    number, unit = float(match.group(1)), match.group(2).upper()
    mib = number * {"": 2**-20, "K": 2**-10, "M": 1, "G": 2**10, "T": 2**20}[unit]
    return f"{max(1, int(mib))}m"


def shuffle_partitions(source: str) -> int | None:
    """Shuffle partitions for the tables folder ``source``: one per 32 MiB of its Parquet, at
    least 8; None (Spark's default, 200) when ``source`` is not a local folder.

    Spark's 200 suit a cluster; on a few local cores most of them are tiny tasks whose fixed
    cost dominates (at 10M predictions, 16 partitions ran the score aggregation 2.5x faster than
    200), while at 100M rows 8 partitions ran out of a 4 GB heap in the join.
    """
    folder = Path(source)
    if not folder.is_dir():
        return None
    size = sum(path.stat().st_size for path in folder.rglob("*.parquet"))
    return max(8, math.ceil(size / _PARTITION_BYTES))


def session_master(spark: Any, master: str) -> str:
    """The master an evaluation runs on: session ``spark``'s, else the active session's, else
    ``master``; empty for a session that names none (Spark Connect's)."""
    from pyspark.sql import SparkSession

    session = spark if spark is not None else SparkSession.getActiveSession()
    return master if session is None else str(session.conf.get("spark.master", ""))


def spark_session(master: str, memory_limit: str, partitions: int | None = None) -> Any:
    """A SparkSession on ``master`` (``local[*]``: this machine's cores), the driver's memory
    ``memory_limit``, ``partitions`` shuffle partitions (see :func:`shuffle_partitions`); the
    active session instead when there is one (its settings stay)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = (
        SparkSession.builder.appName("modeltel evaluate")
        .master(master)
        .config("spark.driver.memory", spark_memory(memory_limit))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # On a cluster the joined table is cached once and scanned by every stage: compressing
        # it cost more than a third of the join's time at 10M predictions, and spilled blocks
        # are on disk.
        .config("spark.sql.inMemoryColumnarStorage.compressed", "false")
    )
    if partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(partitions))
    if master.startswith("local"):
        # Bound to loopback, a local Spark needs no resolvable host name or network interface.
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # read by the JVM's launcher
    with warnings.catch_warnings():
        # pyspark warns at start-up about the pandas beside it; modeltel hands Spark no pandas.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class _Rows:
    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._rows]

    def fetchone(self) -> tuple[Any, ...] | None:
        return tuple(self._rows[0]) if self._rows else None


class SparkConnection:
    """The loop's queries on ``session``, reading the tables of tables folder ``source``
    (any path or URL the session reads: a local folder, ``s3a://``, ``hdfs://``), a scratch
    folder removed on :meth:`close` with ``remove_on_close``; predictions and feature samples
    before ``since`` (Unix ns) are left out."""

    dialect = SPARK

    def __init__(
        self, session: Any, source: str, *, remove_on_close: bool = False, since: int | None = None
    ) -> None:
        from pyspark import StorageLevel

        self._session = session
        self._storage = StorageLevel.MEMORY_AND_DISK
        self._views: list[str] = []
        self._persisted: list[Any] = []
        self._scratch = source if remove_on_close else None
        self._materialised: str | None = None
        for name in TABLES:
            frame = session.read.parquet(f"{str(source).rstrip('/')}/{name}")
            if since is not None and name in ("predictions", "feature_values"):
                frame = frame.where(f"ts >= {since}")  # pushed down to the Parquet reader
            self._view(name, frame)

    def _view(self, name: str, frame: Any) -> None:
        frame.createOrReplaceTempView(name)
        self._views.append(name)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> _Rows:
        """Run ``sql`` (``?`` markers bound to ``params``); a ``CREATE OR REPLACE TABLE``
        materialises its query once (see :meth:`_materialise`)."""
        args = list(params) if params else None
        create = _CREATE.match(sql)
        if create is None:
            return _Rows(self._session.sql(sql, args=args).collect())
        name, query = create.groups()
        self._view(name, self._materialise(name, self._session.sql(query, args=args)))
        return _Rows([])

    def _materialise(self, name: str, frame: Any) -> Any:
        """``frame`` computed once. On a local master it is written as Parquet to a scratch
        folder and read back: each later query reads only the columns it names, where Spark's
        cache hands it whole rows, and at 100M predictions most of the cache was on disk anyway
        (a scan of it took twice as long at 10M, where it fit). A cluster's executors cannot
        read this machine's folders, so there it is persisted in their memory and disks."""
        if not session_master(self._session, "").startswith("local"):
            frame = frame.persist(self._storage)
            self._persisted.append(frame)
            return frame
        if self._materialised is None:
            self._materialised = tempfile.mkdtemp(prefix="modeltel-spark-")
        path = os.path.join(self._materialised, name)
        frame.write.mode("overwrite").parquet(path)
        return self._session.read.parquet(path)

    def close(self) -> None:
        """Drop the views and cached tables this connection made."""
        for frame in self._persisted:
            frame.unpersist()
        for name in dict.fromkeys(self._views):
            self._session.catalog.dropTempView(name)
        self._persisted, self._views = [], []
        for folder in (self._scratch, self._materialised):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        self._materialised = None
