"""Contract check cost: single row vs pydantic strict validation, and batch cost per row.

Run: python benchmarks/bench_contract.py  (prints medians of several repeats, and ratios)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, create_model

from modeltel._contract.contract import compile_contract

FEATURES = 20
ROWS = 10_000


def per_call(fn: Callable[[], Any], number: int) -> float:
    """Mean seconds of one call over ``number`` calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def interleaved(cases: dict[str, tuple[Callable[[], Any], int]], repeats: int = 9) -> dict[str, list[float]]:
    """Time every case once per repeat, in turn, so a noisy machine slows them alike."""
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, number) in cases.items():
            runs[name].append(per_call(fn, number))
    return runs


def ratio(runs: dict[str, list[float]], top: str, bottom: str) -> float:
    """Median over repeats of the per-repeat ratio (robust to load that varies between repeats)."""
    return statistics.median(a / b for a, b in zip(runs[top], runs[bottom], strict=True))


def main() -> None:
    fields: dict[str, Any] = {f"f{i}": (float, Field(ge=0, le=1000)) for i in range(FEATURES)}
    model: type[BaseModel] = create_model("Bench", **fields)
    contract = compile_contract(model)
    row = {f"f{i}": float(i) for i in range(FEATURES)}
    matrix = np.random.default_rng(0).uniform(0, 1000, size=(ROWS, FEATURES))
    rows = [dict(zip(contract.fields, r, strict=True)) for r in matrix.tolist()]

    cases: dict[str, tuple[Callable[[], Any], int]] = {
        "check": (lambda: contract.check(row), 50_000),
        "pydantic": (lambda: model.model_validate(row, strict=True), 50_000),
        "array": (lambda: contract.check_batch(matrix), 20),
        "rows": (lambda: contract.check_batch(rows), 2),
    }
    try:
        import pandas

        frame = pandas.DataFrame(matrix, columns=list(contract.fields))
        cases["frame"] = (lambda: contract.check_batch(frame), 10)
    except ImportError:
        pass
    runs = interleaved(cases)
    ns = {name: statistics.median(times) * 1e9 for name, times in runs.items()}
    print(f"single row, {FEATURES} float features (median of {len(runs['check'])} interleaved repeats):")
    print(f"  contract.check                      {ns['check']:8.0f} ns")
    print(f"  model_validate(strict=True)         {ns['pydantic']:8.0f} ns")
    print(f"  ratio check / pydantic              {ratio(runs, 'check', 'pydantic'):8.2f}")
    print(f"batch, {ROWS} x {FEATURES}, per row:")
    for name, label in (
        ("array", "2-D float ndarray"),
        ("rows", "list of dicts"),
        ("frame", "pandas DataFrame"),
    ):
        if name in runs:
            per_row = ns[name] / ROWS
            versus = ratio(runs, name, "check") / ROWS
            print(f"  {label:<22}{per_row:8.1f} ns/row   ratio to single check {versus:6.3f}")


if __name__ == "__main__":
    main()
