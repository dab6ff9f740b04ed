"""The ``modeltel`` command: ``demo``, ``summary PATH`` and ``version``.

Each subcommand is one :class:`Command` in :data:`COMMANDS`: a help line, a function that adds
its arguments to its parser, and a function that runs it and returns the exit code. A new
subcommand is one more entry.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modeltel._version import __version__
from modeltel.cli.demo import DEFAULT_CALLS, run_demo
from modeltel.cli.summary import TOP_TENANTS, format_summary, summarize
from modeltel.loop._cli import (
    evaluate_arguments,
    inventory_arguments,
    run_evaluate,
    run_inventory,
    run_tables,
    tables_arguments,
)

__all__ = ["COMMANDS", "Command", "main"]

USAGE_ERROR = 2


@dataclass(frozen=True)
class Command:
    """One subcommand of ``modeltel``."""

    help: str
    configure_parser: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {raw}")
    return value


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    output_help = "folder for the OTLP-JSON files (default: $MODELTEL_OUTPUT or ./telemetry)"
    parser.add_argument("--output", metavar="DIR", help=output_help)
    calls_help = f"predictions to simulate (default: {DEFAULT_CALLS})"
    parser.add_argument("--calls", metavar="N", type=_positive_int, default=DEFAULT_CALLS, help=calls_help)


def _run_demo(args: argparse.Namespace) -> int:
    return run_demo(output=args.output, calls=args.calls)


def _summary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="folder holding traces.jsonl, metrics.jsonl and logs.jsonl")
    parser.add_argument(
        "--top",
        type=_non_negative_int,
        default=TOP_TENANTS,
        help=f"tenants shown per model/version by calls, the rest on one line ({TOP_TENANTS}, 0: all)",
    )


def _run_summary(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.is_dir():
        problem = "is not a folder" if path.exists() else "does not exist"
        print(f"modeltel summary: {args.path} {problem}", file=sys.stderr)
        return USAGE_ERROR
    print(format_summary(summarize(path, top=args.top or None)))
    return 0


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def _run_version(args: argparse.Namespace) -> int:
    print(f"modeltel {__version__}")
    return 0


def _contract_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["infer"], help="infer: a contract from training data")
    parser.add_argument("path", help="a CSV file of training rows")
    parser.add_argument("--margin", type=float, default=0.1, help="widen observed ranges by this share")
    parser.add_argument(
        "--quantiles",
        help="LOW,HIGH: ranges from these quantiles of the data (e.g. 0.001,0.999), not min/max",
    )
    parser.add_argument(
        "--check", help="a CSV of held-out rows: say on stderr how many the contract would reject, and why"
    )


def _run_contract(args: argparse.Namespace) -> int:
    from modeltel._contract.infer import infer_contract_from_csv, read_csv_rows

    paths = [Path(p) for p in (args.path, args.check) if p]
    for path in paths:
        if not path.is_file():
            print(f"modeltel contract infer: {path} is not a file", file=sys.stderr)
            return 2
    quantiles = None
    if args.quantiles:
        try:
            low, high = (float(part) for part in args.quantiles.split(","))
            quantiles = (low, high)
        except ValueError:
            print(
                f"modeltel contract infer: --quantiles {args.quantiles!r}: expected LOW,HIGH", file=sys.stderr
            )
            return 2
    contract = infer_contract_from_csv(paths[0], margin=args.margin, quantiles=quantiles)
    print(contract.to_json())
    if args.check:
        rows = read_csv_rows(Path(args.check))
        found = contract.check_batch(rows)
        kinds = Counter(f"{v.feature}:{v.kind}" for v in found.violations)
        share = len(found.bad_rows) / len(rows) if rows else 0.0
        print(
            f"modeltel contract infer: would reject {len(found.bad_rows):,} of {len(rows):,} held-out rows "
            f"({share:.1%})"
            + (": " + ", ".join(f"{k} x{n}" for k, n in kinds.most_common()) if kinds else ""),
            file=sys.stderr,
        )
    return 0


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a folder of OTLP-JSON telemetry")
    parser.add_argument("--model", required=True, help="the model whose sampled features to replay")
    parser.add_argument("--version", help="only this model version")
    parser.add_argument("--features", help="module:function computing offline features from a record")
    parser.add_argument("--predict", help="module:function scoring a features mapping offline")
    parser.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance for agreement")


def _run_replay(args: argparse.Namespace) -> int:
    from modeltel.cli.replay import load_callable, replay_folder

    if not Path(args.path).is_dir():
        print(f"modeltel replay: {args.path} is not a folder", file=sys.stderr)
        return 2
    try:
        feature_fn = load_callable(args.features) if args.features else None
        predict_fn = load_callable(args.predict) if args.predict else None
    except (ValueError, ImportError, AttributeError) as exc:
        print(f"modeltel replay: {exc}", file=sys.stderr)
        return 2
    report = replay_folder(
        args.path,
        args.model,
        feature_fn=feature_fn,
        predict_fn=predict_fn,
        version=args.version,
        rtol=args.rtol,
    )
    print(report.format())
    return 1 if report.skewed_features() or report.score.disagreeing else 0


def _dashboards_arguments(parser: argparse.ArgumentParser) -> None:
    from modeltel._ops.dashboards import add_arguments

    add_arguments(parser)


def _run_dashboards(args: argparse.Namespace) -> int:
    from modeltel._ops.dashboards import run

    return run(args)


COMMANDS: dict[str, Command] = {
    "demo": Command("simulate a served fraud model and summarise its telemetry", _demo_arguments, _run_demo),
    "summary": Command("summarise the OTLP-JSON telemetry in a folder", _summary_arguments, _run_summary),
    "version": Command("print the modeltel version", _no_arguments, _run_version),
    "replay": Command(
        "replay sampled features through offline features and model", _replay_arguments, _run_replay
    ),
    "contract": Command(
        "infer a feature contract (JSON) from a CSV of training data", _contract_arguments, _run_contract
    ),
    "dashboards": Command(
        "generate a Grafana dashboard and Prometheus alert rules for a model",
        _dashboards_arguments,
        _run_dashboards,
    ),
    "evaluate": Command(
        "join outcomes to predictions: quality, drift, cost and latency, with JSON and HTML reports",
        evaluate_arguments,
        run_evaluate,
    ),
    "inventory": Command(
        "list every model seen with its truth table, missing answers and missed targets",
        inventory_arguments,
        run_inventory,
    ),
    "tables": Command(
        "write the four tables evaluate reads as Parquet, for Spark or a lake (load telemetry once)",
        tables_arguments,
        run_tables,
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modeltel", description="Instrumentation for production ML models.")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = subcommands.add_parser(name, help=command.help, description=command.help)
        command.configure_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``modeltel`` command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE_ERROR
    return COMMANDS[args.command].run(args)
