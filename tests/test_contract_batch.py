"""Batch checks over numpy arrays, lists of dicts and DataFrames."""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import BaseModel, Field

from modeltel._contract.contract import Violation, compile_contract


class Numbers(BaseModel):
    amount: float = Field(ge=0, le=100)
    ratio: float = Field(gt=0, lt=1)
    count: int = Field(ge=0)
    bonus: Optional[float] = None  # noqa: UP045


class Mixed(BaseModel):
    amount: float = Field(ge=0)
    country: Literal["DE", "FR"]
    note: Optional[str] = None  # noqa: UP045


NUMBERS = compile_contract(Numbers)
MIXED = compile_contract(Mixed)


def summary(violations: list[Violation]) -> list[tuple[int | None, str, str]]:
    return [(v.row, v.feature, v.kind) for v in violations]


def valid_matrix(rows: int) -> np.ndarray:
    grid = np.linspace(0.1, 0.9, rows)
    return np.column_stack([grid * 100, grid, np.arange(rows, dtype=float), grid])


def test_valid_ndarray_has_no_violations() -> None:
    """A float matrix inside every bound passes."""
    result = NUMBERS.check_batch(valid_matrix(50))
    assert (result.n_rows, result.violations, result.bad_rows.tolist()) == (50, [], [])


def test_ndarray_rows_and_kinds() -> None:
    """Planted range, NaN and inf cells come back at their rows, in row order."""
    matrix = valid_matrix(10)
    matrix[7, 0], matrix[2, 1], matrix[2, 3], matrix[4, 2] = 101.0, np.nan, np.inf, 1.5
    result = NUMBERS.check_batch(matrix)
    assert summary(result.violations) == [
        (2, "ratio", "non_finite"),
        (2, "bonus", "non_finite"),
        (4, "count", "type"),
        (7, "amount", "range"),
    ]
    assert result.bad_rows.tolist() == [2, 4, 7]


def test_ndarray_integral_floats_pass_int_fields() -> None:
    """In a float matrix an int field accepts integral values (a matrix cannot hold both)."""
    matrix = valid_matrix(3)
    matrix[:, 2] = [0.0, 5.0, 7.0]
    assert NUMBERS.check_batch(matrix).violations == []


def test_ndarray_named_columns() -> None:
    """columns= maps array columns to features; absent ones are missing, unknown ones unexpected."""
    matrix = np.array([[1.0, 0.5, 9.0]])
    result = NUMBERS.check_batch(matrix, columns=["amount", "ratio", "mystery"])
    assert summary(result.violations) == [(0, "count", "missing"), (0, "mystery", "unexpected")]


class Bounded(BaseModel):
    low: float = Field(ge=0, le=1)
    high: float = Field(gt=1, lt=10)


BOUNDED = compile_contract(Bounded)


def test_ndarray_valid_values_with_a_column_missing_or_unknown() -> None:
    """Every value within bounds still leaves a column the contract does not know (unexpected on
    every row) or a required one absent (missing on every row)."""
    matrix = np.tile([0.5, 2.0, 1.0], (3, 1))
    result = BOUNDED.check_batch(matrix, columns=["low", "high", "mystery"])
    assert summary(result.violations) == [(i, "mystery", "unexpected") for i in range(3)]
    assert result.bad_rows.tolist() == [0, 1, 2]
    result = BOUNDED.check_batch(matrix[:, :1], columns=["low"])
    assert summary(result.violations) == [(i, "high", "missing") for i in range(3)]
    assert BOUNDED.check_batch(matrix[:, :2]).ok


def test_ndarray_of_the_wrong_width_is_a_violation_of_every_row() -> None:
    """Columns are read by position: a narrower matrix misses the contract's last features, a wider
    one has unexpected columns, in every row (a batch of the wrong shape is a contract problem,
    reported like any other, not an internal error)."""
    narrow = NUMBERS.check_batch(valid_matrix(2)[:, :2])  # amount, ratio; count is required
    assert summary(narrow.violations) == [(0, "count", "missing"), (1, "count", "missing")]
    wide = NUMBERS.check_batch(np.column_stack([valid_matrix(2), np.ones(2)]))
    assert summary(wide.violations) == [(0, "column_4", "unexpected"), (1, "column_4", "unexpected")]


def test_list_of_dicts() -> None:
    """Each row is checked like check(); None is null, NaN is non_finite."""
    rows: list[dict[str, Any]] = [
        {"amount": 1.0, "country": "DE"},
        {"amount": float("nan"), "country": "DE"},
        {"amount": None, "country": "IT", "note": None},
    ]
    result = MIXED.check_batch(rows)
    assert summary(result.violations) == [
        (1, "amount", "non_finite"),
        (2, "amount", "null"),
        (2, "country", "category"),
    ]
    assert result.bad_rows.tolist() == [1, 2]


