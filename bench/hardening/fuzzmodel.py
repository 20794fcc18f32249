"""The handler campaign for a user's model: hypothesis events from the model's own requests.

``python -m bench.hardening.fuzz --models DIR`` on a models directory whose manifest is not the
tutorial's fuzzes the handler with this instead of ``fuzzcases.handler_events`` (those are the
tutorial's ten features). Each case starts from one of the model's ``requests.jsonl`` GET lines
(whole sample rows, each with the prediction the user's original object gave), turned into API
Gateway's proxy event by the emulator's own builder (``bench.requests.proxy_event``), then
mutated: none (the request as recorded), a feature dropped, renamed, repeated, an extra
parameter, or a value replaced by a hard value or arbitrary text. The rules: every reply is a
well-formed 200 or 400 JSON (a 400 names what is wrong); a request as recorded gets 200 and the
recorded prediction within the variant's tolerance (``bench.reference.check``). A mutated value
the model accepts (a number replaced by another) has no expectation: only its form is checked.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import strategies as st

from bench.reference import check
from bench.requests import RequestLine, manifest_tolerance, proxy_event, read_requests

HARD_VALUES = ("", "nan", "inf", "-inf", "1e308", "0x10", "١", "true", "null", " 1", "1 ", "x" * 10_000)
MUTATIONS = ("none", "drop", "rename", "repeat", "extra", "value")


def model_lines(models: Path) -> list[RequestLine]:
    """The GET lines of the model's ``requests.jsonl`` that carry an expectation."""
    manifest = json.loads((models / "manifest.json").read_text(encoding="utf-8"))
    lines = read_requests(models / str(manifest.get("requests") or "requests.jsonl")).lines
    return [line for line in lines if line.method == "GET" and line.has_expected and line.query]


def model_events(lines: list[RequestLine]) -> st.SearchStrategy[tuple[dict, object, bool]]:
    """(event, expected prediction, whether it is the request as recorded)."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[dict, object, bool]:
        line = draw(st.sampled_from(lines))
        event = copy.deepcopy(proxy_event(line, "function"))
        params: dict = event["queryStringParameters"]
        multi: dict = event.setdefault("multiValueQueryStringParameters", {}) or {}
        event["multiValueQueryStringParameters"] = multi
        name = draw(st.sampled_from(sorted(params)))
        mutation = draw(st.sampled_from(MUTATIONS))
        if mutation == "drop":
            del params[name]
            multi.pop(name, None)
        elif mutation == "rename":
            params[name.upper() if name != name.upper() else name.lower() + "_"] = params.pop(name)
        elif mutation == "repeat":
            multi[name] = [params[name], params[name]]
        elif mutation == "extra":
            extra = draw(st.text(min_size=1, max_size=12))
            if extra not in params:
                params[extra] = draw(st.text(max_size=12))
        elif mutation == "value":
            params[name] = draw(st.one_of(st.sampled_from(HARD_VALUES), st.text(max_size=40)))
            multi[name] = [params[name]]
        return event, line.expected, mutation == "none"

    return build()


def check_model_reply(reply: object, expected: object, recorded: bool, tolerance: float) -> list[str]:
    """What is wrong with a handler's reply (empty: nothing)."""
    if not isinstance(reply, dict):
        return [f"reply is {type(reply).__name__}, not a dict"]
    status = reply.get("statusCode")
    problems = [] if status in (200, 400) else [f"statusCode {status!r}"]
    if (reply.get("headers") or {}).get("Content-Type") != "application/json":
        problems.append("Content-Type is not application/json")
    try:
        body = json.loads(reply.get("body", ""))
    except (TypeError, ValueError):
        return [*problems, "body is not JSON"]
    if status == 400 and (not body.get("error") or not body.get("details")):
        problems.append("400 without error and details")
    if recorded:
        if status != 200:
            problems.append(f"the request as recorded got {status}: {body!r:.300}")
        else:
            wrong = check(expected, body.get("prediction"), tolerance)
            if wrong:
                problems.append(wrong)
    return problems


def tolerances(models: Path, artifacts: dict[str, str]) -> dict[str, float]:
    """Each fuzzed variant's tolerance: the manifest's for its artifact (1e-9 when unstated)."""
    return {name: manifest_tolerance(models, artifact) or 1e-9 for name, artifact in artifacts.items()}


Handler = Callable[[object, object], object]
