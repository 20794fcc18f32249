"""A Lambda function that is no model: it sleeps the milliseconds a request asks for.

``GET /staging/sleepy?ms=2``, ``POST`` with ``{"ms": 2}``, or a direct Invoke with the event
``{"ms": 2}``: sleeps 2 ms, answers ``{"slept_ms": 2}``. ``ms`` must be a number in [0, 1000];
anything else is a 400 naming it. Standard library only, as a small function's package would be.
"""

import json
import time

MAX_MS = 1000.0


def _reply(status: int, document: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(document),
    }


def _requested_ms(event: dict) -> object:
    if "httpMethod" not in event:  # invoked directly: the event is the request
        return event.get("ms", 0)
    query = event.get("queryStringParameters") or {}
    if "ms" in query:
        return query["ms"]
    body = event.get("body")
    if body:
        try:
            document = json.loads(body)
        except ValueError:
            return body
        return document.get("ms", 0) if isinstance(document, dict) else document
    return 0


def lambda_handler(event, context):
    value = _requested_ms(event if isinstance(event, dict) else {})
    try:
        ms = float(value)
    except (TypeError, ValueError):
        ms = float("nan")
    if not 0.0 <= ms <= MAX_MS:  # also NaN
        return _reply(400, {"error": f"ms must be a number in [0, {MAX_MS:g}], not {value!r}"})
    time.sleep(ms / 1000.0)
    return _reply(200, {"slept_ms": ms})
