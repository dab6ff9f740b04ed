"""Contract inference from data, and the JSON round trip of contracts."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, Field

from modeltel._contract.contract import Contract, compile_contract, sensitive
from modeltel._contract.infer import infer_contract, infer_contract_from_csv
from modeltel._errors import ConfigurationError


def training_frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "amount": rng.uniform(10, 500, rows),
            "items": rng.integers(1, 9, rows),
            "country": rng.choice(["DE", "FR", "US"], rows),
            "is_new": rng.choice([True, False], rows),
            "discount": np.where(rng.random(rows) < 0.2, np.nan, rng.uniform(0, 0.5, rows)),
        }
    )


def test_inferred_contract_accepts_its_training_set() -> None:
    """A contract inferred from a frame passes that frame, row by row and as a batch."""
    frame = training_frame()
    contract = compile_contract(infer_contract(frame))
    assert contract.check_batch(frame).violations == []
    assert contract.check(frame.iloc[0].to_dict() | {"discount": None}) == []


def test_inferred_types_and_nullability() -> None:
    """Types follow the columns; a column with NaN becomes Optional with default None."""
    fields = infer_contract(training_frame()).model_fields
    assert [fields[n].annotation for n in ("amount", "items", "is_new")] == [float, int, bool]
    assert fields["country"].annotation == Literal["DE", "FR", "US"]
    assert fields["discount"].annotation == Optional[float] and not fields["discount"].is_required()  # noqa: UP045


def test_inferred_contract_rejects_scaled_values() -> None:
    """Values ten times the training range fall outside the widened bounds."""
    frame = training_frame()
    contract = compile_contract(infer_contract(frame))
    shifted = frame.assign(amount=frame["amount"] * 10)
    assert {v.feature for v in contract.check_batch(shifted).violations} == {"amount"}


def test_inferred_contract_rejects_new_category() -> None:
    """A category never seen in training is a category violation."""
    contract = compile_contract(infer_contract(training_frame()))
    row = training_frame().iloc[0].to_dict() | {"country": "IT", "discount": None}
    assert [(v.feature, v.kind) for v in contract.check(row)] == [("country", "category")]


def bounds(model: type[BaseModel]) -> dict[str, tuple[Any, Any]]:
    return {s.name: (s.ge, s.le) for s in compile_contract(model).specs}


def test_margin_widens_observed_range() -> None:
    """Bounds are [min, max] widened by margin x (max - min); int bounds rounded outward."""
    model = infer_contract([{"x": 0.0, "n": 1}, {"x": 10.0, "n": 4}], margin=0.25)
    assert bounds(model) == {"x": (0.0 - 0.25 * 10, 10.0 + 0.25 * 10), "n": (0, 5)}


def test_quantiles_trim_outliers() -> None:
    """With quantiles the range ignores the extreme tail of the training data."""
    values = [{"x": float(v)} for v in [*range(1000), 10**6]]
    assert bounds(infer_contract(values, quantiles=(0.0, 0.99), margin=0.0))["x"][1] < 10**6


def test_many_strings_stay_plain_str() -> None:
    """A string column with more distinct values than max_categories is a plain str."""
    model = infer_contract([{"s": f"v{i}"} for i in range(5)], max_categories=4)
    assert model.model_fields["s"].annotation is str


def test_ndarray_with_names() -> None:
    """A 2-D array plus names infers one field per column."""
    model = infer_contract(np.array([[1.0, 2.0], [3.0, 4.0]]), names=["a", "b"])
    assert list(model.model_fields) == ["a", "b"]


def test_mixed_column_is_refused() -> None:
    """A column holding numbers and strings cannot be inferred; the error names it."""
    with pytest.raises(ConfigurationError, match="'x'"):
        infer_contract([{"x": 1.0}, {"x": "a"}])


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class HandWritten(BaseModel):
    amount: float = Field(gt=0, lt=1e6)
    count: int = Field(ge=0, le=10)
    country: Literal["DE", "FR"]
    color: Color = Color.RED
    email: str = sensitive()
    ratio: Optional[float] = Field(default=None, allow_inf_nan=True)  # noqa: UP045
    vector: list[float] = Field(default_factory=list)


SAMPLES: list[dict[str, Any]] = [
    {"amount": 1.0, "count": 3, "country": "DE", "email": "e"},
    {"amount": 0.0, "count": 11, "country": "IT", "email": 1, "color": "green"},
    {
        "amount": 5.0,
        "count": 3,
        "country": "FR",
        "email": "e",
        "ratio": float("nan"),
        "vector": [1.0, float("inf")],
    },
    {"amount": True, "count": None, "surprise": 1},
]


@pytest.mark.parametrize("model", [HandWritten, infer_contract(training_frame())])
def test_json_round_trip_is_lossless(model: type[BaseModel]) -> None:
    """from_json(to_json()) has the same version, sensitivity and verdicts on samples."""
    contract = compile_contract(model)
    restored = Contract.from_json(contract.to_json())
    assert (restored.version, restored.fields, restored.sensitive) == (
        contract.version,
        contract.fields,
        contract.sensitive,
    )
    samples = [*SAMPLES, *training_frame(5).to_dict("records")]
    assert [restored.check(s) for s in samples] == [contract.check(s) for s in samples]


def test_from_json_refuses_other_documents() -> None:
    """Text that is not a contract document raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Contract.from_json('{"fields": []}')


@pytest.mark.parametrize("engine", ["pandas", "csv"])
def test_csv_inference(tmp_path: Path, engine: Any) -> None:
    """A CSV infers the same kinds of fields with pandas or the csv module, and accepts its rows."""
    path = tmp_path / "train_data.csv"
    path.write_text("amount,items,country,note\n12.5,3,DE,\n40.0,5,FR,x\n33.1,1,DE,y\n")
    contract = infer_contract_from_csv(path, engine=engine)
    assert contract.model.__name__ == "TrainData"
    kinds = {s.name: (s.kind, s.nullable) for s in contract.specs}
    assert kinds == {
        "amount": ("float", False),
        "items": ("int", False),
        "country": ("literal", False),
        "note": ("literal", True),
    }
    assert contract.check({"amount": 20.0, "items": 2, "country": "FR", "note": None}) == []
