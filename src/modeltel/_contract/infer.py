"""Infer a contract (a pydantic model) from training data: types, widened ranges, categories.

Reading of the data: None and NaN are *missing* (the field becomes Optional with default None);
a key absent from some rows of a list of dicts is missing too. Numeric ranges are the observed
[min, max] (or the given quantiles) widened by ``margin`` x (max - min) on each side, by
``margin`` x max(|value|, 1) for a constant column; int bounds are rounded outward. Literal
categories are sorted, so the version does not depend on row order.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from modeltel._contract.contract import Contract, compile_contract
from modeltel._errors import ConfigurationError


def infer_contract(
    data: Any,
    *,
    names: Sequence[str] | None = None,
    margin: float = 0.1,
    quantiles: tuple[float, float] | None = None,
    max_categories: int = 50,
    name: str = "InferredContract",
) -> type[BaseModel]:
    """A pydantic model describing ``data`` (a DataFrame, a 2-D array with ``names``, or a list of dicts)."""
    if margin < 0 or (quantiles is not None and not 0 <= quantiles[0] < quantiles[1] <= 1):
        raise ValueError("margin must be >= 0 and quantiles (low, high) within [0, 1]")
    fields: dict[str, Any] = {}
    for column, values in _columns(data, names).items():
        fields[column] = _infer_field(column, values, margin, quantiles, max_categories)
    model: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    return model


def infer_contract_from_csv(
    path: str | Path, *, engine: Literal["auto", "pandas", "csv"] = "auto", **kw: Any
) -> Contract:
    """Infer and compile a contract from a CSV file (pandas when installed, else the csv module)."""
    if engine == "pandas" or (engine == "auto" and importlib.util.find_spec("pandas") is not None):
        import pandas

        data: Any = pandas.read_csv(path)
    else:
        with open(path, newline="") as handle:
            data = [_sniff_row(row) for row in csv.DictReader(handle)]
    kw.setdefault("name", _model_name(Path(path).stem))
    return compile_contract(infer_contract(data, **kw))


def read_csv_rows(path: Path) -> list[dict[str, Any]]:
    """A CSV's rows as dicts, cells typed as ``infer_contract_from_csv`` reads them (csv module)."""
    with open(path, newline="") as handle:
        return [_sniff_row(row) for row in csv.DictReader(handle)]


def _model_name(stem: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in stem).title().replace(" ", "")
    return words if words[:1].isalpha() else "InferredContract"


def _sniff_row(row: Mapping[str, str]) -> dict[str, Any]:
    """Give CSV cells the type they read as: empty is missing; then int, float, bool, else str."""
    return {key: _sniff(value) for key, value in row.items()}


def _sniff(text: str) -> Any:
    if text == "":
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    lowered = text.lower()
    return {"true": True, "false": False}.get(lowered, text)


def _columns(data: Any, names: Sequence[str] | None) -> dict[str, list[Any]]:
    """The data as name -> list of Python values (None for missing)."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        return {str(c): _python_values(data[c].to_numpy()) for c in data.columns}
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise ValueError(f"data must be 2-D, got shape {data.shape}")
        labels = list(names) if names is not None else [f"x{j}" for j in range(data.shape[1])]
        if len(labels) != data.shape[1]:
            raise ValueError(f"{len(labels)} names for {data.shape[1]} columns")
        return {label: _python_values(data[:, j]) for j, label in enumerate(labels)}
    return _columns_of_rows(data)


def _columns_of_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    rows = list(rows)
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return {key: [_python(row.get(key)) for row in rows] for key in keys}


def _python_values(values: np.ndarray[Any, Any]) -> list[Any]:
    return [_python(v) for v in values.tolist()]


def _python(value: Any) -> Any:
    """numpy scalars become Python values; NaN, NA and NaT become None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    pandas = sys.modules.get("pandas")
    if pandas is not None and (value is pandas.NA or value is pandas.NaT):
        return None
    return value


def _infer_field(
    column: str, values: list[Any], margin: float, quantiles: tuple[float, float] | None, max_categories: int
) -> tuple[Any, Any]:
    present = [v for v in values if v is not None]
    if not present:
        raise ConfigurationError(f"column {column!r} has no values; cannot infer its type")
    annotation, options = _infer_type(column, present, margin, quantiles, max_categories)
    if len(present) < len(values):
        return Optional[annotation], Field(default=None, **options)  # noqa: UP045 (runtime type expression)
    return annotation, Field(**options)


def _infer_type(
    column: str, present: list[Any], margin: float, quantiles: tuple[float, float] | None, max_categories: int
) -> tuple[Any, dict[str, Any]]:
    if all(isinstance(v, bool) for v in present):
        return bool, {}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        low, high = _range(present, margin, quantiles)
        return int, {"ge": math.floor(low), "le": math.ceil(high)}
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        finite = [v for v in present if math.isfinite(v)]
        if len(finite) < len(present):  # infinities in training data: keep them, leave the range open
            return float, {"allow_inf_nan": True}
        low, high = _range(finite, margin, quantiles)
        return float, {"ge": low, "le": high}
    if all(isinstance(v, str) for v in present):
        seen = sorted(set(present))
        if len(seen) <= max_categories:
            return Literal.__getitem__(tuple(seen)), {}
        return str, {}
    kinds = sorted({type(v).__name__ for v in present})
    raise ConfigurationError(f"column {column!r} mixes value types {kinds}; cannot infer one type")


def _range(values: list[Any], margin: float, quantiles: tuple[float, float] | None) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    low, high = (
        (float(array.min()), float(array.max()))
        if quantiles is None
        else (float(np.quantile(array, quantiles[0])), float(np.quantile(array, quantiles[1])))
    )
    width = high - low if high > low else max(abs(low), 1.0)
    return low - margin * width, high + margin * width
