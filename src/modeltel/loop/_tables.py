"""The four tables every evaluation reads, landed as Parquet so any engine can read them.

``modeltel tables TELEMETRY OUT`` (or :func:`save_tables`) writes them after loading a telemetry
folder once: ``OUT/predictions/``, ``OUT/outcomes/``, ``OUT/model_info/`` and
``OUT/feature_values/``, each a folder of Parquet files (the shape a lake table has). A folder or
URL holding those four is a *tables folder*: ``evaluate`` reads it directly on either engine,
without parsing telemetry again. Their columns are described in :mod:`modeltel.loop._load`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

from modeltel.loop._engine import connect
from modeltel.loop._load import load_labels, load_telemetry, sql_string
from modeltel.loop._remote import is_url, local_folder, remote_filesystem, store_errors

__all__ = ["TABLES", "Loaded", "is_tables_folder", "land_tables", "load_duckdb", "read_tables", "save_tables"]

TABLES: Final = ("predictions", "outcomes", "model_info", "feature_values")


class Loaded(NamedTuple):
    """A DuckDB connection holding the four tables, and the telemetry lines loading skipped."""

    con: Any
    skipped: dict[str, int]  # by reason


def load_duckdb(
    path: str | Path,
    *,
    labels: Sequence[Path],
    memory_limit: str,
    window: tuple[int | None, int | None] = (None, None),
    tables: bool | None = None,
) -> Loaded:
    """The four tables on a new DuckDB connection, from telemetry folder ``path`` or tables
    folder ``path`` (``tables``, when the caller already asked :func:`is_tables_folder`), either
    one local or a URL; then the ``labels`` files. ``window`` is (since, as-of) in ns since the
    epoch: partitions outside it are not read, and predictions and feature samples made before
    ``since`` are left out."""
    tables = is_tables_folder(path) if tables is None else tables
    since = window[0]
    con = connect(memory_limit=memory_limit)
    try:
        with local_folder(path, (None, None) if tables else window) as folder:
            if tables:
                read_tables(con, folder)
                skipped: dict[str, int] = {}
            else:
                skipped = load_telemetry(con, folder, window=window)
        if since is not None:
            for table in ("predictions", "feature_values"):
                con.execute(f"DELETE FROM {table} WHERE ts < {since}")
        for file in labels:
            load_labels(con, file)
        return Loaded(con, skipped)
    except BaseException:
        con.close()
        raise


def is_tables_folder(path: str | Path) -> bool:
    """True for a folder or URL holding a sub-folder for each of :data:`TABLES`, and for a URL
    pyarrow cannot list (``s3a://``, ``abfss://``: only Spark reads those, as tables)."""
    if not is_url(path):
        return all((Path(path) / name).is_dir() for name in TABLES)
    found = remote_filesystem(str(path))
    if found is None:
        return True
    filesystem, root = found
    with store_errors(str(path)):
        return all(filesystem.get_file_info(f"{root}/{name}").type.name == "Directory" for name in TABLES)


def save_tables(con: Any, out: str | Path) -> None:
    """Write DuckDB connection ``con``'s four tables under ``out`` (replacing what was there)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        target = folder / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        con.execute(f"COPY {name} TO {sql_string(target / 'part-0.parquet')} (FORMAT parquet)")


def read_tables(con: Any, folder: str | Path) -> None:
    """Create DuckDB connection ``con``'s four tables from a local tables folder."""
    for name in TABLES:
        files = sql_string(Path(folder) / name / "*.parquet")
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet({files})")


def land_tables(
    folder: str | Path,
    out: str | Path,
    labels: tuple[Path, ...],
    memory_limit: str,
    window: tuple[int | None, int | None] = (None, None),
) -> dict[str, int]:
    """Load telemetry ``folder`` (local or a URL, as ``evaluate`` reads it, ``window`` as
    :func:`load_duckdb` takes it) and ``labels`` on DuckDB and write the tables under ``out``, a
    local folder or a URL pyarrow writes (``s3://``, ``gs://``, ``hdfs://``: where a cluster's
    executors read them); returns each table's row count."""
    con = load_duckdb(folder, labels=labels, memory_limit=memory_limit, window=window).con
    try:
        if is_url(out):
            with tempfile.TemporaryDirectory(prefix="modeltel-tables-") as scratch:
                save_tables(con, scratch)
                _upload(Path(scratch), str(out))
        else:
            save_tables(con, out)
        return {name: int(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]) for name in TABLES}
    finally:
        con.close()


def _upload(local: Path, url: str) -> None:
    """Copy local tables folder ``local`` under ``url``, replacing what each table held there."""
    found = remote_filesystem(url)
    if found is None:
        raise ValueError(f"{url}: no filesystem for this URL (pyarrow writes s3://, gs://, hdfs://)")
    filesystem, root = found
    with store_errors(url):
        for name in TABLES:
            target = f"{root}/{name}"
            filesystem.delete_dir_contents(target, missing_dir_ok=True)
            filesystem.create_dir(target)
            for file in sorted((local / name).iterdir()):
                with (
                    file.open("rb") as source,
                    filesystem.open_output_stream(f"{target}/{file.name}", compression=None) as sink,
                ):
                    shutil.copyfileobj(source, sink)
