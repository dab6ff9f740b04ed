"""Reference profiles: the training data's distributions, saved once and compared against later.

A profile is JSON. A numeric column keeps its sorted values when it has at most
``PROFILE_VALUES`` of them and otherwise that many evenly spaced quantiles (real data points),
so PSI bin edges and the KS statistic computed from it match the full column closely. A
categorical column keeps its category counts. A column named ``score`` is the reference for
score drift.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["PROFILE_FORMAT", "PROFILE_VALUES", "Profile", "load_profile", "save_profile"]

PROFILE_FORMAT: Final = "modeltel-profile/1"
PROFILE_VALUES: Final = 10_000


@dataclass(frozen=True)
class Profile:
    """Reference distributions by column: numeric sketches and categorical counts."""

    rows: int
    numeric: dict[str, list[float]] = field(default_factory=dict)
    categorical: dict[str, dict[str, int]] = field(default_factory=dict)


def _columns(data: Any) -> dict[str, list[Any]]:
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return {str(k): list(v) for k, v in data.to_dict(orient="list").items()}
    if isinstance(data, Mapping):
        return {str(k): list(v) for k, v in data.items()}
    rows: Sequence[Mapping[str, Any]] = list(data)
    names = sorted({str(k) for row in rows for k in row})
    return {name: [row.get(name) for row in rows] for name in names}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _sketch(values: Iterable[Any]) -> list[float]:
    finite = np.sort(np.asarray([float(v) for v in values if math.isfinite(float(v))], dtype=np.float64))
    if finite.size <= PROFILE_VALUES:
        return [float(v) for v in finite]
    positions = (np.arange(PROFILE_VALUES) + 0.5) / PROFILE_VALUES
    return [float(v) for v in np.quantile(finite, positions, method="inverted_cdf")]


def build_profile(data: Any) -> Profile:
    """A :class:`Profile` of a DataFrame, a mapping of columns, or an iterable of row dicts."""
    columns = _columns(data)
    profile = Profile(rows=max((len(v) for v in columns.values()), default=0))
    for name, values in columns.items():
        present = [v for v in values if v is not None]
        if present and all(_is_number(v) or isinstance(v, bool) for v in present):
            profile.numeric[name] = _sketch(float(v) for v in present)
        elif present:
            profile.categorical[name] = dict(Counter(str(v) for v in present))
    return profile


def save_profile(data: Any, path: str | os.PathLike[str]) -> Profile:
    """Profile training data (DataFrame, column mapping or row dicts) and write it to ``path`` as JSON.

    >>> modeltel.loop.save_profile(train_df.assign(score=model.predict_proba(X)[:, 1]), "ref.json")
    ... # doctest: +SKIP
    """
    profile = build_profile(data)
    document = {
        "format": PROFILE_FORMAT,
        "rows": profile.rows,
        "numeric": profile.numeric,
        "categorical": profile.categorical,
    }
    Path(path).write_text(json.dumps(document), encoding="utf-8")
    return profile


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a profile written by :func:`save_profile`; ``ValueError`` if it is not one."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("format") != PROFILE_FORMAT:
        raise ValueError(f"{path} is not a modeltel profile ({PROFILE_FORMAT})")
    numeric = {str(k): [float(x) for x in v] for k, v in document.get("numeric", {}).items()}
    categorical = {
        str(k): {str(c): int(n) for c, n in v.items()} for k, v in document.get("categorical", {}).items()
    }
    return Profile(int(document.get("rows", 0)), numeric, categorical)
