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
    requests.jsonl, computed by the user's original object) within ``tolerance`` (max absolute
    difference, per number; for a multiclass answer, per class); else what differs, one line."""
    if _is_number(expected):
        if not _is_number(got):
            return f"expected a number ({expected!r}), got {type(got).__name__} {str(got)[:80]}"
        difference = abs(float(got) - float(expected))
        if not difference <= tolerance:  # NaN fails too
            return f"prediction {got!r} is {difference:.3g} from the expected {expected!r} (> {tolerance:g})"
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected probabilities by class, got {type(got).__name__} {str(got)[:80]}"
        if set(got) != set(expected):
            return f"classes {sorted(got)} are not the expected {sorted(expected)}"
        for label, value in expected.items():
            problem = check(value, got[label], tolerance)
            if problem is not None:
                return f"class {label}: {problem}"
        return None
    return f"cannot check against an expected {type(expected).__name__}: {str(expected)[:80]}"


def tolerance(models: Path, artifact: str) -> float:
    """The manifest's tolerance for answers computed from ``artifact`` (a file in ``models``)."""
    from handler.manifest import read

    return read(Path(models) / "manifest.json").tolerance(artifact)
