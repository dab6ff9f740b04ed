"""The instrumented predict methods of ``instrument_model`` (what goes in, what the score is),
and :class:`ModelInfo`, what ``_models`` read from a model to build them.

Scores, per method: ``predict_proba``, the positive class's probability (two classes) or the
top class's (more); ``decision_function``, the margin (the top one for several classes);
``predict``, the output of a regressor, and of a classifier the label itself where labels are
numbers (a hard 0/1 prediction), no score otherwise. ONNX Runtime: the probabilities output when
the model has one (skl2onnx's ``probabilities``, a tensor or a list of class->probability maps),
else the first output. MLflow: the pyfunc output, read like ``predict`` or ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modeltel._instrument import instrument


@dataclass(frozen=True)
class ModelInfo:
    """What a model declares about itself."""

    family: str
    names: tuple[str, ...]
    kinds: tuple[str, ...]  # "float", "int", "str" or "bool" per feature; "" where unknown
    methods: tuple[str, ...]
    classifier: bool = False
    name: str | None = None
    version: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    frame: bool = False  # fitted on a DataFrame: a list of dicts goes in as one
    onnx_inputs: tuple[str, ...] = ()  # ONNX: the input tensors, in feed order


def instrumented_methods(
    model: Any, info: ModelInfo, name: str, version: str, contract: Any, options: dict[str, Any]
) -> dict[str, Callable[..., Any]]:
    """One instrumented callable per predict method ``info`` lists."""
    settings = {
        "model": name,
        "version": version,
        "contract": contract,
        "batch": True,
        "columns": list(info.names),
    }
    settings.update(options)
    if info.attributes:  # what the registry told (an MLflow run id): ml.model.* attributes too
        settings["_extra_targets"] = dict(info.attributes)
    if info.family == "onnxruntime":
        return {"run": _onnx_run(model, info, settings)}
    return {method: _method(model, info, method, settings) for method in info.methods}


def _method(model: Any, info: ModelInfo, method: str, settings: dict[str, Any]) -> Callable[..., Any]:
    bound = getattr(model, method)
    to_input = _converter(info)

    def call(features: Any, *args: Any, **kwargs: Any) -> Any:
        return bound(to_input(features), *args, **kwargs)

    call.__name__ = method
    score = _score_fn(method, info)
    return instrument(score=score, **settings)(call)


def _converter(info: ModelInfo) -> Callable[[Any], Any]:
    """A list of dicts as the model takes it (the frame it was fitted on, or an array in column
    order); anything else unchanged."""
    names = list(info.names)

    def convert(features: Any) -> Any:
        if not (isinstance(features, list) and features and isinstance(features[0], Mapping)):
            return features
        if info.frame:
            import pandas as pd

            return pd.DataFrame(features, columns=names)
        return np.array([[row.get(n, np.nan) for n in names] for row in features], dtype=float)

    return convert


def _score_fn(method: str, info: ModelInfo) -> Callable[[Any], Any]:
    if method in ("predict_proba", "decision_function"):
        return _top_or_positive
    if info.family == "mlflow":
        return _pyfunc_score
    return _label_score if info.classifier else _as_array


def _as_array(output: Any) -> Any:
    values = np.asarray(output)
    return values.reshape(len(values), -1)[:, 0] if values.ndim > 1 else values


def _top_or_positive(output: Any) -> Any:
    """The positive class's column of two, the largest of more; a 1-D output as it is."""
    values = np.asarray(output, dtype=float)
    if values.ndim == 2:
        return values[:, 1] if values.shape[1] == 2 else values.max(axis=1)
    return values


def _label_score(output: Any) -> Any:
    labels = np.asarray(output)
    if labels.dtype.kind in "biuf":
        return labels.astype(float)
    return np.full(len(labels), np.nan)


def _pyfunc_score(output: Any) -> Any:
    values = output.to_numpy() if hasattr(output, "to_numpy") else np.asarray(output)
    if values.ndim == 2 and values.shape[1] > 1:
        return _top_or_positive(values)
    return _label_score(_as_array(values))


def _onnx_run(session: Any, info: ModelInfo, settings: dict[str, Any]) -> Callable[..., Any]:
    outputs = [o.name for o in session.get_outputs()]
    inputs = list(info.onnx_inputs)

    def features_of(output_names: Any, input_feed: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        if len(inputs) == 1:
            return np.asarray(input_feed[inputs[0]])
        return np.column_stack([np.asarray(input_feed[i]).reshape(-1) for i in inputs])

    def run(
        output_names: Sequence[str] | None, input_feed: Mapping[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        return session.run(output_names, input_feed, *args, **kwargs)

    def score(result: Any) -> Any:
        return _onnx_score(result, outputs)

    settings = {**settings, "features": features_of}
    return instrument(score=score, **settings)(run)


def _onnx_score(result: Sequence[Any], outputs: Sequence[str]) -> Any:
    """The probabilities output (tensor or list of maps) where there is one, else the first."""
    chosen = next((r for r, name in zip(result, outputs, strict=False) if "prob" in name), None)
    if chosen is None:
        return _as_array(result[0])
    if isinstance(chosen, list) and chosen and isinstance(chosen[0], Mapping):
        keys = sorted(chosen[0])
        chosen = [[row[k] for k in keys] for row in chosen]
    return _top_or_positive(chosen)
