"""The ONNX artifact (``model.onnx``): skl2onnx's conversion, checked with onnxruntime.

Tried in this order, the first that converts, runs and answers finite numbers wins:
1. float64 (``DoubleTensorType``): the graph computes in double as scikit-learn does;
2. float32 (``FloatTensorType``): the fallback for the converters (and runtime kernels) that
   have no double version; scikit-learn's own trees compare features in float32 anyway, so a
   float32 forest takes the same splits and differs only in summing its leaves.

Input: one ``X`` tensor ``[N, features]`` in model order, what the handler's ONNX path feeds.
A model that takes text features, or selects its columns by name (a ``ColumnTransformer`` on a
DataFrame), does not convert to that and is reported as not applying. Classifiers are converted
without ZipMap, so the output read is the probabilities tensor; a regressor's is its first. The
artifact entry records the ``dtype``, ``inputs`` (``"tensor"``) and the ``output`` read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.schema import text_columns

DTYPES = {"float64": np.float64, "float32": np.float32}


class NoOnnx(Exception):
    """The model has no ONNX artifact; the message says why (for ``unavailable``)."""


@dataclass
class OnnxGraph:
    data: bytes
    dtype: str  # "float64" or "float32"
    output: str
    answers: np.ndarray  # as training.schema.outputs shapes them, on the sample
    inputs: str = "tensor"


def _final_step(estimator: object) -> object:
    from sklearn.pipeline import Pipeline

    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator


def _convert(estimator: object, features: int, dtype: str, task: dict) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor = DoubleTensorType if dtype == "float64" else FloatTensorType
    options = {} if task["kind"] == "regression" else {id(_final_step(estimator)): {"zipmap": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = convert_sklearn(estimator, initial_types=[("X", tensor([None, features]))], options=options)
    return graph.SerializeToString()


def run_graph(data: bytes, frame: pd.DataFrame, dtype: str, task: dict) -> tuple[str, np.ndarray]:
    import onnxruntime

    session_options = onnxruntime.SessionOptions()
    session_options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(data, session_options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    output = names[0] if task["kind"] == "regression" else names[-1]
    (values,) = session.run([output], {"X": frame.to_numpy(dtype=DTYPES[dtype])})
    values = np.asarray(values, dtype=np.float64)
    if task["kind"] == "regression":
        return output, values.reshape(-1, 1)
    return output, values[:, 1:2] if task["kind"] == "binary" else values


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def convert(estimator: object, frame: pd.DataFrame, task: dict) -> OnnxGraph:
    """The first graph (float64, then float32) that converts and runs, or :class:`NoOnnx`."""
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError as exc:
        raise NoOnnx(f"skl2onnx/onnxruntime are not installed ({exc.name})") from exc
    text = text_columns(frame)
    if text:
        raise NoOnnx(f"text feature(s) {', '.join(text)}: the ONNX path feeds one numeric tensor")
    errors = []
    for dtype in DTYPES:
        try:
            data = _convert(estimator, frame.shape[1], dtype, task)
        except Exception as exc:  # skl2onnx raises many types (RuntimeError, NotImplementedError...)
            errors.append(f"{dtype}: {type(exc).__name__}: {_first_line(exc)}")
            continue
        try:
            output, answers = run_graph(data, frame, dtype, task)
        except Exception as exc:  # onnxruntime raises its own exception types
            errors.append(f"{dtype} converts but onnxruntime cannot run it: {_first_line(exc)}")
            continue
        if not np.all(np.isfinite(answers)):
            errors.append(f"{dtype}: non-finite answers on the sample")
            continue
        return OnnxGraph(data=data, dtype=dtype, output=output, answers=answers)
    reasons = [error.split(": ", 1)[1] for error in errors]
    said = reasons[0] if len(set(reasons)) == 1 else "; ".join(errors)
    raise NoOnnx(f"skl2onnx cannot convert {type(estimator).__name__}: {said}")
