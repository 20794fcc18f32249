"""The pure-Python artifact (``model.json``, kind ``linear``) for a linear model.

Applies to a ``LogisticRegression`` (binary: logistic link; multiclass with the multinomial
loss: softmax) and to a linear regressor whose ``predict`` is ``X @ coef_ + intercept_``
(``LinearRegression``, ``Ridge``, ``Lasso``, ``ElasticNet``, ``SGDRegressor``, ...), alone or
in a ``Pipeline`` whose only other step is a leading ``StandardScaler``, folded in:
``coef' = coef / scale`` and ``intercept' = intercept - Σ coef · mean / scale``.

Nothing is trusted from the class name alone: the document is evaluated here with the same
pure-Python arithmetic the lean handler uses (:func:`evaluate`) on every sample row and compared
with the estimator's own answers; a document that does not reproduce them (to ``AGREEMENT``
× the answers' scale) is reported as not applying. A ``OneVsRestClassifier`` (normalized
sigmoids, not a softmax) is not a ``LogisticRegression`` and is refused before that.
"""

from __future__ import annotations

import math

import numpy as np

from training.schema import json_value

# A folded document must reproduce the estimator to this, on the sample, or it does not apply.
AGREEMENT = 1e-9


class NotLinear(Exception):
    """The model has no pure-Python linear path; the message says why (for ``unavailable``)."""


def _split_pipeline(estimator: object) -> tuple[object | None, object]:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if not isinstance(estimator, Pipeline):
        return None, estimator
    steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
    if len(steps) == 1:
        return None, steps[0]
    if len(steps) == 2 and isinstance(steps[0], StandardScaler):
        return steps[0], steps[1]
    names = " -> ".join(type(step).__name__ for step in steps)
    raise NotLinear(f"a pipeline other than [StandardScaler ->] linear model ({names})")


def _link(final: object) -> str:
    from sklearn.base import is_classifier, is_regressor
    from sklearn.linear_model import LogisticRegression

    if isinstance(final, LogisticRegression):
        return "logistic" if len(final.classes_) == 2 else "softmax"
    if is_regressor(final) and type(final).__module__.startswith("sklearn.linear_model"):
        return "identity"
    if is_classifier(final):
        raise NotLinear(f"{type(final).__name__} is not a LogisticRegression")
    raise NotLinear(f"{type(final).__name__} is not a linear model")


def linear_document(estimator: object, features: list[str], task: dict) -> dict:
    """The ``kind: linear`` document, folded; :class:`NotLinear` when the model has none."""
    scaler, final = _split_pipeline(estimator)
    link = _link(final)
    coef = np.atleast_2d(np.asarray(getattr(final, "coef_", None), dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64))
    if coef.shape[1] != len(features):
        raise NotLinear(f"coef_ has {coef.shape[1]} columns for {len(features)} features")
    if link == "identity" and coef.shape[0] != 1:
        raise NotLinear("a multi-output regressor")
    if intercept.shape[0] == 1 and coef.shape[0] > 1:
        intercept = np.repeat(intercept, coef.shape[0])
    if scaler is not None:
        scale = scaler.scale_ if scaler.scale_ is not None else np.ones(coef.shape[1])
        mean = scaler.mean_ if scaler.with_mean and scaler.mean_ is not None else np.zeros(coef.shape[1])
        coef = coef / scale
        intercept = intercept - coef @ mean
    classes = task["classes"]
    return {
        "kind": "linear",
        "features": list(features),
        "link": link,
        "coef": [[float(value) for value in row] for row in coef],
        "intercept": [float(value) for value in intercept],
        "classes": None if classes is None else [json_value(value) for value in classes],
        "positive_class": task["positive_class"],
    }


def evaluate(document: dict, values: list[float]) -> list[float]:
    """The document's answer for one row, as :func:`training.schema.outputs` shapes it:
    [P(positive)] (logistic), every class's probability (softmax) or [value] (identity)."""
    scores = [
        sum(c * x for c, x in zip(row, values, strict=True)) + b
        for row, b in zip(document["coef"], document["intercept"], strict=True)
    ]
    link = document["link"]
    if link == "identity":
        return scores
    if link == "logistic":
        z = scores[0]
        return [1.0 / (1.0 + math.exp(-z))] if z >= 0 else [math.exp(z) / (1.0 + math.exp(z))]
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]


def max_abs_diff(document: dict, rows: np.ndarray, reference: np.ndarray) -> float:
    """Largest |document - estimator| over the sample's rows (a NaN anywhere: infinite)."""
    worst = 0.0
    for values, expected in zip(rows, reference, strict=True):
        answer = evaluate(document, [float(value) for value in values])
        diff = float(np.max(np.abs(np.asarray(answer) - expected)))
        if math.isnan(diff):
            return math.inf
        worst = max(worst, diff)
    return worst
