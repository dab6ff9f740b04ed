"""A model service whose sampled features carry hostile values; configured by env vars only.

``python wire_features_app.py SCENARIO`` (the feature records tests run it as a subprocess):

* ``mixed``: model ``mixed``, ``SINGLE_CALLS`` single-row calls, the middle one's features
  holding a list nested 50 deep, and one ``BATCH_ROWS``-row batch call with the same value in
  row ``HOSTILE_ROW``;
* ``hostile``: for each value of :data:`HOSTILE`, model ``h-<name>``: ``ORDINARY_CALLS`` ordinary
  calls, one call whose feature ``v`` is the value, and a ``BATCH_ROWS``-row batch call with it
  in row ``HOSTILE_ROW``;
* ``canary``: models ``canary-forbid`` and ``canary-ignore`` (contracts ``extra="forbid"`` and
  ``extra="ignore"``): ordinary calls, one call and one batch row carrying an undeclared
  ``patient_name`` of :data:`CANARY`.

Prints one JSON line when done.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

import modeltel

SINGLE_CALLS = 200
ORDINARY_CALLS = 20
BATCH_ROWS = 10
HOSTILE_ROW = 3
CANARY = "Jane Doe"


def nested_list(depth: int) -> Any:
    """``[[...[1]...]]``: ``depth`` lists."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def nested_map(depth: int) -> Any:
    """``{"k": {"k": ... 1}}``: ``depth`` maps."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


HOSTILE: dict[str, Any] = {
    "list_50_deep": nested_list(50),
    "map_50_deep": nested_map(50),
    "list_17_deep": nested_list(17),
    "list_16_deep": nested_list(16),
    "map_16_deep": nested_map(16),
    "int_past_64_bits": 2**70,
    "int_past_float": -(10**400),
    "lone_surrogate": "a\udc80b",
    "surrogate_key": {"\udc80": 1.0},
    "non_string_keys": {1: "one", (2, 3): "pair", None: 0},
    "bytes": b"\x00\xffmodel",
    "non_finite": [math.nan, math.inf, -math.inf],
    "numpy": np.array([[1.5, math.nan], [2.0, 3.0]]),
}


def _calls(model: str, value: Any, single_calls: int) -> None:
    single = modeltel.instrument(model=model, version="1", tenant="tenant")(lambda features, tenant: 0.5)
    batch = modeltel.instrument(model=model, version="1", tenant="tenant", batch=True)(
        lambda rows, tenant: [0.5] * len(rows)
    )
    for i in range(single_calls):
        single({"x": float(i), "v": value} if i == single_calls // 2 else {"x": float(i)}, tenant="acme")
    rows: list[dict[str, Any]] = [{"x": float(i)} for i in range(BATCH_ROWS)]
    rows[HOSTILE_ROW] = {"x": float(HOSTILE_ROW), "v": value}
    batch(rows, tenant="acme")


class Forbid(BaseModel):
    model_config = ConfigDict(extra="forbid")
    income: float
    age: int


class Ignore(BaseModel):
    model_config = ConfigDict(extra="ignore")
    income: float
    age: int


def _canary(model: str, contract: type[BaseModel]) -> None:
    single = modeltel.instrument(model=model, version="1", contract=contract)(lambda features: 0.5)
    batch = modeltel.instrument(model=model, version="1", contract=contract, batch=True)(
        lambda rows: [0.5] * len(rows)
    )
    for i in range(ORDINARY_CALLS):
        single({"income": float(i), "age": 30})
    single({"income": 99.5, "age": 30, "patient_name": CANARY})
    rows: list[dict[str, Any]] = [{"income": float(i), "age": 30} for i in range(BATCH_ROWS)]
    rows[HOSTILE_ROW] = {**rows[HOSTILE_ROW], "patient_name": CANARY}
    batch(rows)


def main() -> None:
    scenario = sys.argv[1]
    if scenario == "mixed":
        _calls("mixed", nested_list(50), SINGLE_CALLS)
    elif scenario == "hostile":
        for name, value in HOSTILE.items():
            _calls(f"h-{name}", value, ORDINARY_CALLS + 1)
    elif scenario == "canary":
        _canary("canary-forbid", Forbid)
        _canary("canary-ignore", Ignore)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    print(json.dumps({"scenario": scenario}), flush=True)


if __name__ == "__main__":
    main()
