"""Users' models for the handler's tests, written in the models/ layout of docs/model.md.

Built from data scikit-learn ships or generates (no downloads). :func:`write_models` writes what
``python -m training --model FILE --sample CSV`` writes (the user's file kept as
``reference.joblib``, the derived artifacts, a version 2 manifest, ``requests.jsonl`` with each
expected prediction computed by the original object), independently of ``training``, so the
handler's tests do not depend on how training does it.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from handler.manifest import ArtifactEntry, InputSpec, Manifest, Task


@dataclass
class UserModel:
    name: str
    model: object
    sample: pd.DataFrame  # the user's sample: a header naming the columns
    fitted_on_array: bool = False
    nullable: tuple[str, ...] = ()


def forest() -> UserModel:
    X, y = make_classification(n_samples=300, n_features=24, n_informative=8, random_state=0)
    frame = pd.DataFrame(X, columns=[f"sensor_{i:02d}" for i in range(24)])
    model = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0).fit(frame, y)
    return UserModel("forest", model, frame)


def iris_pipeline() -> UserModel:
    iris = load_iris(as_frame=True)
    labels = np.asarray(iris.target_names)[iris.target]  # string classes
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])
    return UserModel("iris", model.fit(iris.data, labels), iris.data)


def diabetes_regressor() -> UserModel:
    data = load_diabetes(as_frame=True)
    model = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0).fit(
        data.data, data.target
    )
    return UserModel("diabetes", model, data.data)


def colors_pipeline() -> UserModel:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(10, 3, 200),
            "weight": rng.normal(50, 10, 200),
            "color": rng.choice(["red", "green", "blue"], 200),
        }
    )
    y = ((frame["size"] > 10) ^ (frame["color"] == "red")).astype(int)
    frame.loc[::7, "size"] = np.nan  # the imputer fills it: "size" is nullable
    numbers = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    encode = ColumnTransformer(
        [("num", numbers, ["size", "weight"]), ("cat", OneHotEncoder(handle_unknown="error"), ["color"])]
    )
    model = Pipeline([("encode", encode), ("clf", LogisticRegression())]).fit(frame, y)
    return UserModel("colors", model, frame, nullable=("size",))


def plain_array() -> UserModel:
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3, n_redundant=0, random_state=1)
    model = LogisticRegression().fit(X, y)  # no feature_names_in_
    return UserModel("plain", model, pd.DataFrame(X, columns=["a", "b", "c", "d", "e"]), fitted_on_array=True)


ALL = (forest, iris_pipeline, diabetes_regressor, colors_pipeline, plain_array)


def _entry(data: bytes, fmt: str, role: str, tolerance: float) -> ArtifactEntry:
    return ArtifactEntry(fmt, hashlib.sha256(data).hexdigest(), len(data), role, tolerance)


def _task(model: object) -> Task:
    if not hasattr(model, "predict_proba"):
        return Task("regression")
    classes = model.classes_.tolist()
    return Task("binary", classes, classes[1]) if len(classes) == 2 else Task("multiclass", classes)


def _linear_document(model: object, features: list[str], task: Task) -> dict | None:
    """The ``linear`` JSON artifact of a LogisticRegression, with a leading scaler folded in."""
    scale = None
    if isinstance(model, Pipeline):
        if len(model.steps) != 2 or not isinstance(model.steps[0][1], StandardScaler):
            return None
        scale, model = model.steps[0][1], model.steps[1][1]
    if not isinstance(model, LogisticRegression):
        return None
    coef, intercept = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    if scale is not None:
        intercept = intercept - (coef * scale.mean_ / scale.scale_).sum(axis=1)
        coef = coef / scale.scale_
    link = "logistic" if task.kind == "binary" else "softmax"
    return {
        "kind": "linear",
        "features": features,
        "link": link,
        "coef": coef.tolist(),
        "intercept": intercept.tolist(),
        "classes": task.classes,
        "positive_class": task.positive_class,
    }


def _onnx(model: object, width: int) -> bytes | str:
    """The ONNX bytes (float32 input, probabilities without ZipMap), or why not."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    try:
        onx = to_onnx(model, initial_types=[("input", FloatTensorType([None, width]))], options=options)
    except Exception as exc:  # skl2onnx raises many types
        return f"skl2onnx cannot convert {type(model).__name__}: {str(exc).splitlines()[0][:120]}"
    return onx.SerializeToString()


