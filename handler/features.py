"""Parse and validate a model's inputs from an API Gateway proxy event, as its manifest describes them.

:func:`make_parser` takes the manifest's inputs (names in model order, number or string,
nullable, and for strings a maximum length and the categories the model accepts) and returns
``parse(event) -> values`` in model order, or raises :class:`InvalidInput` naming every bad field.

Where the features come from: the query string (``queryStringParameters``; each feature once, as
a GET from API Gateway) or, when there is no query string, the event's ``body`` as a JSON object
(a POST; ``isBase64Encoded`` honoured). With a query string, the body is ignored, as the
tutorial's function ignores it. A number is a decimal written in ASCII
("0", "1", "1.0", "0.5", "-0", "1e0"), finite, with an absolute value of at most 1,000,000 and at
most 32 characters; a JSON number (not a boolean) is accepted too, for bodies and direct
invocations such as the tutorial's test event. A string is at most ``max_chars`` characters and,
when the manifest lists ``categories``, one of them (a category the model would reject is a 400,
not a failure inside the model). A nullable input given as the empty string (query) or ``null``
(JSON) is missing: NaN, which the model's imputer handles. Refused, with every bad field named:
a missing feature, a feature given more than once, an empty or non-numeric value, NaN,
infinities, huge values, and any parameter that is not one of the model's (a typo must not
silently become a prediction for a different input).

An all-number model keeps the tutorial's fast path: when the query string has exactly its
features, each "0" or "1", once each, the values are returned without further checks.

Only the standard library is imported: this module is on the lean handler's cold path.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Sequence

MAX_ABS_VALUE = 1_000_000.0
MAX_VALUE_CHARS = 32
MAX_SHOWN_CATEGORIES = 10

_CANONICAL = {"0": 0.0, "1": 1.0}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_MISSING = float("nan")

Parse = Callable[[object], list]


def __getattr__(name: str):
    """The tutorial's constants, where they used to live (``handler.tutorial`` holds them now)."""
    if name in ("FEATURES", "TUTORIAL_QUERY", "FEATURE_MEANS"):
        from handler import tutorial

        return getattr(tutorial, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class InvalidInput(Exception):
    """The event cannot be predicted on; ``details`` maps each bad field to its reason."""

    def __init__(self, message: str, details: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def make_parser(inputs: Sequence) -> Parse:
    """``parse(event) -> values`` for the inputs (``handler.manifest.InputSpec``s, model order)."""
    strict = _strict_parser(inputs)
    if len(inputs) < 2 or not all(spec.type == "number" and not spec.nullable for spec in inputs):
        return strict
    count = len(inputs)
    features = operator.itemgetter(*(spec.name for spec in inputs))  # a tuple, in model order
    canonical = _CANONICAL.__getitem__

    def parse(event: object) -> list:
        try:
            params = event["queryStringParameters"]
            values = list(map(canonical, features(params)))
        except (KeyError, TypeError, IndexError):
            pass
        else:
            # Fast path: exactly the features, each "0" or "1", none repeated.
            if len(params) == count and not _repeated(event.get("multiValueQueryStringParameters")):
                return values
        return strict(event)

    return parse


def _repeated(multi: object) -> bool:
    if not isinstance(multi, dict):  # absent, null, or not API Gateway's shape: no repeats to see
        return False
    return any(isinstance(v, list) and len(v) > 1 for v in multi.values())


def _number(raw: object, nullable: bool) -> float | str:
    """The value as a float (NaN: missing), or the reason it is refused."""
    if isinstance(raw, bool):
        return "must be a number, not a boolean"
    if isinstance(raw, int) and abs(raw) > MAX_ABS_VALUE:
        return f"must be between -{MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}"
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        if raw == "":
            return _MISSING if nullable else "is empty"
        if len(raw) > MAX_VALUE_CHARS:
            return f"is longer than {MAX_VALUE_CHARS} characters"
        if not _NUMBER.fullmatch(raw):
            return f"is not a decimal number: {raw[:MAX_VALUE_CHARS]!r}"
        value = float(raw)
    elif raw is None:
        return _MISSING if nullable else "must not be null"
    else:
        return f"must be a string or a number, not {type(raw).__name__}"
    if not math.isfinite(value):
        return "must be finite"
    if abs(value) > MAX_ABS_VALUE:
        return f"must be between -{MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}"
    return value


def _string_checker(spec) -> Callable[[object], object]:
    max_chars = spec.max_chars
    categories = None if spec.categories is None else frozenset(spec.categories)
    shown = None
    if spec.categories is not None:
        listed = list(spec.categories[:MAX_SHOWN_CATEGORIES])
        more = len(spec.categories) - len(listed)
        shown = ", ".join(map(repr, listed)) + (f" (and {more} more)" if more > 0 else "")
    nullable = spec.nullable

    def check(raw: object) -> object:
        if raw is None or raw == "":
            if nullable:
                return _MISSING
            return _Refused("must not be null" if raw is None else "is empty")
        if not isinstance(raw, str):
            return _Refused(f"must be a string, not {type(raw).__name__}")
        if len(raw) > max_chars:
            return _Refused(f"is longer than {max_chars} characters")
        if categories is not None and raw not in categories:
            return _Refused(f"is not one of the model's categories: {shown}")
        return raw

    return check


class _Refused(str):
    """A reason for a string input (a plain ``str`` result is a valid value there)."""


def _expected(names: Sequence[str]) -> str:
    return f"{names[0]}..{names[-1]}" if len(names) > 3 else ", ".join(names)


def _body_fields(body: object, base64: object) -> dict:
    if isinstance(body, str) and base64 is True:
        import base64 as b64
        import binascii

        try:
            body = b64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInput("the body is not valid base64 UTF-8", {"body": str(exc)[:200]}) from exc
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise InvalidInput("the body is not JSON", {"body": str(exc)[:200]}) from exc
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", {"body": f"is a {type(body).__name__}"})
    return body


def _strict_parser(inputs: Sequence) -> Parse:
    names = tuple(spec.name for spec in inputs)
    known = frozenset(names)
    expected = _expected(names)
    checks: list[tuple[str, bool, Callable[[object], object]]] = []
    for spec in inputs:
        if spec.type == "string":
            checks.append((spec.name, True, _string_checker(spec)))
        else:
            checks.append((spec.name, False, lambda raw, nullable=spec.nullable: _number(raw, nullable)))

    def parse(event: object) -> list:
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
        body = event.get("body")
        multi: object = {}
        if not params and body is not None and body != "":
            fields = _body_fields(body, event.get("isBase64Encoded"))
            where = "the body's fields"
        else:
            fields = params
            multi = event.get("multiValueQueryStringParameters")
            where = "query parameters"
        if not isinstance(multi, dict):
            multi = {}
        details: dict[str, str] = {}
        values: list = []
        for name, is_string, check in checks:
            if name not in fields:
                details[name] = "is required"
                continue
            repeats = multi.get(name)
            if isinstance(repeats, list) and len(repeats) > 1:
                details[name] = f"is given {len(repeats)} times; give it once"
                continue
            parsed = check(fields[name])
            if isinstance(parsed, _Refused) or (isinstance(parsed, str) and not is_string):
                details[name] = str(parsed)
            else:
                values.append(parsed)
        for name in fields:
            if name not in known:
                details[str(name)[:64]] = f"is not a parameter of this model (expected {expected})"
        if details:
            raise InvalidInput(f"invalid {where}", details)
        return values

    return parse
