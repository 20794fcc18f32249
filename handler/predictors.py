"""Turn verified model bytes into ``predict(values) -> prediction`` for one format and input path.

Valid combinations (``MODEL_FORMAT`` + ``INPUT_PATH``):

=========  ======================  ============================================
format     input paths             what is imported at init
=========  ======================  ============================================
pickle     pandas, numpy           numpy (+ pandas), sklearn
joblib     pandas, numpy           numpy (+ pandas), sklearn, joblib
skops      pandas, numpy           numpy (+ pandas), sklearn, skops
json       python, numpy           nothing (python) / numpy
onnx       numpy                   numpy, onnxruntime
=========  ======================  ============================================

The prediction has the task's shape (the manifest's ``task``): binary, the positive class's
probability (a float); multiclass, ``{str(label): probability}``; regression, the value (a
float, from ``predict``). The input paths: *pandas* builds a one-row DataFrame with the
feature names (string columns, and pipelines that select columns by name, need it); *numpy* a
float64 array (only for a model whose inputs are all numbers; a missing nullable value is NaN);
*python* computes the JSON artifact (``logit.json``'s logistic regression, or a ``linear``
document: logistic, softmax or identity link) in pure Python, with a numerically stable logistic.

A model whose ``feature_names_in_`` (or class labels) disagree with the manifest is refused at
init, in one line. Every imported library is imported inside the builder, so a variant pays only
for its own.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable

from handler.artifacts import Artifact, ModelLoadError, user_code_on_path
from handler.manifest import BINARY_0_1, InputSpec, Task

Predict = Callable[[list], object]

VALID_INPUT_PATHS: dict[str, tuple[str, ...]] = {
    "pickle": ("pandas", "numpy"),
    "joblib": ("pandas", "numpy"),
    "skops": ("pandas", "numpy"),
    "json": ("python", "numpy"),
    "onnx": ("numpy",),
}
LINKS = {"logistic": "binary", "softmax": "multiclass", "identity": "regression"}
TRUSTED_PREFIXES = ("sklearn.", "numpy.")  # the skops types a manifest may ask us to trust


class Predictor:
    """The predict function, and the inputs and task it was built for (from the manifest, or,
    without one, from the model itself: its feature names, all numbers; its classes)."""

    __slots__ = ("inputs", "predict", "task")

    def __init__(self, predict: Predict, inputs: list[InputSpec], task: Task) -> None:
        self.predict, self.inputs, self.task = predict, inputs, task


def _sigmoid(z: float, exp: Callable[[float], float] = math.exp) -> float:
    if z >= 0.0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


def _softmax(z: list[float]) -> list[float]:
    top = max(z)
    e = [math.exp(value - top) for value in z]
    total = math.fsum(e)
    return [value / total for value in e]


def _short(names) -> str:
    names = [str(name) for name in names]
    return str(names) if len(names) <= 6 else f"[{', '.join(map(repr, names[:5]))}, … {len(names)} in all]"


def _check_features(uri: str, found, expected: list[str]) -> None:
    if found is not None and [str(name) for name in found] != list(expected):
        raise ModelLoadError(f"{uri} expects features {_short(found)}, the manifest says {_short(expected)}")


def _check_classes(uri: str, found: list, task: Task) -> None:
    if task.kind != "regression" and found != task.classes:
        raise ModelLoadError(f"{uri} has classes {found[:10]}, the manifest says {task.classes[:10]}")


def _schema(artifact: Artifact, features, task: Task | None) -> tuple[list[InputSpec], Task]:
    """The manifest's inputs and task; without a manifest, numbers named by the model itself."""
    manifest = artifact.manifest
    if manifest is not None:
        return manifest.inputs, manifest.task
    if features is None:
        raise ModelLoadError(
            f"{artifact.uri}: no manifest.json beside it, and the model does not name its features"
        )
    return [InputSpec(str(name)) for name in features], task or BINARY_0_1


