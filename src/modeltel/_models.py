"""``instrument_model``: a served model instrumented in one line, its contract read from the model.

The libraries people serve models with already know the model's features, so modeltel reads
them instead of asking:

* scikit-learn estimators and Pipelines, and XGBoost and LightGBM through their scikit-learn
  APIs: ``feature_names_in_`` (or ``n_features_in_``, or the booster's feature names), the
  encoders of a leading ``ColumnTransformer`` for which columns are categories, ``classes_``;
* an ONNX Runtime ``InferenceSession``: its inputs' names, shapes and element types;
* an MLflow pyfunc model from a registry URI (``models:/fraud/3``, ``models:/fraud@champion``):
  name and version from the registry, the run id (``ml.model.run_id``), the signature's columns.

The result wraps the model: its predict methods (``predict``, ``predict_proba``,
``decision_function``; ``run`` for ONNX Runtime) are instrumented as batch calls, everything
else is the model's own. Features go in as the model takes them (DataFrame, ndarray) or as a
list of dicts, which is turned into the frame or array the model was fitted on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from modeltel import _names as n
from modeltel._errors import ConfigurationError
from modeltel._model_calls import ModelInfo, instrumented_methods

__all__ = ["InstrumentedModel", "ModelInfo", "instrument_model", "read_model"]

_KINDS: dict[str, type] = {"float": float, "int": int, "str": str, "bool": bool}
_SKLEARN_METHODS = ("predict", "predict_proba", "decision_function")


def read_model(model: Any) -> ModelInfo:
    """The family, features and predict methods ``model`` declares (ConfigurationError if none)."""
    module = type(model).__module__.split(".")[0]
    if module in ("sklearn", "xgboost", "lightgbm"):
        return _sklearn_like(model, module)
    if module == "onnxruntime":
        return _onnx(model)
    if module == "mlflow":
        return _mlflow(model, None)
    raise ConfigurationError(
        f"instrument_model: {type(model).__module__}.{type(model).__name__} is not a model modeltel "
        "reads (scikit-learn, XGBoost, LightGBM, ONNX Runtime, MLflow pyfunc); "
        "use @modeltel.instrument on your predict function"
    )


def _sklearn_like(model: Any, family: str) -> ModelInfo:
    names = _sklearn_names(model)
    kinds = _sklearn_kinds(model, names)
    methods = tuple(m for m in _SKLEARN_METHODS if _has(model, m))
    classifier = getattr(model, "_estimator_type", None) == "classifier" or hasattr(model, "classes_")
    frame = getattr(model, "feature_names_in_", None) is not None
    return ModelInfo(family, names, kinds, methods, classifier, frame=frame)


def _has(model: Any, method: str) -> bool:
    try:
        return callable(getattr(model, method, None))
    except AttributeError:  # a Pipeline whose last step lacks it
        return False


def _sklearn_names(model: Any) -> tuple[str, ...]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return tuple(str(n) for n in names)
    booster = getattr(model, "get_booster", None) or getattr(model, "booster_", None)
    booster_names = None
    if callable(booster):
        booster_names = booster().feature_names
    elif booster is not None:
        booster_names = booster.feature_name()
    if booster_names:
        return tuple(str(n) for n in booster_names)
    count = getattr(model, "n_features_in_", None)
    if count is None:
        raise ConfigurationError("instrument_model: the model is not fitted (no n_features_in_)")
    return tuple(f"x{i}" for i in range(int(count)))


def _sklearn_kinds(model: Any, names: tuple[str, ...]) -> tuple[str, ...]:
    """Numbers, except the columns a leading ColumnTransformer hands to a categorical encoder."""
    first = model.steps[0][1] if hasattr(model, "steps") else model
    transformers = getattr(first, "transformers_", None)
    if transformers is None:
        return ("float",) * len(names)
    kinds = dict.fromkeys(names, "float")
    for _, transformer, columns in transformers:
        kind = type(transformer).__name__
        if kind in ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder"):
            for column in _column_names(columns, names):
                kinds[column] = "str"
    return tuple(kinds[n] for n in names)


def _column_names(columns: Any, names: tuple[str, ...]) -> list[str]:
    selected = list(columns) if not isinstance(columns, str) else [columns]
    return [names[c] if isinstance(c, (int, np.integer)) else str(c) for c in selected]


_ONNX_KINDS = {
    "tensor(float)": "float",
    "tensor(double)": "float",
    "tensor(float16)": "float",
    "tensor(int64)": "int",
    "tensor(int32)": "int",
    "tensor(string)": "str",
    "tensor(bool)": "bool",
}


def _onnx(session: Any) -> ModelInfo:
    inputs = session.get_inputs()
    if len(inputs) == 1 and len(inputs[0].shape) == 2 and isinstance(inputs[0].shape[1], int):
        width = inputs[0].shape[1]
        names = tuple(f"{inputs[0].name}_{i}" for i in range(width))
        kinds = (_ONNX_KINDS.get(inputs[0].type, ""),) * width
    else:  # one tensor per column, [None, 1] each
        names = tuple(i.name for i in inputs)
        kinds = tuple(_ONNX_KINDS.get(i.type, "") for i in inputs)
    outputs = [o.name for o in session.get_outputs()]
    classifier = any("prob" in o for o in outputs)
    return ModelInfo(
        "onnxruntime", names, kinds, ("run",), classifier, onnx_inputs=tuple(i.name for i in inputs)
    )


_MLFLOW_KINDS = {
    "double": "float",
    "float": "float",
    "long": "int",
    "integer": "int",
    "string": "str",
    "boolean": "bool",
}


def _mlflow(model: Any, uri: str | None) -> ModelInfo:
    meta = model.metadata
    schema = meta.get_input_schema()
    if schema is None or not schema.has_input_names():
        raise ConfigurationError(
            "instrument_model: the MLflow model has no signature with column names; log it with "
            "signature=mlflow.models.infer_signature(X, model.predict(X))"
        )
    columns = schema.inputs
    names = tuple(c.name for c in columns)
    kinds = tuple(_MLFLOW_KINDS.get(str(getattr(c.type, "name", c.type)), "") for c in columns)
    # Declared targets travel as ml.model.<key>: the run id as ml.model.run_id.
    attributes = {n.MODEL_RUN_ID.removeprefix("ml.model."): meta.run_id} if meta.run_id else {}
    name = version = None
    if uri is not None:
        name, version = _registry_version(uri)
    return ModelInfo("mlflow", names, kinds, ("predict",), False, name, version, attributes, frame=True)


def _registry_version(uri: str) -> tuple[str, str]:
    """``models:/<name>/<version>`` or ``models:/<name>@<alias>``: the name and version number."""
    path = uri[len("models:/") :]
    if "@" in path:
        name, alias = path.split("@", 1)
        from mlflow import MlflowClient

        return name, str(MlflowClient().get_model_version_by_alias(name, alias).version)
    name, _, version = path.partition("/")
    if not version.isdigit():
        from mlflow import MlflowClient

        found = MlflowClient().get_latest_versions(name) if version == "latest" else []
        if not found:
            raise ConfigurationError(
                f"instrument_model: {uri!r}: expected models:/<name>/<version> or @<alias>"
            )
        version = str(max(int(v.version) for v in found))
    return name, version


def contract_for(info: ModelInfo, name: str) -> type[BaseModel] | None:
    """A contract of the declared columns and types (extra columns are violations); None where a
    column's type is unknown. A column name that is no Python identifier becomes a field alias."""
    if not info.names or any(kind not in _KINDS for kind in info.kinds):
        return None
    fields: dict[str, Any] = {}
    for position, (feature, kind) in enumerate(zip(info.names, info.kinds, strict=True)):
        plain = feature.isidentifier() and not feature.startswith("_")
        fields[feature if plain else f"feature_{position}"] = (
            _KINDS[kind],
            ... if plain else Field(alias=feature),
        )
    title = "".join(part.title() for part in name.replace("-", "_").split("_") if part.isalnum())
    model: type[BaseModel] = create_model(
        f"{title or 'Model'}Features", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


class InstrumentedModel:
    """A model whose predict methods record telemetry; every other attribute is the model's.

    ``model`` is the model itself; ``info`` what modeltel read from it.
    """

    def __init__(self, model: Any, info: ModelInfo, methods: dict[str, Callable[..., Any]]) -> None:
        self.model = model
        self.info = info
        for method, call in methods.items():
            setattr(self, method, call)

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "info") or name.startswith("__"):  # not yet set (copy, unpickling)
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"<modeltel instrumented {self.info.family} model {self.model!r}>"


