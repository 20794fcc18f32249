"""Turn verified model bytes into ``predict(values) -> probability`` for one format and input path.

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

Every imported library is imported inside the builder, so a variant pays only for its own.
The ``python`` path is a pure-Python dot product and a numerically stable logistic.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable

from handler.artifacts import Artifact, ModelLoadError
from handler.features import FEATURES

Predict = Callable[[list[float]], float]

VALID_INPUT_PATHS: dict[str, tuple[str, ...]] = {
    "pickle": ("pandas", "numpy"),
    "joblib": ("pandas", "numpy"),
    "skops": ("pandas", "numpy"),
    "json": ("python", "numpy"),
    "onnx": ("numpy",),
}


def _sigmoid(z: float, exp: Callable[[float], float] = math.exp) -> float:
    if z >= 0.0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


def _deserialize_sklearn(fmt: str, artifact: Artifact) -> object:
    if fmt == "pickle":
        import pickle

        return pickle.loads(artifact.data)
    if fmt == "joblib":
        import io

        import joblib

        return joblib.load(io.BytesIO(artifact.data))
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=artifact.data)
    if untrusted:
        raise ModelLoadError(f"{artifact.uri} holds untrusted types {untrusted}; refusing it")
    return skops.io.loads(artifact.data, trusted=[])


def _sklearn_predictor(fmt: str, input_path: str, artifact: Artifact) -> Predict:
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
    if names is not None and tuple(names) != FEATURES:
        raise ModelLoadError(f"{artifact.uri} expects features {list(names)}, not G1..G10")
    if not hasattr(model, "predict_proba"):
        raise ModelLoadError(f"{artifact.uri} holds a {type(model).__name__}, not a classifier")
    if input_path == "pandas":
        import pandas as pd

        columns = list(FEATURES)

        def predict_pandas(values: list[float]) -> float:
            frame = pd.DataFrame([values], columns=columns)
            return float(model.predict_proba(frame)[0, 1])

        return predict_pandas
    import numpy as np

    if names is not None:
        # The order was checked above; a plain array then needs no name check on every call.
        del model.feature_names_in_
    predict_proba = model.predict_proba
    array = np.array

    def predict_numpy(values: list[float]) -> float:
        return float(predict_proba(array([values], dtype=np.float64))[0, 1])

    return predict_numpy


def _json_predictor(input_path: str, artifact: Artifact) -> Predict:
    try:
        document = json.loads(artifact.data)
        features = tuple(document["features"])
        coef = [float(value) for value in document["coef"]]
        intercept = float(document["intercept"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{artifact.uri} is not a coefficient document: {exc}") from exc
    if features != FEATURES or len(coef) != len(FEATURES):
        raise ModelLoadError(f"{artifact.uri} has features {list(features)}, not G1..G10")
    if input_path == "python":
        coefficients = tuple(coef)
        mul = operator.mul

        def predict_python(values: list[float]) -> float:
            return _sigmoid(sum(map(mul, coefficients, values)) + intercept)

        return predict_python
    import numpy as np

    weights = np.array(coef, dtype=np.float64)
    dot = np.dot

    def predict_json_numpy(values: list[float]) -> float:
        return _sigmoid(float(dot(weights, values)) + intercept)

    return predict_json_numpy


def _onnx_predictor(artifact: Artifact) -> Predict:
    import numpy as np
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(artifact.data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"cannot load {artifact.uri} as ONNX: {exc}") from exc
    input_name = session.get_inputs()[0].name
    outputs = [output.name for output in session.get_outputs()]
    if "probabilities" not in outputs:
        raise ModelLoadError(f"{artifact.uri} has no 'probabilities' output: {outputs}")
    run = session.run

    def predict_onnx(values: list[float]) -> float:
        result = run(["probabilities"], {input_name: np.array([values], dtype=np.float64)})
        return float(result[0][0, 1])

    return predict_onnx


def build_predictor(fmt: str, input_path: str, artifact: Artifact) -> Predict:
    """The predict function for ``fmt`` + ``input_path``; ModelLoadError if invalid."""
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
