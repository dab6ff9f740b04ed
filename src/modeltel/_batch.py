"""Batches: list of dicts, 2-D numpy arrays (columns in contract order or ``columns=``), DataFrames.

Per-row payload hashes equal the single-row hash of the same row as a dict, so a prediction made
one row at a time and one made in a batch join to the same outcome.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from modeltel._hashing import key_seed

if TYPE_CHECKING:
    from modeltel._plan import Bound


def column_names(b: Bound, width: int) -> list[str]:
    """Names of a 2-D array's columns: ``columns=``, else the contract's fields, else 0..k-1."""
    plan = b.plan
    if plan.columns is not None:
        return list(plan.columns)
    if plan.contract is not None and len(plan.contract.fields) == width:
        return list(plan.contract.fields)
    return [str(i) for i in range(width)]


def _dataframe(features: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(features, pd.DataFrame)


def row_hashes(b: Bound, features: Any) -> list[int]:
    """The 64-bit payload hash of every row."""
    if isinstance(features, np.ndarray) and features.ndim == 2 and features.dtype.kind in "fiub":
        return _matrix_hashes(b, features, column_names(b, features.shape[1]))
    if _dataframe(features):
        names = [str(c) for c in features.columns]
        if all(k in "fiub" for k in features.dtypes.map(lambda d: d.kind)):
            return _matrix_hashes(b, features.to_numpy(dtype=float), names)
        return [b.hasher.hash_int(r) for r in features.to_dict("records")]
    if isinstance(features, np.ndarray):
        names = column_names(b, features.shape[1])
        return [b.hasher.hash_int(dict(zip(names, row.tolist(), strict=True))) for row in features]
    return [b.hasher.hash_int(row) for row in features]


def _matrix_hashes(b: Bound, matrix: np.ndarray[Any, Any], names: list[str]) -> list[int]:
    if matrix.shape[0] == 0:
        return []
    order = sorted(range(len(names)), key=names.__getitem__)
    packed = np.ascontiguousarray(matrix[:, order], dtype="<f8")
    width = packed.shape[1] * 8
    data = memoryview(packed.tobytes())
    seed = key_seed(names)
    if b.hasher.keyed:
        digest = b.hasher.digest
        return [digest(bytes(data[i : i + width]), seed) for i in range(0, len(data), width)]
    xxh3 = xxhash.xxh3_64_intdigest  # one C call per row, no Python frame between
    return [xxh3(data[i : i + width], seed) for i in range(0, len(data), width)]


def row_mapping(b: Bound, features: Any, i: int) -> Any:
    """Row ``i`` as a mapping (for sampled feature records)."""
    if _dataframe(features):
        return features.iloc[i].to_dict()
    if isinstance(features, np.ndarray):
        names = column_names(b, features.shape[1])
        return dict(zip(names, features[i].tolist(), strict=True))
    row = features[i]
    contract = b.plan.contract
    return contract.to_mapping(row) if contract is not None else row
