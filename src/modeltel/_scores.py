"""Turn whatever predict returned into a score (single row) or an array of scores (batch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_NUMBER = (float, int)


def score_of(output: Any) -> float | None:
    """The score of one prediction, or None when the output carries none.

    A float or int, a numpy scalar, a 0-d array, a 1-element array or list; two class
    probabilities give the positive class's; more give the largest; a dict of class
    probabilities gives the largest; an object with a ``score`` attribute gives that.
    """
    t = type(output)
    if t is float:
        return output  # type: ignore[no-any-return]
    if t is int:
        return float(output)
    if isinstance(output, (bool, np.bool_)) or output is None or isinstance(output, str):
        return None
    if isinstance(output, (np.floating, np.integer)):
        return float(output)
    if isinstance(output, (np.ndarray, list, tuple)):
        return _score_of_vector(np.asarray(output, dtype=float).ravel())
    if isinstance(output, Mapping):
        values = [float(v) for v in output.values() if isinstance(v, (*_NUMBER, np.number))]
        return max(values) if values else None
    score = getattr(output, "score", None)
    return None if score is None or score is output else score_of(score)


def _score_of_vector(v: np.ndarray[Any, Any]) -> float | None:
    if v.size == 0:
        return None
    if v.size == 1:
        return float(v[0])
    if v.size == 2:
        return float(v[1])
    return float(v.max())


def split_finite(scores: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], int]:
    """The finite scores (recorded in the histogram) and how many were NaN or infinite."""
    mask = np.isfinite(scores)
    finite = scores if mask.all() else scores[mask]
    return finite, int(scores.size - finite.size)


def scores_of_batch(output: Any, n_rows: int) -> np.ndarray[Any, Any] | None:
    """Per-row scores of a batch prediction (float64, length ``n_rows``), or None."""
    if output is None:
        return None
    if isinstance(output, (np.ndarray, list, tuple)) or hasattr(output, "to_numpy"):
        raw = output.to_numpy() if hasattr(output, "to_numpy") else output
        try:
            arr = np.asarray(raw, dtype=float)
        except (TypeError, ValueError):
            return _scores_row_by_row(raw, n_rows)
        return _batch_from_array(arr, n_rows)
    return None


def _batch_from_array(arr: np.ndarray[Any, Any], n_rows: int) -> np.ndarray[Any, Any] | None:
    if arr.ndim == 1 and arr.shape[0] == n_rows:
        return arr
    if arr.ndim == 2 and arr.shape[0] == n_rows:
        if arr.shape[1] == 1:
            return arr[:, 0]
        if arr.shape[1] == 2:
            return arr[:, 1]
        return arr.max(axis=1)  # type: ignore[no-any-return]
    return None


def _scores_row_by_row(rows: Any, n_rows: int) -> np.ndarray[Any, Any] | None:
    scores = [score_of(r) for r in rows]
    if len(scores) != n_rows:
        return None
    return np.array([np.nan if s is None else s for s in scores], dtype=float)
