"""`modeltel contract infer` and the parity helper users reach through modeltel.testing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modeltel import Contract
from modeltel.testing import assert_same_features


def test_contract_infer_prints_a_contract_that_accepts_its_training_rows(tmp_path: Path) -> None:
    """The JSON printed for a CSV compiles back to a contract that accepts the rows it saw."""
    csv = tmp_path / "train.csv"
    csv.write_text("amount,country\n10.5,DE\n20.0,FR\n15.25,DE\n")
    out = subprocess.run(
        [sys.executable, "-m", "modeltel.cli", "contract", "infer", str(csv)],
        capture_output=True,
        text=True,
        check=True,
    )
    contract = Contract.from_json(out.stdout)
    assert contract.check({"amount": 12.0, "country": "FR"}) == []
    assert [v.kind for v in contract.check({"amount": 12.0, "country": "XX"})] == ["category"]


def test_contract_infer_on_a_missing_file_exits_2(tmp_path: Path) -> None:
    """A missing CSV is a clear error naming the path, exit code 2."""
    missing = tmp_path / "nope.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "modeltel.cli", "contract", "infer", str(missing)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and str(missing) in proc.stderr


def test_assert_same_features_is_shipped_in_testing() -> None:
    """modeltel.testing.assert_same_features flags a feature scaled by 1000 in serving."""
    with pytest.raises(AssertionError, match="amount"):
        assert_same_features(lambda x: {"amount": x}, lambda x: {"amount": x * 1000}, [1.0, 2.0])


def test_contract_infer_checks_a_held_out_file(tmp_path: Path) -> None:
    """``--check``: how many held-out rows the inferred contract would reject, and by which rule,
    before anyone switches a model to reject; ``--quantiles`` takes ranges from quantiles."""
    train = tmp_path / "train.csv"
    train.write_text(
        "amount,country\n" + "".join(f"{10 + i},{'DE' if i % 2 else 'FR'}\n" for i in range(100))
    )
    held = tmp_path / "held.csv"
    held.write_text("amount,country\n50,DE\n500,FR\n40,IT\n30,FR\n")
    proc = subprocess.run(
        [sys.executable, "-m", "modeltel.cli", "contract", "infer", str(train), "--check", str(held)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Contract.from_json(proc.stdout).check({"amount": 12, "country": "FR"}) == []
    assert "would reject 2 of 4 held-out rows (50.0%): " in proc.stderr
    assert "amount:range x1" in proc.stderr and "country:category x1" in proc.stderr
    quantiles = subprocess.run(
        [sys.executable, "-m", "modeltel.cli", "contract", "infer", str(train), "--quantiles", "0.1,0.9"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [v.kind for v in Contract.from_json(quantiles.stdout).check({"amount": 10, "country": "FR"})] == [
        "range"
    ]
    bad = subprocess.run(
        [sys.executable, "-m", "modeltel.cli", "contract", "infer", str(train), "--quantiles", "low"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "expected LOW,HIGH" in bad.stderr
