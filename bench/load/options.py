"""The Locust harness's option parsing and payloads: pure functions, no Locust import.

(The plugin, ``bench.load.plugin``, imports Locust, which monkey-patches the process with
gevent; keeping these apart lets any process, a test runner included, use them.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from handler.features import FEATURE_MEANS, FEATURES

DEFAULT_FUNCTION = "staging/logitModel"


class OptionError(ValueError):
    """A harness option is unusable; the message is one line."""


def parse_functions(values: list[str] | str | None) -> tuple[tuple[str, float], ...]:
    """``["staging/logitModel:3", "staging/logit-lean"]`` (or one comma-separated string)."""
    if not values:
        values = [DEFAULT_FUNCTION]
    if isinstance(values, str):
        values = [values]
    entries = [item.strip() for value in values for item in value.split(",") if item.strip()]
    functions = []
    for entry in entries:
        path, _, weight_text = entry.partition(":")
        path = path.strip().strip("/")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise OptionError(f"--function {entry!r}: the weight after ':' must be a number") from None
        if not path or weight <= 0 or weight != weight:
            raise OptionError(f"--function {entry!r}: needs a path and a positive weight")
        functions.append((path, weight))
    return tuple(functions)


def feature_rates(models: Path) -> tuple[float, ...]:
    """The share of 1s per feature in the training data (the manifest), else the published means."""
    try:
        manifest = json.loads((models / "manifest.json").read_text(encoding="utf-8"))
        rates = manifest["data"]["feature_rates"]
        return tuple(float(rates[name]) for name in FEATURES)
    except (OSError, ValueError, KeyError, TypeError):
        return FEATURE_MEANS


def random_query(rng: random.Random, rates: tuple[float, ...]) -> dict[str, str]:
    return {name: "1" if rng.random() < rate else "0" for name, rate in zip(FEATURES, rates, strict=True)}


def prediction_of(body: str) -> float | None:
    """The probability in a response body: ``{"prediction": p}`` or the tutorial's ``Prediction p``."""
    text = body.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text).get("prediction")
        except (ValueError, AttributeError):
            return None
        return float(value) if isinstance(value, int | float) else None
    if text.startswith("Prediction "):
        try:
            return float(text.removeprefix("Prediction "))
        except ValueError:
            return None
    return None
