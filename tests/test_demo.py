"""The quickstart demo and the ``modeltel`` command: end to end, in subprocesses, against real files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modeltel import __version__
from modeltel._export.otlp_json import LOGS_FILE, METRICS_FILE, TRACES_FILE
from modeltel.cli import main
from modeltel.cli.demo import DEFAULT_CALLS, TENANTS
from modeltel.cli.summary import Summary, SummaryRow, format_summary, summarize
from otlp_receiver import OtlpReceiver, metric_total

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"
FILES = (TRACES_FILE, METRICS_FILE, LOGS_FILE)
CALLS = 900  # the runs that check a variation; the main one is the demo as users run it
TIMEOUT_S = 60


@dataclass(frozen=True)
class Run:
    """A finished demo process and the folder it wrote to."""

    result: subprocess.CompletedProcess[str]
    output: Path


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without OTLP endpoints or modeltel settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_EXPORTER_OTLP", "MODELTEL_"))}
    env.update(extra)
    return env


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modeltel.cli", *args],
        env=_clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _demo(output: Path, env: dict[str, str] | None = None, calls: int = CALLS) -> Run:
    return Run(_run_cli("demo", "--output", str(output), "--calls", str(calls), env=env), output)


def _total(summary: Summary) -> SummaryRow:
    (total,) = [row for row in summary.rows if row.tenant is None]
    return total


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    # The default burst (3,000 calls in about a second, each traced) is what once overran the
    # SDK's span queue while the file exporter wrote JSON.
    yield _demo(tmp_path_factory.mktemp("telemetry"), calls=DEFAULT_CALLS)


def test_demo_exits_zero(demo: Run) -> None:
    """The demo finishes successfully without a collector."""
    assert demo.result.returncode == 0, demo.result.stderr


@pytest.mark.parametrize("name", FILES)
def test_demo_writes_each_otlp_json_file(demo: Run, name: str) -> None:
    """Spans, metrics and sampled features each land in a non-empty file."""
    assert (demo.output / name).stat().st_size > 0


def test_demo_prints_the_summary_of_its_files(demo: Run) -> None:
    """The printed summary is the one read back from the files it wrote."""
    assert format_summary(summarize(demo.output)) in demo.result.stdout


def test_demo_summary_has_a_row_per_tenant(demo: Run) -> None:
    """Every simulated tenant gets its own row."""
    tenants = {row.tenant for row in summarize(demo.output).rows if row.tenant is not None}
    assert tenants == set(TENANTS)


def test_demo_records_every_call(demo: Run) -> None:
    """The files account for each of the ``--calls`` predictions, once."""
    assert _total(summarize(demo.output)).calls == DEFAULT_CALLS


def test_demo_records_every_call_as_a_span(demo: Run) -> None:
    """No span is dropped between predict and the traces file, nor reported dropped."""
    assert _total(summarize(demo.output)).spans == DEFAULT_CALLS
    assert "dropping" not in demo.result.stderr


def test_demo_errors_match_the_exceptions_callers_caught(demo: Run) -> None:
    """Each KeyError or TypeError a caller caught is recorded as an error outcome."""
    caught = sum(int(count) for count in re.findall(r"(\d+) (?:KeyError|TypeError)", demo.result.stdout))
    assert caught > 0
    assert _total(summarize(demo.output)).outcomes.get("error", 0) == caught


def test_demo_nan_scores_are_counted_as_non_finite(demo: Run) -> None:
    """Each NaN score the callers received is counted as non-finite, not recorded as a score."""
    match = re.search(r"\((\d+) with a NaN score\)", demo.result.stdout)
    assert match is not None and int(match[1]) > 0
    assert _total(summarize(demo.output)).non_finite == int(match[1])


def test_demo_summary_shows_this_run_only(tmp_path: Path) -> None:
    """A second run into the same folder replaces the first run's telemetry."""
    _demo(tmp_path)
    second = _demo(tmp_path)
    assert second.result.returncode == 0, second.result.stderr
    assert _total(summarize(tmp_path)).calls == CALLS


def test_a_traced_burst_to_files_keeps_every_span(tmp_path: Path) -> None:
    """6,000 traced calls as fast as they come, three times the SDK's default span queue, all
    reach the traces file."""
    burst = _demo(tmp_path, calls=6000)
    assert _total(summarize(burst.output)).spans == 6000
    assert "dropping" not in burst.result.stderr


@pytest.mark.wire
def test_demo_sends_to_the_collector_when_an_endpoint_is_set(tmp_path: Path) -> None:
    """With an OTLP endpoint, every prediction reaches the collector and no file is written."""
    with OtlpReceiver() as receiver:
        run = _demo(tmp_path, env=_clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint))
        assert run.result.returncode == 0, run.result.stderr
        assert metric_total(receiver.metrics(), "ml.predictions") == CALLS
    assert "collector" in run.result.stdout
    assert not any((tmp_path / name).exists() for name in FILES)


def test_quickstart_example_runs(tmp_path: Path) -> None:
    """examples/quickstart.py prints the summary of the files it wrote, one row per tenant."""
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        env=_clean_env(MODELTEL_OUTPUT=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = summarize(tmp_path)
    assert {row.tenant for row in summary.rows if row.tenant is not None} == set(TENANTS)
    assert format_summary(summary) in result.stdout


def test_summary_command_prints_the_folder_summary(demo: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """``modeltel summary PATH`` prints the formatted summary of PATH."""
    assert main(["summary", str(demo.output)]) == 0
    assert format_summary(summarize(demo.output)) in capsys.readouterr().out


def test_summary_command_on_a_missing_folder_exits_2(tmp_path: Path) -> None:
    """A missing folder is a usage error whose message names the path."""
    missing = tmp_path / "nowhere"
    result = _run_cli("summary", str(missing))
    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_version_command_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``modeltel version`` prints the package version."""
    assert main(["version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``modeltel`` alone prints its help and exits 2."""
    assert main([]) == 2
    assert "summary" in capsys.readouterr().err