def instrument_model(
    model: Any,
    *,
    name: str | None = None,
    version: str | None = None,
    contract: Any = None,
    **options: Any,
) -> InstrumentedModel:
    """Instrument a served model's predict methods in one line.

    ``model`` is a scikit-learn estimator or Pipeline, an XGBoost or LightGBM model (their
    scikit-learn APIs), an ONNX Runtime ``InferenceSession``, an MLflow pyfunc model, or an
    MLflow registry URI (``"models:/fraud@champion"``, loaded here; name and version from the
    registry). The contract is read from the model unless ``contract=`` gives one; other keyword
    arguments are :func:`modeltel.instrument`'s (``tenant=``, ``rate_limits=``, ``owner=``, ...).

    >>> fitted = LogisticRegression().fit(X, y)  # doctest: +SKIP
    >>> clf = modeltel.instrument_model(fitted, name="churn", version="4")  # doctest: +SKIP
    >>> clf.predict_proba(X_new)  # doctest: +SKIP
    """
    if isinstance(model, str):
        if not model.startswith("models:/"):
            raise ConfigurationError(f"instrument_model: {model!r}: a string must be an MLflow models:/ URI")
        uri, model = model, importlib.import_module("mlflow.pyfunc").load_model(model)
        info = _mlflow(model, uri)
    else:
        info = read_model(model)
    name = name or info.name
    version = version or info.version
    if not name or not version:
        raise ConfigurationError(
            "instrument_model() needs name= and version= (read from the registry for MLflow URIs)"
        )
    if contract is None:
        contract = contract_for(info, name)
    methods = instrumented_methods(model, info, name, str(version), contract, options)
    return InstrumentedModel(model, info, methods)
