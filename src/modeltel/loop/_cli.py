"""``modeltel evaluate`` and ``modeltel inventory``: argument parsing and running.

``modeltel.cli`` registers these functions in its ``COMMANDS``; DuckDB is imported only when a
command runs, and a missing install prints the hint instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from modeltel.loop._durations import parse_duration, parse_instant
from modeltel.loop._engine import DEFAULT_MEMORY_LIMIT, LoopDependencyError, resource_problem
from modeltel.loop._evaluate import ENGINES, EvaluateOptions, evaluate
from modeltel.loop._html import render_html
from modeltel.loop._inventory import inventory_and_skipped
from modeltel.loop._result import Evaluation, to_jsonable
from modeltel.loop._tables import land_tables
from modeltel.loop._text import format_evaluation, format_inventory

__all__ = [
    "evaluate_arguments",
    "inventory_arguments",
    "run_evaluate",
    "run_inventory",
    "run_tables",
    "tables_arguments",
]

USAGE_ERROR = 2
NOTHING_TO_EVALUATE = 1
OUT_OF_RESOURCES = 1  # what the traceback it replaces exited with


def _out_of_resources(command: str, exc: Exception, memory_limit: str) -> int:
    """Print one line for an engine out of memory or of disk and return the exit code; re-raise
    any other error."""
    problem = resource_problem(exc, memory_limit)
    if problem is None:
        raise exc
    print(f"modeltel {command}: {problem}", file=sys.stderr)
    return OUT_OF_RESOURCES


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _reference(text: str) -> str:
    try:
        if "/" in text:
            for part in text.split("/", 1):
                parse_instant(part)
        else:
            parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a duration (30d) or START/END ISO times: {exc}") from exc
    return text


def _instant(text: str) -> str:
    try:
        parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``modeltel evaluate``'s arguments to ``parser``."""
    add = parser.add_argument
    add(
        "path",
        help="folder of telemetry (logs*.jsonl, a Collector's output, predictions*.parquet), or a tables "
        "folder written by modeltel tables (with --engine spark: any URL Spark reads)",
    )
    add("--labels", action="append", type=Path, default=[], help="CSV/Parquet/JSON outcomes (repeatable)")
    add("--maturation", type=_duration, default="7d", help="wait this long before scoring a prediction (7d)")
    add("--reference", type=_reference, default="30d", help="first N of the data, or START/END (30d)")
    add("--profile", type=Path, help="a reference profile saved with modeltel.loop.save_profile")
    add("--period", type=_duration, default="1d", help="period of the time series (1d)")
    add(
        "--memory-limit",
        default=DEFAULT_MEMORY_LIMIT,
        help=f"the engine's memory before it spills to disk, e.g. 8GB ({DEFAULT_MEMORY_LIMIT})",
    )
    add(
        "--period-origin",
        help="instant periods start from (default: Monday 00:00 UTC for whole weeks, else midnight UTC)",
    )
    add("--engine", choices=ENGINES, default="duckdb", help="run the queries on DuckDB or on Spark (duckdb)")
    add("--spark-master", default="local[*]", help="Spark master URL for --engine spark (local[*])")
    add("--by-tenant", action="store_true", help="evaluate each tenant separately")
    add("--threshold", type=float, default=0.5, help="decision threshold for precision/recall/F1 (0.5)")
    add("--feature", action="append", dest="features", help="only drift these features (repeatable)")
    add(
        "--since",
        type=_instant,
        help="only predictions made at or after this ISO time (Collector partitions before it are not read)",
    )
    add("--as-of", type=_instant, help="evaluate as of this ISO time or 'now' (default: latest in the data)")
    add("--json", type=Path, metavar="OUT", help="write the evaluation as JSON")
    add("--html", type=Path, metavar="OUT", help="write a self-contained HTML report")
    add("--quiet", action="store_true", help="no progress on stderr")


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``modeltel evaluate``; returns the exit code."""
    if not Path(args.path).is_dir() and "://" not in args.path:
        print(f"modeltel evaluate: {args.path} is not a folder", file=sys.stderr)
        return USAGE_ERROR
    options = EvaluateOptions(
        engine=args.engine,
        spark_master=args.spark_master,
        labels=tuple(args.labels),
        maturation=args.maturation,
        reference=args.reference,
        period=args.period,
        period_origin=args.period_origin,
        memory_limit=args.memory_limit,
        by_tenant=args.by_tenant,
        threshold=args.threshold,
        as_of=args.as_of,
        since=args.since,
        profile=args.profile,
        features=tuple(args.features) if args.features else None,
    )
    try:
        result = evaluate(args.path, options, progress=not args.quiet)
    except LoopDependencyError as exc:
        print(f"modeltel evaluate: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except ValueError as exc:
        print(f"modeltel evaluate: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as exc:
        return _out_of_resources("evaluate", exc, args.memory_limit)
    if result.skipped_lines:
        print(
            f"modeltel evaluate: {_skipped_note(result.skipped_lines)}; evaluated the rest", file=sys.stderr
        )
    problem = _nothing_to_evaluate(result, args.path)
    if problem:
        print(f"modeltel evaluate: {problem}", file=sys.stderr)
        return NOTHING_TO_EVALUATE
    print(format_evaluation(result))
    if args.json:
        args.json.write_text(json.dumps(to_jsonable(result), indent=2), encoding="utf-8")
    if args.html:
        args.html.write_text(render_html(result), encoding="utf-8")
    return 0


def _nothing_to_evaluate(result: Evaluation, path: str) -> str | None:
    """Why the report would be empty or hollow, or None: no prediction record was recognised, or
    the labels given match no prediction."""
    if not result.groups:
        return (
            f"no prediction records in {path}: looked for modeltel's logs*.jsonl, what a Collector's "
            "file or S3 exporter wrote (OTLP-JSON or protobuf, zstd or gzip) and predictions*.parquet"
        )
    if result.outcomes_loaded and not result.labels_matched:
        return (
            f"none of the {result.outcomes_loaded:,} labels matched a prediction (by prediction_id, "
            "or payload_hash and model): check that they come from this telemetry"
        )
    return None


def _skipped_note(skipped: dict[str, int]) -> str:
    """``skipped 2 malformed line(s) (not JSON) in logs.jsonl``: what a loader skipped, for stderr."""
    where = ", ".join(
        f"{name} ({count})" if len(skipped) > 1 else name for name, count in sorted(skipped.items())
    )
    return f"skipped {sum(skipped.values())} malformed line(s) (not JSON) in {where}"


def inventory_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``modeltel inventory``'s arguments to ``parser``."""
    parser.add_argument("path", help="folder of OTLP-JSON telemetry")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the inventory as JSON")