def _deserialize_sklearn(fmt: str, artifact: Artifact) -> object:
    user_code_on_path(artifact)
    if fmt == "pickle":
        import pickle

        return pickle.loads(artifact.data)
    if fmt == "joblib":
        import io

        import joblib

        return joblib.load(io.BytesIO(artifact.data))
    import skops.io

    # Trusted: only the scikit-learn and numpy types the manifest lists for this very file.
    entry = artifact.manifest.artifacts.get(artifact.name) if artifact.manifest is not None else None
    allowed = {name for name in (entry.trusted if entry else []) if name.startswith(TRUSTED_PREFIXES)}
    untrusted = skops.io.get_untrusted_types(data=artifact.data)
    refused = [name for name in untrusted if name not in allowed]
    if refused:
        raise ModelLoadError(f"{artifact.uri} holds untrusted types {refused}; refusing it")
    return skops.io.loads(artifact.data, trusted=untrusted)


def _task_of(model: object) -> Task:
    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        return Task("regression")
    labels = classes.tolist()
    return Task("binary", labels, labels[1]) if len(labels) == 2 else Task("multiclass", labels)


def _drop_feature_names(model: object, uri: str) -> None:
    """Let a model fitted on a DataFrame take a plain array without a per-call name check (and
    its warning): the order was checked against the manifest at init."""
    steps = getattr(model, "steps", None)
    if steps:  # a Pipeline: its names are its first step's
        _drop_feature_names(steps[0][1], uri)
        return
    transformers = getattr(model, "transformers", None)
    if transformers is not None and any(
        isinstance(columns, str)
        or (isinstance(columns, list | tuple) and any(isinstance(c, str) for c in columns))
        for _name, _transformer, columns in transformers
    ):
        raise ModelLoadError(f"{uri} selects columns by name ({type(model).__name__}): use INPUT_PATH=pandas")
    if "feature_names_in_" in getattr(model, "__dict__", {}):
        del model.feature_names_in_


def _sklearn_output(model: object, task: Task, uri: str) -> tuple[Callable, Callable[[object], object]]:
    """The model's method for the task, and how its result becomes the prediction."""
    if task.kind == "regression":
        return model.predict, lambda result: float(result[0])
    if not hasattr(model, "predict_proba"):
        raise ModelLoadError(
            f"{uri} is a {type(model).__name__}, which has no predict_proba for a {task.kind} task"
        )
    classes = getattr(model, "classes_", None)
    _check_classes(uri, classes.tolist() if classes is not None else [], task)
    if task.kind == "binary":
        column = task.classes.index(task.positive_class)
        return model.predict_proba, lambda result: float(result[0, column])
    labels = [str(label) for label in task.classes]
    return model.predict_proba, lambda result: dict(zip(labels, result[0].tolist(), strict=True))


def _sklearn_predictor(fmt: str, input_path: str, artifact: Artifact) -> Predictor:
    import sklearn

    # We validate every value ourselves (finite, bounded); skip sklearn's per-call re-check.
    sklearn.set_config(assume_finite=True)
    try:
        model = _deserialize_sklearn(fmt, artifact)
    except ModelLoadError:
        raise
    except Exception as exc:  # any unpickling failure is a bad artifact
        raise ModelLoadError(f"cannot deserialize {artifact.uri} as {fmt}: {exc}") from exc
    names = getattr(model, "feature_names_in_", None)
    inputs, task = _schema(artifact, names, None if artifact.manifest else _task_of(model))
    features = [spec.name for spec in inputs]
    _check_features(artifact.uri, names, features)
    count = getattr(model, "n_features_in_", None)
    if isinstance(count, int) and count != len(features):
        raise ModelLoadError(f"{artifact.uri} takes {count} features, the manifest names {len(features)}")
    method, shape = _sklearn_output(model, task, artifact.uri)
    if input_path == "pandas":
        import pandas as pd

        # A model fitted on a plain array gets unnamed columns: named ones would make sklearn warn
        # "X has feature names, but ... was fitted without feature names" on every call.
        columns = features if names is not None else None
        strings = {
            (spec.name if names is not None else index): object
            for index, spec in enumerate(inputs)
            if spec.type == "string"
        }
        DataFrame = pd.DataFrame

        if strings:

            def predict_pandas_mixed(values: list) -> object:
                return shape(method(DataFrame([values], columns=columns).astype(strings)))

            return Predictor(predict_pandas_mixed, inputs, task)

        def predict_pandas(values: list) -> object:
            return shape(method(DataFrame([values], columns=columns)))

        return Predictor(predict_pandas, inputs, task)
    if any(spec.type != "number" for spec in inputs):
        raise ModelLoadError(
            f"{artifact.uri}: the model has string inputs; INPUT_PATH=numpy takes numbers only"
        )
    import numpy as np

    _drop_feature_names(model, artifact.uri)
    array, float64 = np.array, np.float64

    def predict_numpy(values: list) -> object:
        return shape(method(array([values], dtype=float64)))

    return Predictor(predict_numpy, inputs, task)