def test_dataframe_nan_is_missing() -> None:
    """In a DataFrame, NaN means missing: fine for an Optional field; in a required number it is
    non_finite, the kind the same NaN gets from a dict or an ndarray."""
    frame = pd.DataFrame(
        {"amount": [1.0, np.nan, 3.0], "ratio": [0.5] * 3, "count": [1, 2, 3], "bonus": [np.nan, 1.0, np.nan]}
    )
    assert summary(NUMBERS.check_batch(frame).violations) == [(1, "amount", "non_finite")]
    rows = frame.to_dict("records")
    assert [v.kind for v in NUMBERS.check(rows[1]) if v.feature == "amount"] == ["non_finite"]
    matrix = frame[["amount", "ratio", "count"]].to_numpy()
    found = NUMBERS.check_batch(matrix, columns=["amount", "ratio", "count"]).violations
    assert summary(found) == [(1, "amount", "non_finite")]


def test_dataframe_inf_and_ranges() -> None:
    """Infinities are non_finite and bounds hold column-wise in a DataFrame."""
    frame = pd.DataFrame(
        {"amount": [1.0, np.inf], "ratio": [0.0, 0.5], "count": [-1, 2], "bonus": [1.0, 1.0]}
    )
    assert summary(NUMBERS.check_batch(frame).violations) == [
        (0, "ratio", "range"),
        (0, "count", "range"),
        (1, "amount", "non_finite"),
    ]


def test_dataframe_string_columns() -> None:
    """Object and string columns: categories, types and missing values per row."""
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0], "country": ["DE", "IT", None], "note": ["a", None, 7]})
    assert summary(MIXED.check_batch(frame).violations) == [
        (1, "country", "category"),
        (2, "country", "null"),
        (2, "note", "type"),
    ]


def test_dataframe_unexpected_and_missing_columns() -> None:
    """A column the contract lacks is unexpected on every row; an absent required one is missing."""
    frame = pd.DataFrame({"amount": [1.0, 2.0], "extra": ["x", "y"]})
    assert summary(MIXED.check_batch(frame).violations) == [
        (0, "country", "missing"),
        (0, "extra", "unexpected"),
        (1, "country", "missing"),
        (1, "extra", "unexpected"),
    ]


@pytest.mark.parametrize("batch", [[], np.zeros((0, 4)), pd.DataFrame(columns=list(Numbers.model_fields))])
def test_empty_batch(batch: Any) -> None:
    """An empty batch has no violations and no bad rows."""
    result = NUMBERS.check_batch(batch)
    assert (result.n_rows, result.violations, result.bad_rows.size) == (0, [], 0)


def test_one_row_batch_equals_check_for_dicts() -> None:
    """A one-row list batch reports exactly check()'s violations, with row=0."""
    row = {"amount": -1.0, "country": "IT", "note": 3, "odd": 1}
    expected = [(v.feature, v.kind, v.rule, v.value_type) for v in MIXED.check(row)]
    found = MIXED.check_batch([row]).violations
    assert [(v.feature, v.kind, v.rule, v.value_type) for v in found] == expected
    assert {v.row for v in found} == {0}


class FloatsOnly(BaseModel):
    a: float = Field(ge=0, le=100)
    b: float = Field(gt=0, lt=1)
    c: float
    d: Optional[float] = Field(default=None, allow_inf_nan=True)  # noqa: UP045


FLOATS_ONLY = compile_contract(FloatsOnly)
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([0.0, 1.0, 100.0, -0.0])


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float64, (1, 4), elements=FLOATS))
def test_one_row_ndarray_equals_check(matrix: np.ndarray) -> None:
    """For float fields, a one-row matrix gives check()'s violations on that row (row=0)."""
    contract = FLOATS_ONLY
    row = dict(zip(contract.fields, matrix[0], strict=True))
    expected = [(v.feature, v.kind, v.rule, v.value_type, 0) for v in contract.check(row)]
    found = contract.check_batch(matrix).violations
    assert [(v.feature, v.kind, v.rule, v.value_type, v.row) for v in found] == expected


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=400).flatmap(
        lambda rows: hnp.arrays(np.float64, (rows, 4), elements=st.sampled_from([0.5, 0.25, 50.0]))
    ),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3), FLOATS), max_size=4),
)
def test_many_row_ndarray_equals_check_row_by_row(matrix: np.ndarray, bad: list[Any]) -> None:
    """Any number of rows, odd or even, with a few bad cells anywhere (the fast pass folds rows in
    halves): the batch reports exactly what check() finds row by row."""
    matrix = matrix.copy()
    for row, col, value in bad:
        matrix[row % len(matrix), col] = value
    contract = FLOATS_ONLY
    expected = [
        (v.feature, v.kind, v.rule, i)
        for i, values in enumerate(matrix)
        for v in contract.check(dict(zip(contract.fields, values, strict=True)))
    ]
    found = contract.check_batch(matrix).violations
    assert [(v.feature, v.kind, v.rule, v.row) for v in found] == expected


@pytest.mark.parametrize("rows", [65, 66, 127, 129, 399, 1001])
def test_a_bad_cell_is_found_in_every_row_position(rows: int) -> None:
    """The fast pass folds rows in halves (an odd row out joins the first): a single bad cell is
    found wherever it sits, the last row of an odd batch included."""
    for position in sorted({0, 1, rows // 2, rows - 2, rows - 1}):
        matrix = np.full((rows, 4), 0.5)
        matrix[position, 1] = np.nan
        found = FLOATS_ONLY.check_batch(matrix).violations
        assert [(v.feature, v.row) for v in found] == [("b", position)]
