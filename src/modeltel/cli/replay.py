"""``modeltel replay``: sampled production feature records, run through the offline pipeline."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modeltel import _names as n
from modeltel._contract.parity import ReplayReport, replay
from modeltel._features import feature_rows
from modeltel.loop._collector import read_collected


def feature_records(folder: str | Path, model: str, version: str | None = None) -> Iterator[dict[str, Any]]:
    """The sampled predictions of one model in an OTLP-JSON folder's ``ml.features`` records.

    Each is ``{"features", "score", "prediction_id", "tenant", "payload_hash"}``; a batch call's
    record gives one per sampled row, its id ``<call id>/<row>`` as in the prediction records.
    """
    for log in read_collected(Path(folder)).logs:
        attrs = log["attributes"]
        if log["event_name"] != n.EVENT_FEATURES or attrs.get(n.MODEL_NAME) != model:
            continue
        if version is not None and attrs.get(n.MODEL_VERSION) != version:
            continue
        for row in feature_rows(attrs, log["body"]):
            yield {key: row[key] for key in ("features", "score", "prediction_id", "tenant", "payload_hash")}


def load_callable(spec: str) -> Callable[..., Any]:
    """``package.module:function`` (importable from the current directory too)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{spec!r}: expected module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    fn = getattr(importlib.import_module(module_name), attr)
    if not callable(fn):
        raise ValueError(f"{spec!r} is not callable")
    return fn  # type: ignore[no-any-return]


def replay_folder(
    folder: str | Path,
    model: str,
    *,
    feature_fn: Callable[[dict[str, Any]], Any] | None = None,
    predict_fn: Callable[[Any], Any] | None = None,
    version: str | None = None,
    rtol: float = 1e-9,
) -> ReplayReport:
    """Replay a folder's sampled records: ``feature_fn(record)`` recomputes the features offline
    (from the record's id, tenant or logged features), ``predict_fn`` rescores them."""
    records: Iterator[dict[str, Any]] = feature_records(folder, model, version)
    if feature_fn is not None:
        records = ({**r, "raw": r} for r in records)
    return replay(records, feature_fn or (lambda r: r), predict_fn, rtol=rtol)