def _linear_document(document: dict, uri: str) -> tuple[list[str], list[list[float]], list[float], Task]:
    """A JSON artifact as (features, coefficient rows, intercepts, task): v1's binary logistic
    regression, or a ``linear`` document."""
    features = [str(name) for name in document["features"]]
    if document.get("kind") is None:  # v1: {"features", "coef": [...], "intercept": float}
        rows = [[float(value) for value in document["coef"]]]
        return features, rows, [float(document["intercept"])], BINARY_0_1
    if document["kind"] != "linear":
        raise ValueError(f"kind {document['kind']!r} is not 'linear'")
    link = document["link"]
    if link not in LINKS:
        raise ValueError(f"link {link!r} is not one of {', '.join(LINKS)}")
    rows = [[float(value) for value in row] for row in document["coef"]]
    intercepts = [float(value) for value in document["intercept"]]
    classes = document.get("classes")
    kind = LINKS[link]
    task = Task(kind, classes, document.get("positive_class") if kind == "binary" else None)
    outputs = {"logistic": 1, "identity": 1, "softmax": len(classes or ())}[link]
    if len(rows) != outputs or len(intercepts) != outputs or any(len(row) != len(features) for row in rows):
        raise ValueError(
            f"{link} link: coef must be {outputs} row(s) of {len(features)}, intercept {outputs}"
        )
    if kind != "regression" and (not isinstance(classes, list) or len(classes) < 2):
        raise ValueError(f"{link} link: classes must list the model's classes")
    return features, rows, intercepts, task


def _json_predictor(input_path: str, artifact: Artifact) -> Predictor:
    try:
        features, rows, intercepts, own_task = _linear_document(json.loads(artifact.data), artifact.uri)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{artifact.uri} is not a coefficient document: {exc}") from exc
    inputs, task = _schema(artifact, features, own_task)
    _check_features(artifact.uri, features, [spec.name for spec in inputs])
    if task.kind != own_task.kind:
        raise ModelLoadError(f"{artifact.uri} is a {own_task.kind} model, the manifest says {task.kind}")
    if own_task.classes is not None and own_task.classes != task.classes:
        _check_classes(artifact.uri, own_task.classes, task)
    if any(spec.type != "number" for spec in inputs):
        raise ModelLoadError(
            f"{artifact.uri}: the model has string inputs; a coefficient document takes numbers"
        )
    # A logistic row gives P(the second class); the prediction is P(positive_class).
    complement = task.kind == "binary" and task.positive_class == task.classes[0]
    labels = [str(label) for label in task.classes] if task.kind == "multiclass" else []
    intercept = intercepts[0]
    if input_path == "python":
        mul = operator.mul
        if task.kind == "binary" and not complement:
            coefficients = tuple(rows[0])

            def predict_python(values: list) -> float:
                return _sigmoid(sum(map(mul, coefficients, values)) + intercept)

            return Predictor(predict_python, inputs, task)
        matrix = [(tuple(row), b) for row, b in zip(rows, intercepts, strict=True)]

        def predict_linear(values: list) -> object:
            z = [sum(map(mul, row, values)) + b for row, b in matrix]
            if labels:
                return dict(zip(labels, _softmax(z), strict=True))
            if complement:
                return 1.0 - _sigmoid(z[0])
            return z[0] if task.kind == "regression" else _sigmoid(z[0])

        return Predictor(predict_linear, inputs, task)
    import numpy as np

    weights = np.array(rows, dtype=np.float64)
    bias = np.array(intercepts, dtype=np.float64)
    dot = np.dot
    if task.kind == "binary" and not complement:
        first = weights[0]

        def predict_json_numpy(values: list) -> float:
            return _sigmoid(float(dot(first, values)) + intercept)

        return Predictor(predict_json_numpy, inputs, task)

    def predict_json_numpy_linear(values: list) -> object:
        z = (dot(weights, values) + bias).tolist()
        if labels:
            return dict(zip(labels, _softmax(z), strict=True))
        if complement:
            return 1.0 - _sigmoid(z[0])
        return z[0] if task.kind == "regression" else _sigmoid(z[0])

    return Predictor(predict_json_numpy_linear, inputs, task)


