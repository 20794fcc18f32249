"""Parse and validate the ten G1..G10 query parameters of an API Gateway proxy event.

Accepted: every one of G1..G10, once each, as a decimal number written in ASCII ("0", "1",
"1.0", "0.5", "-0", "1e0"), finite, with an absolute value of at most 1,000,000 and at most
32 characters; a JSON number (not a boolean) is accepted too, for direct invocations such as
the tutorial's test event. Refused, with every bad field named: a missing feature, a feature
given more than once, an empty or non-numeric value, NaN, infinities, huge values, and any
parameter that is not one of G1..G10 (a typo such as ``g1`` must not silently become a
prediction for a different input).

Only the standard library is imported: this module is on the lean handler's cold path.
"""

from __future__ import annotations

import math
import re

FEATURES: tuple[str, ...] = ("G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8", "G9", "G10")
# The tutorial's example input, as API Gateway passes it (strings).
TUTORIAL_QUERY: dict[str, str] = {
    "G1": "1", "G2": "0", "G3": "1", "G4": "1", "G5": "0",
    "G6": "0", "G7": "1", "G8": "0", "G9": "1", "G10": "0",
}  # fmt: skip
# The published share of 1s per feature in the tutorial's games-expand.csv (../shared/data).
FEATURE_MEANS = (0.2296, 0.1319, 0.2191, 0.0868, 0.2066, 0.1215, 0.2727, 0.3092, 0.0599, 0.1340)
MAX_ABS_VALUE = 1_000_000.0
MAX_VALUE_CHARS = 32

_CANONICAL = {"0": 0.0, "1": 1.0}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_KNOWN = frozenset(FEATURES)


class InvalidInput(Exception):
    """The event cannot be predicted on; ``details`` maps each bad field to its reason."""

    def __init__(self, message: str, details: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def parse_features(event: object) -> list[float]:
    """Return the ten feature values in model order, or raise :class:`InvalidInput`."""
    try:
        params = event["queryStringParameters"]
        canonical = _CANONICAL
        values = [canonical[params[name]] for name in FEATURES]
    except (KeyError, TypeError, IndexError):
        pass
    else:
        # Fast path: exactly the ten features, each "0" or "1", none repeated.
        if len(params) == 10 and not _repeated(event.get("multiValueQueryStringParameters")):
            return values
    return _parse_strictly(event)


def _repeated(multi: object) -> bool:
    if not isinstance(multi, dict):  # absent, null, or not API Gateway's shape: no repeats to see
        return False
    return any(isinstance(v, list) and len(v) > 1 for v in multi.values())


def _parse_value(raw: object) -> float | str:
    """The value as a float, or the reason it is refused."""
    if isinstance(raw, bool):
        return "must be a number, not a boolean"
    if isinstance(raw, int) and abs(raw) > MAX_ABS_VALUE:
        return f"must be between -{MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}"
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        if raw == "":
            return "is empty"
        if len(raw) > MAX_VALUE_CHARS:
            return f"is longer than {MAX_VALUE_CHARS} characters"
        if not _NUMBER.fullmatch(raw):
            return f"is not a decimal number: {raw!r}"
        value = float(raw)
    else:
        return f"must be a string or a number, not {type(raw).__name__}"
    if not math.isfinite(value):
        return "must be finite"
    if abs(value) > MAX_ABS_VALUE:
        return f"must be between -{MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}"
    return value


def _parse_strictly(event: object) -> list[float]:
    if not isinstance(event, dict):
        raise InvalidInput("the event must be a JSON object", {"event": type(event).__name__})
    params = event.get("queryStringParameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput(
            "queryStringParameters must be an object or null",
            {"queryStringParameters": type(params).__name__},
        )
    multi = event.get("multiValueQueryStringParameters")
    if not isinstance(multi, dict):
        multi = {}
    details: dict[str, str] = {}
    values: list[float] = []
    for name in FEATURES:
        if name not in params:
            details[name] = "is required"
            continue
        repeats = multi.get(name)
        if isinstance(repeats, list) and len(repeats) > 1:
            details[name] = f"is given {len(repeats)} times; give it once"
            continue
        parsed = _parse_value(params[name])
        if isinstance(parsed, str):
            details[name] = parsed
        else:
            values.append(parsed)
    for name in params:
        if name not in _KNOWN:
            details[str(name)[:64]] = "is not a parameter of this model (expected G1..G10)"
    if details:
        raise InvalidInput("invalid query parameters", details)
    return values
