"""The model's prediction computed independently of the code under test.

``--verify`` (Locust) and the fuzzer check each answer against this: the logistic function of
the coefficients and intercept in ``logit.json`` (written by ``training.export`` from the same
fitted model as every other artifact), summed here with ``math.fsum``. Nothing of
``handler`` is used, so a bug in the handler's input path or predictors cannot hide itself.
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