def _prediction(model: object, task: Task, row: pd.DataFrame) -> object:
    if task.kind == "regression":
        return float(model.predict(row)[0])
    proba = model.predict_proba(row)[0]
    if task.kind == "binary":
        return float(proba[task.classes.index(task.positive_class)])
    return {str(label): float(p) for label, p in zip(task.classes, proba, strict=True)}


def _request(row: pd.Series, strings: set[str]) -> dict:
    if row.isna().any():
        body = {
            name: (None if pd.isna(value) else (value if name in strings else float(value)))
            for name, value in row.items()
        }
        return {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": body}
    query = {name: (value if name in strings else repr(float(value))) for name, value in row.items()}
    return {"method": "GET", "query": query}


def write_models(user: UserModel, out: Path, rows: int = 12) -> Path:
    """Write ``user``'s models directory into ``out``; returns it."""
    out.mkdir(parents=True, exist_ok=True)
    model, sample = user.model, user.sample
    features = list(sample.columns)
    strings = {name for name in features if not pd.api.types.is_numeric_dtype(sample[name])}
    inputs = [
        InputSpec(
            name,
            "string" if name in strings else "number",
            name in user.nullable,
            64 if name in strings else None,
            tuple(sorted(sample[name].dropna().unique())) if name in strings else None,
        )
        for name in features
    ]
    task = _task(model)
    artifacts: dict[str, ArtifactEntry] = {}
    unavailable: dict[str, str] = {}

    def put(name: str, data: bytes, fmt: str, role: str = "derived", tolerance: float = 1e-12) -> None:
        (out / name).write_bytes(data)
        artifacts[name] = _entry(data, fmt, role, tolerance)

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    put("reference.joblib", buffer.getvalue(), "joblib", role="reference")
    put("model.pkl", buffer.getvalue(), "joblib")
    put("model.pickle", pickle.dumps(model, protocol=5), "pickle")
    import skops.io

    skops_bytes = skops.io.dumps(model)
    untrusted = skops.io.get_untrusted_types(data=skops_bytes)
    if any(not name.startswith(("sklearn.", "numpy.")) for name in untrusted):
        unavailable["skops"] = f"skops would have to trust {', '.join(untrusted)}"
    else:
        put("model.skops", skops_bytes, "skops")
        artifacts["model.skops"].extra["trusted"] = sorted(untrusted)
    document = None if strings or user.nullable else _linear_document(model, features, task)
    if document is None:
        unavailable["json"] = "not a linear model (LogisticRegression, optionally after a StandardScaler)"
    else:
        put("model.json", json.dumps(document).encode(), "json", tolerance=1e-9)
    if strings:
        unavailable["onnx"] = "the model has string inputs"
    else:
        onnx = _onnx(model, len(features))
        if isinstance(onnx, str):
            unavailable["onnx"] = onnx
        else:
            put("model.onnx", onnx, "onnx", tolerance=1e-3 if task.kind == "regression" else 1e-5)
    lines = []
    for _, row in sample.head(rows).iterrows():
        frame = row.to_frame().T.astype(sample.dtypes.to_dict())
        given = frame.to_numpy(dtype=np.float64) if user.fitted_on_array else frame
        lines.append({**_request(row, strings), "expected": _prediction(model, task, given)})
    (out / "requests.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    manifest = Manifest(
        features,
        artifacts,
        {"scikit-learn": "test"},
        {"requests": "requests.jsonl", "model_class": f"{type(model).__module__}.{type(model).__name__}"},
        inputs=inputs,
        task=task,
        unavailable=unavailable,
        memory={"peak_rss_mb": 150.0, "memory_size_mb": 256},
    )
    (out / "manifest.json").write_text(manifest.to_json())
    return out
