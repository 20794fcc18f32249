"""The production logit handler, configured as Lambda functions are: by environment variables.

``MODEL_URI`` (a path, or ``s3://bucket/key``), ``MODEL_FORMAT`` (pickle | joblib | skops |
json | onnx), ``INPUT_PATH`` (pandas | numpy | python; see ``handler.predictors`` for the valid
pairs), ``MODEL_SHA256`` (optional; else the manifest beside the model). Init happens at
import, as Lambda's INIT phase; each variant imports only what it needs.

The model's inputs and task come from the ``manifest.json`` beside the model (docs/model.md):
features from the query string (GET) or a JSON object body (POST). Response (API Gateway proxy
format): 200 with ``{"prediction": ..., "model": "<sha256[:12]>"}``, the prediction in the task's
shape (binary: the positive class's probability; multiclass: ``{label: probability}``;
regression: the value), and ``Server-Timing: predict;dur=<ms>, handler;dur=<ms>``, where
*predict* times building the input and the model computation, and *handler* times validation +
predict (not the response serialization). The first invocation of an environment also reports
``init;dur=<ms>`` (module import to ready) and ``"cold": true``. Bad input: 400 with ``{"error", "details"}``.
"""

from time import perf_counter_ns

_INIT_STARTED_NS = perf_counter_ns()

import json  # noqa: E402
import os  # noqa: E402

from handler.artifacts import ARTIFACT_BY_FORMAT, fetch_verified  # noqa: E402
from handler.features import InvalidInput, make_parser  # noqa: E402
from handler.predictors import VALID_INPUT_PATHS, build_predictor, check_combination  # noqa: E402

MODEL_FORMAT = os.environ.get("MODEL_FORMAT", "joblib")
INPUT_PATH = os.environ.get("INPUT_PATH") or VALID_INPUT_PATHS.get(MODEL_FORMAT, ("numpy",))[0]
check_combination(MODEL_FORMAT, INPUT_PATH)
MODEL_URI = os.environ.get("MODEL_URI") or f"models/{ARTIFACT_BY_FORMAT[MODEL_FORMAT]}"

_artifact = fetch_verified(MODEL_URI, os.environ.get("MODEL_SHA256") or None)
_predictor = build_predictor(MODEL_FORMAT, INPUT_PATH, _artifact)
_predict = _predictor.predict
parse_features = make_parser(_predictor.inputs)
MODEL_ID = _artifact.sha256[:12]
del _artifact, _predictor  # the bytes are no longer needed
INIT_MS = (perf_counter_ns() - _INIT_STARTED_NS) / 1e6
_cold = True


def _bad_request(error: InvalidInput) -> dict:
    return {
        "statusCode": 400,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": error.message, "details": error.details}),
    }


def _no_prediction(value: object) -> dict:
    return {
        "statusCode": 500,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": f"the model returned {value!r}, which is not a prediction"}),
    }


def _json_prediction(prediction: object, predict_ns: int, handler_ns: int) -> dict:
    """The 200 for a prediction that is not a finite float (a multiclass answer), or a 500."""
    global _cold
    try:
        text = json.dumps(prediction, allow_nan=False)
    except ValueError:
        return _no_prediction(prediction)
    timing = f"predict;dur={predict_ns / 1e6:.6f}, handler;dur={handler_ns / 1e6:.6f}"
    cold = ""
    if _cold:
        _cold = False
        timing += f", init;dur={INIT_MS:.3f}"
        cold = ', "cold": true'
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Server-Timing": timing},
        "body": f'{{"prediction": {text}, "model": "{MODEL_ID}"{cold}}}',
    }


def lambda_handler(event, context):
    global _cold
    started = perf_counter_ns()
    try:
        values = parse_features(event)
    except InvalidInput as error:
        return _bad_request(error)
    predict_started = perf_counter_ns()
    prediction = _predict(values)
    finished = perf_counter_ns()
    if type(prediction) is not float or prediction - prediction:  # a dict, NaN or an infinity
        return _json_prediction(prediction, finished - predict_started, finished - started)
    timing = (
        f"predict;dur={(finished - predict_started) / 1e6:.6f}, handler;dur={(finished - started) / 1e6:.6f}"
    )
    if _cold:
        _cold = False
        timing += f", init;dur={INIT_MS:.3f}"
        body = f'{{"prediction": {prediction!r}, "model": "{MODEL_ID}", "cold": true}}'
    else:
        body = f'{{"prediction": {prediction!r}, "model": "{MODEL_ID}"}}'
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Server-Timing": timing},
        "body": body,
    }