def _onnx_predictor(artifact: Artifact) -> Predictor:
    import numpy as np
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(artifact.data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"cannot load {artifact.uri} as ONNX: {exc}") from exc
    if artifact.manifest is None:
        raise ModelLoadError(f"{artifact.uri}: an ONNX model needs the manifest.json beside it (its inputs)")
    inputs, task = artifact.manifest.inputs, artifact.manifest.task
    if any(spec.type != "number" for spec in inputs):
        raise ModelLoadError(f"{artifact.uri}: the model has string inputs; the ONNX path takes numbers only")
    session_inputs = session.get_inputs()
    if len(session_inputs) != 1:
        raise ModelLoadError(
            f"{artifact.uri} takes {len(session_inputs)} inputs; the handler feeds one tensor"
        )
    input_name = session_inputs[0].name
    dtype = np.float32 if session_inputs[0].type == "tensor(float)" else np.float64
    width = session_inputs[0].shape[-1] if session_inputs[0].shape else None
    if isinstance(width, int) and width != len(inputs):
        raise ModelLoadError(f"{artifact.uri} takes {width} features, the manifest names {len(inputs)}")
    outputs = [output.name for output in session.get_outputs()]
    run, array = session.run, np.array
    if task.kind == "regression":
        output = outputs[0]

        def predict_onnx_value(values: list) -> float:
            return float(run([output], {input_name: array([values], dtype=dtype)})[0].ravel()[0])

        return Predictor(predict_onnx_value, inputs, task)
    if "probabilities" in outputs:
        probabilities = ["probabilities"]

        def row(values: list) -> list:
            return run(probabilities, {input_name: array([values], dtype=dtype)})[0][0]

    elif "output_probability" in outputs:  # skl2onnx's ZipMap: [{label: p}]
        zipped = ["output_probability"]

        def row(values: list) -> list:
            by_label = run(zipped, {input_name: array([values], dtype=dtype)})[0][0]
            return [by_label[label] for label in task.classes]

    else:
        raise ModelLoadError(f"{artifact.uri} has no 'probabilities' output: {outputs}")
    if task.kind == "binary":
        column = task.classes.index(task.positive_class)
        if "probabilities" in outputs:  # the tutorial's path, as lean as it was

            def predict_onnx(values: list) -> float:
                result = run(probabilities, {input_name: array([values], dtype=dtype)})
                return float(result[0][0, column])

            return Predictor(predict_onnx, inputs, task)

        def predict_onnx_binary(values: list) -> float:
            return float(row(values)[column])

        return Predictor(predict_onnx_binary, inputs, task)
    labels = [str(label) for label in task.classes]

    def predict_onnx_classes(values: list) -> dict:
        return dict(zip(labels, (float(p) for p in row(values)), strict=True))

    return Predictor(predict_onnx_classes, inputs, task)


def build_predictor(fmt: str, input_path: str, artifact: Artifact) -> Predictor:
    """The predictor for ``fmt`` + ``input_path``; ModelLoadError if invalid."""
    check_combination(fmt, input_path)
    if fmt == "json":
        return _json_predictor(input_path, artifact)
    if fmt == "onnx":
        return _onnx_predictor(artifact)
    return _sklearn_predictor(fmt, input_path, artifact)


def check_combination(fmt: str, input_path: str) -> None:
    if fmt not in VALID_INPUT_PATHS:
        raise ModelLoadError(f"MODEL_FORMAT={fmt!r}: expected one of {sorted(VALID_INPUT_PATHS)}")
    if input_path not in VALID_INPUT_PATHS[fmt]:
        raise ModelLoadError(
            f"INPUT_PATH={input_path!r} does not work with MODEL_FORMAT={fmt!r}: "
            f"use {' or '.join(VALID_INPUT_PATHS[fmt])}"
        )
