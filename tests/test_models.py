"""``modeltel.instrument_model``: scikit-learn, XGBoost, LightGBM, ONNX Runtime and MLflow models in
one line, the contract read from the model, telemetry checked end to end (in memory).

Models are trained here on data the libraries ship or generate; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import modeltel
from modeltel import _names as n
from modeltel.testing import Capture, capture


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def _violations(c: Capture) -> dict[tuple[str, str], float]:
    return {
        (p.attributes[n.FEATURE_NAME], p.attributes[n.VIOLATION_KIND]): p.value
        for p in c.metric_points(n.M_VIOLATIONS)
    }


def _scores(c: Capture) -> list[float]:
    """Every recorded row's score, calls in the order they were made, rows in batch order."""
    rows = c.prediction_rows()

    def order(row: dict[str, Any]) -> tuple[str, int]:
        call, _, index = row["prediction_id"].partition("/")
        return call, int(index or 0)

    return [row["score"] for row in sorted(rows, key=order)]


def test_a_scikit_learn_classifier_in_one_line(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    """Column names with spaces, read from the model; predict_proba's positive class is the score,
    each row a prediction record; a list of dicts goes in as the frame the model was fitted on."""
    X, y = cancer
    fitted = LogisticRegression(max_iter=5000).fit(X[:400], y[:400])
    with capture() as c:
        model = modeltel.instrument_model(fitted, name="cancer", version="1")
        proba = model.predict_proba(X[400:])
        labels = model.predict(X[400:410].to_dict("records"))
        spans = c.spans
        scores = _scores(c)
        assert _violations(c) == {}
    assert model.classes_.tolist() == [0, 1]  # everything else is the model's own
    assert model.info.names[:2] == ("mean radius", "mean texture")
    assert labels.tolist() == fitted.predict(X[400:410]).tolist()
    assert [s.attributes[n.BATCH_SIZE] for s in spans] == [169, 10]
    assert {s.attributes[n.MODEL_NAME] for s in spans} == {"cancer"}
    assert np.allclose(scores[:169], proba[:, 1])
    assert scores[169:] == [float(v) for v in labels]  # predict: the 0/1 label


def test_the_inferred_contract_catches_broken_rows(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    """Missing, extra and non-numeric features are violations named by feature; with
    on_violation="reject" the call raises ContractViolation before the model sees them."""
    X, y = cancer
    fitted = LogisticRegression(max_iter=5000).fit(X, y)
    rows = X[:3].to_dict("records")
    del rows[0]["mean radius"]
    rows[1]["surprise"] = 1.0
    rows[2]["worst area"] = "large"
    with capture() as c:
        model = modeltel.instrument_model(fitted, name="cancer", version="1", on_violation="reject")
        with pytest.raises(modeltel.ContractViolation) as raised:
            model.predict_proba(rows)
        found = _violations(c)
    assert found == {("mean radius", "missing"): 1, ("surprise", "unexpected"): 1, ("worst area", "type"): 1}
    assert list(raised.value.rows) == [0, 1, 2]


def test_a_pipeline_with_categories_and_a_regressor() -> None:
    """A ColumnTransformer's one-hot columns are categories (strings), the rest numbers; a
    regressor's prediction is its score."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.gamma(2, 30, 300), "country": rng.choice(["DE", "FR", "US"], 300)})
    target = frame["amount"] * 0.1 + (frame["country"] == "DE") * 2
    encode = ColumnTransformer([("cat", OneHotEncoder(), ["country"])], remainder="passthrough")
    fitted = make_pipeline(encode, LinearRegression()).fit(frame, target)
    with capture() as c:
        model = modeltel.instrument_model(fitted, name="spend", version="2")
        out = model.predict([{"amount": 10.0, "country": "FR"}, {"amount": 20.0, "country": "DE"}])
        assert _violations(c) == {}
        with pytest.raises((TypeError, ValueError)):  # the model's own error: the policy records
            model.predict([{"amount": "ten", "country": 3}])
        found = _violations(c)
        scores = _scores(c)
    assert model.info.kinds == ("float", "str")
    assert scores[:2] == pytest.approx(out.tolist())
    assert found == {("amount", "type"): 1, ("country", "type"): 1}


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_xgboost_and_lightgbm_through_their_scikit_learn_apis(library: str) -> None:
    pytest.importorskip(library)
    X, y = make_classification(n_samples=400, n_features=6, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    if library == "xgboost":
        from xgboost import XGBClassifier

        fitted: Any = XGBClassifier(n_estimators=20, max_depth=3).fit(frame, y)
    else:
        from lightgbm import LGBMClassifier

        fitted = LGBMClassifier(n_estimators=20, verbose=-1).fit(frame, y)
    with capture() as c:
        model = modeltel.instrument_model(fitted, name=library, version="1")
        proba = model.predict_proba(frame[:50])
        scores = _scores(c)
        (span,) = c.spans
    assert model.info.family == library and model.info.names == tuple(frame.columns)
    assert np.allclose(scores, proba[:, 1])
    assert span.attributes[n.BATCH_SIZE] == 50


def test_an_onnx_runtime_session(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    """Input name, width and element type from the session; the probabilities output is the
    score; a batch of the wrong width is a violation, not a crash of the caller's telemetry."""
    ort = pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    X, y = cancer
    fitted = LogisticRegression(max_iter=5000).fit(X.to_numpy(), y)
    onnx_model = skl2onnx.convert_sklearn(
        fitted,
        initial_types=[("input", FloatTensorType([None, 30]))],
        options={id(fitted): {"zipmap": False}},
    )
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = X[:20].to_numpy(dtype=np.float32)
    with capture() as c:
        model = modeltel.instrument_model(session, name="cancer-onnx", version="1")
        _, probabilities = model.run(None, {"input": batch})
        scores = _scores(c)
        assert _violations(c) == {}
        with pytest.raises(Exception):  # noqa: B017 - ONNX Runtime's own error for a bad shape
            model.run(None, {"input": batch[:, :29]})
        found = _violations(c)
    assert model.info.names[0] == "input_0" and len(model.info.names) == 30
    assert np.allclose(scores, probabilities[:, 1], atol=1e-6)
    assert found.get(("input_29", "missing")) == 20


# MLflow's own stack (SQLAlchemy, alembic, its model loaders) warns about itself; not ours to fix.
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")
def test_an_mlflow_model_from_a_local_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``models:/name@alias``: name and version from the registry, the run id on every span and
    record, the contract from the signature."""
    mlflow = pytest.importorskip("mlflow")
    from mlflow.models import infer_signature

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    X, y = make_classification(n_samples=300, n_features=4, random_state=1)
    frame = pd.DataFrame(X, columns=["amount", "age", "visits", "score_in"])
    fitted = LogisticRegression().fit(frame, y)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            fitted,
            name="model",
            signature=infer_signature(frame, fitted.predict_proba(frame)),
            registered_model_name="fraud",
            pyfunc_predict_fn="predict_proba",
        )
    mlflow.MlflowClient().set_registered_model_alias("fraud", "champion", "1")
    with capture() as c:
        model = modeltel.instrument_model("models:/fraud@champion")
        out = model.predict(frame[:25])
        (span,) = c.spans
        scores = _scores(c)
        records = [r for r in c.logs if r.log_record.event_name == n.EVENT_RECORDS]
    assert (model.info.name, model.info.version) == ("fraud", "1")
    assert span.attributes[n.MODEL_NAME] == "fraud" and span.attributes[n.MODEL_VERSION] == "1"
    assert span.attributes["ml.model.run_id"] == run.info.run_id
    assert all(r.log_record.attributes["ml.model.run_id"] == run.info.run_id for r in records)
    assert model.info.names == ("amount", "age", "visits", "score_in")
    assert np.allclose(scores, np.asarray(out)[:, 1])


def test_what_is_not_a_model_is_refused_with_the_way_out() -> None:
    with pytest.raises(modeltel.ConfigurationError, match=r"use @modeltel\.instrument"):
        modeltel.instrument_model(object(), name="x", version="1")
    with pytest.raises(modeltel.ConfigurationError, match=r"needs name= and version="):
        modeltel.instrument_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
