"""The model's prediction computed independently of the code under test.

``--verify`` (Locust) and the fuzzer check each answer against this. For any model: the
``expected`` value training recorded in ``requests.jsonl`` for each request, computed by the
user's original object as loaded from their file, compared by :func:`check` within the
variant's tolerance (the manifest's, per artifact: float32 ONNX is not float64 joblib). For the
tutorial, in addition, :func:`reference_prediction`: the logistic function of the coefficients
and intercept in ``logit.json`` (written by ``training.export`` from the same fitted model as
every other artifact), summed here with ``math.fsum``, for any input. Nothing of the handler's
input path or predictors is used, so a bug there (a feature-order bug included) cannot hide itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from bench.requests import matches


def load_coefficients(models: Path) -> dict:
    """``logit.json``'s features, coefficients and intercept."""
    return json.loads((Path(models) / "logit.json").read_text(encoding="utf-8"))


def reference_prediction(coefficients: dict, values: Mapping[str, object]) -> float:
    """P(label = 1) for ``values`` (feature name → number or numeric string)."""
    z = coefficients["intercept"] + math.fsum(
        weight * float(values[name])  # type: ignore[arg-type]
        for weight, name in zip(coefficients["coef"], coefficients["features"], strict=True)
    )
    return 1.0 / (1.0 + math.exp(-z))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check(expected: object, got: object, tolerance: float) -> str | None:
    """None when ``got`` (a response's "prediction") matches ``expected`` (the value recorded in
    requests.jsonl, computed by the user's original object) within ``tolerance``, as
    ``bench.requests.matches`` decides (the one rule: ``math.isclose`` with that absolute and
    relative tolerance per number; a multiclass answer class by class); else what differs, in
    one line, for the fuzzer and the tests."""
    if matches(got, expected, tolerance):
        return None
    return _difference(expected, got, tolerance) or f"prediction {got!r} is not the expected {expected!r}"


def _difference(expected: object, got: object, tolerance: float) -> str | None:
    if _is_number(expected):
        if not _is_number(got):
            return f"expected a number ({expected!r}), got {type(got).__name__} {str(got)[:80]}"
        return f"prediction {got!r} is {abs(float(got) - float(expected)):.3g} from the expected {expected!r}"
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected probabilities by class, got {type(got).__name__} {str(got)[:80]}"
        if set(got) != set(expected):
            return f"classes {sorted(got)} are not the expected {sorted(expected)}"
        for label, value in expected.items():
            if not matches(got[label], value, tolerance):
                return f"class {label}: {_difference(value, got[label], tolerance)}"
    return None
