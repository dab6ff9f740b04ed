"""Converted logs (see ``_convert``), cached next to the JSON and keyed by each file's size and mtime.

``FOLDER/.modeltel-cache/<file name>/<size>-<mtime_ns>-v3/`` holds the parts of one logs file of
at least ``cache_min_bytes``. A file that changes (an exporter appended to it) gets a new key and
is converted again; the stale entry is removed once the new one is complete. An entry appears
by an atomic rename, so a crash or a concurrent evaluation never sees half of one. Smaller files,
and folders that cannot be written, are converted into a temporary folder dropped after loading.
Deleting ``.modeltel-cache`` is always safe.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from modeltel.loop._convert import convert_all, cpu_count, line_ranges, part_files, skipped_lines

__all__ = ["CACHE_DIR", "converted"]

CACHE_DIR: Final = ".modeltel-cache"
# v2: prediction records' bodies written as JSON text are converted too (a v1 entry, made by a
# converter that only read map bodies, may lack their rows). v3: a large batch call's records
# with their shared values written once are converted too.
_FORMAT: Final = "v3"
_MIB: Final = 1 << 20


@dataclass
class _Plan:
    outputs: list[Path] = field(default_factory=list)
    jobs: list[tuple[str, int, int, str, int]] = field(default_factory=list)
    commits: list[Callable[[], Path]] = field(default_factory=list)
    partials: list[Path] = field(default_factory=list)


@contextmanager
def converted(
    files: Sequence[Path],
    *,
    cache_min_bytes: int = 64 * _MIB,
    chunk_bytes: int = 64 * _MIB,
    workers: int | None = None,
) -> Iterator[tuple[list[Path], list[Path], dict[str, int]]]:
    """Yield the Parquet and JSONL parts of ``files``, converting what is not cached, and the
    lines skipped as not JSON per file name."""
    with tempfile.TemporaryDirectory(prefix="modeltel-logs-") as scratch:
        plan = _Plan()
        for index, path in enumerate(files):
            _plan_file(plan, path, Path(scratch) / str(index), cache_min_bytes, chunk_bytes)
        try:
            convert_all(plan.jobs, workers or cpu_count())
        except BaseException:
            for partial in plan.partials:
                shutil.rmtree(partial, ignore_errors=True)
            raise
        outputs = [*plan.outputs, *(commit() for commit in plan.commits)]
        parts = [part_files(out) for out in outputs]
        tables = [p for found, _ in parts for p in found]
        yield tables, [p for _, other in parts for p in other], skipped_lines(outputs)


def _plan_file(plan: _Plan, path: Path, scratch: Path, cache_min_bytes: int, chunk_bytes: int) -> None:
    stat = path.stat()
    entry = path.parent / CACHE_DIR / path.name / f"{stat.st_size}-{stat.st_mtime_ns}-{_FORMAT}"
    if stat.st_size >= cache_min_bytes and entry.is_dir():
        plan.outputs.append(entry)
        return
    out = _partial(entry) if stat.st_size >= cache_min_bytes else None
    if out is None:
        scratch.mkdir()
        plan.outputs.append(scratch)
    else:
        plan.partials.append(out)
        plan.commits.append(lambda: _commit(out, entry))
    target = out or scratch
    for part, (start, end) in enumerate(line_ranges(path, stat.st_size, chunk_bytes)):
        plan.jobs.append((str(path), start, end, str(target), part))


def _partial(entry: Path) -> Path | None:
    """A fresh folder beside ``entry`` to convert into, or None when the folder is read-only."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".partial-", dir=entry.parent))
    except OSError:
        return None


def _commit(partial: Path, entry: Path) -> Path:
    try:
        os.rename(partial, entry)
    except OSError:  # a concurrent evaluation committed the same entry first
        shutil.rmtree(partial, ignore_errors=True)
        return entry
    for stale in entry.parent.iterdir():
        if stale != entry and not stale.name.startswith("."):
            shutil.rmtree(stale, ignore_errors=True)
    return entry
