"""Telemetry at a URL (``s3://``, ``gs://``, ``hdfs://``): copied to a local folder to load.

The filesystem is pyarrow's, resolved from the URL, with its credentials from the environment
(for S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``
for an S3-compatible store). The walk descends one folder level at a time and does not enter a
``year=/month=/day=/hour=/minute=`` folder outside the evaluation window (see
:mod:`modeltel.loop._collector`), so a bucket holding years of partitions costs a listing of the
window's, not of everything. Objects are copied as stored (still compressed); the loader reads
them as it reads a local folder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modeltel.loop._collector import Window, outside_window

__all__ = ["is_url", "local_folder", "remote_filesystem", "store_errors"]


def is_url(path: str | Path) -> bool:
    """True for ``scheme://...`` (a local path is never one)."""
    return "://" in str(path)


def remote_filesystem(url: str) -> tuple[Any, str] | None:
    """pyarrow's filesystem for ``url`` and the path inside it; None when pyarrow has none for
    its scheme (``s3a://``, ``abfss://``: Hadoop's names, which only Spark reads)."""
    try:
        from pyarrow import fs  # type: ignore[import-untyped]

        filesystem, root = fs.FileSystem.from_uri(url)
    except (ImportError, ValueError, OSError):
        return None
    return filesystem, str(root).rstrip("/")


@contextmanager
def store_errors(url: str) -> Iterator[None]:
    """An error from the store at ``url`` (no such bucket, no permission, unreachable) as one
    ValueError naming it, which the commands print as one line, rather than pyarrow's traceback."""
    try:
        yield
    except OSError as exc:
        raise ValueError(f"{url}: {exc}") from exc


@contextmanager
def local_folder(path: str | Path, window: Window = (None, None)) -> Iterator[Path]:
    """``path`` itself when local; for a URL, a temporary copy of what lies under it (the
    partitions outside ``window`` left out), removed on exit."""
    if not is_url(path):
        yield Path(path)
        return
    found = remote_filesystem(str(path))
    if found is None:
        raise ValueError(f"{path}: no filesystem for this URL (pyarrow reads s3://, gs://, hdfs://)")
    filesystem, root = found
    with tempfile.TemporaryDirectory(prefix="modeltel-remote-") as scratch:
        with store_errors(str(path)):
            _copy(filesystem, root, Path(scratch), window)
        yield Path(scratch)


def _copy(filesystem: Any, root: str, scratch: Path, window: Window) -> None:
    from pyarrow import fs

    if filesystem.get_file_info(root).type == fs.FileType.NotFound:
        raise FileNotFoundError("nothing there (no such bucket, folder or prefix)")
    for relative in _walk(filesystem, root, "", window):
        target = scratch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        source = filesystem.open_input_stream(f"{root}/{relative}", compression=None)
        with source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink)


def _walk(filesystem: Any, root: str, relative: str, window: Window) -> Iterator[str]:
    from pyarrow import fs

    base = f"{root}/{relative}".rstrip("/")
    for info in filesystem.get_file_info(fs.FileSelector(base, allow_not_found=True)):
        child = info.path[len(root) :].lstrip("/")
        if info.type == fs.FileType.Directory and not outside_window(child, window):
            yield from _walk(filesystem, root, child, window)
        elif info.type == fs.FileType.File:  # its folder was checked on the way down
            yield child