def run_inventory(args: argparse.Namespace) -> int:
    """Run ``modeltel inventory``; returns 1 when any answer is missing or target missed."""
    if not Path(args.path).is_dir() and "://" not in args.path:
        print(f"modeltel inventory: {args.path} is not a folder", file=sys.stderr)
        return USAGE_ERROR
    try:
        entries, skipped = inventory_and_skipped(args.path)
    except (LoopDependencyError, ValueError) as exc:
        print(f"modeltel inventory: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as exc:
        return _out_of_resources("inventory", exc, DEFAULT_MEMORY_LIMIT)
    if skipped:
        print(f"modeltel inventory: {_skipped_note(skipped)}", file=sys.stderr)
    print(format_inventory(entries))
    if args.json:
        args.json.write_text(json.dumps(to_jsonable(entries), indent=2), encoding="utf-8")
    return 1 if any(e.missing or e.missed for e in entries) else 0


def tables_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``modeltel tables``' arguments to ``parser``."""
    parser.add_argument("path", help="folder or URL of telemetry, as modeltel evaluate reads it")
    parser.add_argument(
        "out",
        help="folder or URL (s3://, gs://, hdfs://) to write predictions/, outcomes/, model_info/, "
        "feature_values/",
    )
    parser.add_argument("--labels", action="append", type=Path, default=[], help="CSV/Parquet/JSON outcomes")
    parser.add_argument(
        "--memory-limit", default=DEFAULT_MEMORY_LIMIT, help="DuckDB's memory before it spills"
    )
    parser.add_argument(
        "--since",
        type=_instant,
        help="only predictions made at or after this ISO time (Collector partitions before it are not read)",
    )
    parser.add_argument(
        "--as-of", type=_instant, help="Collector partitions starting after this ISO time are not read"
    )


def run_tables(args: argparse.Namespace) -> int:
    """Run ``modeltel tables``: load a telemetry folder once, write its four tables as Parquet."""
    if not Path(args.path).is_dir() and "://" not in args.path:
        print(f"modeltel tables: {args.path} is not a folder", file=sys.stderr)
        return USAGE_ERROR
    try:
        since, as_of = (parse_instant(t) if t else None for t in (args.since, args.as_of))
        counts = land_tables(args.path, args.out, tuple(args.labels), args.memory_limit, (since, as_of))
    except (LoopDependencyError, ValueError) as exc:
        print(f"modeltel tables: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as exc:
        return _out_of_resources("tables", exc, args.memory_limit)
    if not counts["predictions"]:
        print(f"modeltel tables: no prediction records in {args.path}", file=sys.stderr)
        return NOTHING_TO_EVALUATE
    print(", ".join(f"{name} {count:,}" for name, count in counts.items()) + f" -> {args.out}")
    return 0
