"""Hypothesis strategies for bad input to the handler and the gateway, and the rules every
answer must follow. Used by ``tests/test_fuzz.py`` (a few hundred cases) and ``bench.hardening.fuzz``
(tens of thousands).

Inputs are built around the valid request so that most cases sit near the accept/refuse
boundary: the ten features with a few mutations (a feature dropped, repeated, renamed, an
extra parameter, a value replaced by one of the hard values below or by arbitrary text),
next to wholly arbitrary parameters. The hard values are the ones the rules name (empty,
unicode, 10 kB, NaN/inf/-0/1e308) and the ones a parser gets wrong (non-ASCII digits that
``float()`` accepts, surrounding blanks, hex, underscores).

Rules (``check_*`` return a list of violations; empty means the answer is right):
- handler: a dict with ``statusCode`` 200 or 400, JSON ``Content-Type``, a JSON body; 200
  carries a finite probability in [0, 1], 400 an ``error`` and non-empty ``details``; a query
  with the ten features once each as "0"/"1" and nothing else must be 200 with the model's
  prediction;
- gateway: no 5xx; unless HEAD, a JSON object body with a JSON ``Content-Type``; a valid
  prediction request must be 200.
"""

from __future__ import annotations

import json
import math
import string
import urllib.parse
from dataclasses import dataclass, field

from hypothesis import strategies as st

from bench.reference import reference_prediction  # noqa: F401  (the fuzzer's oracle)
from handler.features import FEATURES

CANONICAL = ("0", "1")
HARD_VALUES = (
    "", "0", "1", "-0", "+0", "+1", "0.0", "1.0", "0.5", ".5", "1.", "1e0", "1E-3", "-1",
    "1000000", "1000001", "-1e6", "1e308", "-1e308", "1e309", "4.9e-324", "NaN", "nan", "-nan",
    "inf", "-inf", "Infinity", "-Infinity", "0x1", "1_0", "0b1", "١", "０", "¹", "一", " 1",
    "1 ", "\t1", "1\n", "true", "false", "null", "None", "[]", "{}", "\x00", "%", "%00", "%2",
    "&", "=", "+", ";", "😀", "Ｇ1", "\u202e1", "é", "\ud800", "1" * 32, "1" * 33, "9" * 10_240,
    "0" * 10_240,
)  # fmt: skip
EXTRA_KEYS = ("g1", "G0", "G11", "G01", "G 1", "G1 ", " G1", "Ｇ1", "", "model", "G1[]", "%47%31")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Valid HTTP tokens that API Gateway does not route, and lower case (methods are case-sensitive).
ODD_METHODS = ("TRACE", "PROPFIND", "PURGE", "SEARCH", "get", "Post", "BREW")
# Headers the client library owns or that would change the connection itself.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect"})
TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(max_size=max_size)


values = st.one_of(
    st.sampled_from(CANONICAL),
    st.sampled_from(HARD_VALUES),
    _text(40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
)
keys = st.one_of(st.sampled_from(FEATURES), st.sampled_from(EXTRA_KEYS), _text(12))


@st.composite
def query_pairs(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Query parameters in order, repeats allowed: mostly the valid ten, mutated."""
    if draw(st.integers(0, 4)) == 0:  # one in five: arbitrary parameters
        return draw(st.lists(st.tuples(keys, values), max_size=14))
    pairs = [(name, draw(st.sampled_from(CANONICAL))) for name in FEATURES]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(("drop", "repeat", "value", "extra", "rename", "shuffle")))
        if not pairs and kind != "extra":
            continue
        index = draw(st.integers(0, max(len(pairs) - 1, 0)))
        if kind == "drop":
            del pairs[index]
        elif kind == "repeat":
            pairs.insert(draw(st.integers(0, len(pairs))), (pairs[index][0], draw(values)))
        elif kind == "value":
            pairs[index] = (pairs[index][0], draw(values))
        elif kind == "extra":
            pairs.append((draw(keys), draw(values)))
        elif kind == "rename":
            pairs[index] = (draw(keys), pairs[index][1])
        else:
            pairs = draw(st.permutations(pairs))
    return pairs


def is_valid_prediction_query(pairs: list[tuple[str, str]]) -> bool:
    """The ten features once each as "0" or "1", and nothing else."""
    return sorted(name for name, _ in pairs) == sorted(FEATURES) and all(v in CANONICAL for _, v in pairs)


def proxy_query(pairs: list[tuple[str, str]]) -> tuple[dict | None, dict | None]:
    """As API Gateway maps a query string: the last value wins; every value in the multi form."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single or None, multi or None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text(20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text(6), children, max_size=4),
    max_leaves=12,
)


@st.composite
def handler_events(draw: st.DrawFn) -> object:
    """Proxy events as the gateway builds them, and structurally wrong ones (direct invokes)."""
    pairs = draw(query_pairs())
    single, multi = proxy_query(pairs)
    event: dict = {
        "resource": "/logit",
        "httpMethod": draw(st.sampled_from(HTTP_METHODS)),
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "body": draw(st.none() | _text(30)),
        "isBase64Encoded": False,
    }
    shape = draw(st.integers(0, 9))
    if shape == 0:
        event["queryStringParameters"] = draw(json_values)
    elif shape == 1 and single:
        name = draw(st.sampled_from(sorted(single)))
        single[name] = draw(json_values | st.sampled_from([math.nan, math.inf, -0.0, 1e308, 2**70]))
    elif shape == 2:
        event["multiValueQueryStringParameters"] = draw(json_values)
    elif shape == 3:
        return draw(json_values)
    elif shape == 4:
        del event["queryStringParameters"]
    return event


@dataclass(frozen=True)
class HttpCase:
    method: str
    path: str  # already percent-encoded, with the query string
    headers: tuple[tuple[str, str], ...]
    body: bytes
    prediction_request: bool = False  # a valid request for a prediction: must be 200

    def describe(self) -> str:
        return f"{self.method} {self.path[:200]} headers={len(self.headers)} body={len(self.body)} B"


def _quote(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def raw_query(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> str:
    """The pairs as a query string: percent-encoded, or with hand-made breakage mixed in."""
    encoded = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs)
    style = draw(st.integers(0, 7))
    if style == 0:  # junk separators and broken escapes
        junk = draw(
            st.lists(st.sampled_from(["&", "&&", "=", "==", "%", "%zz", "%4", "+", ";", "#"]), max_size=4)
        )
        encoded = encoded + "".join(junk)
    elif style == 1:  # a parameter with no "="
        encoded = encoded + "&" + _quote(draw(keys))
    return encoded


header_names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=24).filter(
    lambda name: name.lower() not in RESERVED_HEADERS
)
header_values = st.one_of(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
    ),
    st.sampled_from(["", "9" * 10_240, "application/json", "text/plain; charset=utf-8", "gzip", "*/*"]),
)


@dataclass
class GatewayTarget:
    """Where the HTTP cases go: the stage and the function that predicts."""

    stage: str = "staging"
    function: str = "logit-lean"
    other_paths: tuple[str, ...] = field(default_factory=tuple)


def http_cases(target: GatewayTarget) -> st.SearchStrategy[HttpCase]:
    @st.composite
    def build(draw: st.DrawFn) -> HttpCase:
        pairs = draw(query_pairs())
        query = draw(raw_query(pairs))
        prefix = f"/{target.stage}/{target.function}"
        path = draw(
            st.one_of(
                st.just(prefix),
                st.just(prefix),
                st.just(prefix + "/"),
                st.builds(lambda tail: f"{prefix}/{_quote(tail)}", _text(20)),
                st.builds(lambda s, f: f"/{_quote(s)}/{_quote(f)}", _text(10), _text(10)),
                st.sampled_from(["/", "//", f"/{target.stage}", f"/{target.stage}/", "/%00", "/..%2f.."]),
                st.sampled_from(target.other_paths or ("/",)),
            )
        )
        pick = draw(st.integers(0, 9))  # one in ten an odd method, one in ten an arbitrary token
        if pick == 0:
            method = draw(st.sampled_from(ODD_METHODS))
        elif pick == 1:
            method = draw(st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=10))
        else:
            method = draw(st.sampled_from(HTTP_METHODS))
        headers = draw(st.lists(st.tuples(header_names, header_values), max_size=6))
        body = draw(
            st.one_of(
                st.just(b""),
                st.binary(max_size=256),
                _text(256).map(lambda text: text.encode("utf-8", "surrogatepass")),
                json_values.map(lambda value: json.dumps(value).encode()),
            )
        )
        if method in ("GET", "HEAD", "DELETE", "OPTIONS") and draw(st.booleans()):
            body = b""
        valid = (
            path == prefix
            and is_valid_prediction_query(pairs)
            and query == "&".join(f"{k}={v}" for k, v in pairs)
            and method == "GET"
        )
        return HttpCase(method, f"{path}?{query}" if query else path, tuple(headers), body, valid)

    return build()


def check_handler_reply(event: object, reply: object, reference: float | None) -> list[str]:
    """What is wrong with a handler's reply to ``event`` (empty: nothing)."""
    if not isinstance(reply, dict):
        return [f"reply is {type(reply).__name__}, not a dict"]
    problems = []
    status = reply.get("statusCode")
    if status not in (200, 400):
        problems.append(f"statusCode {status!r}")
    headers = reply.get("headers") or {}
    if headers.get("Content-Type") != "application/json":
        problems.append(f"Content-Type {headers.get('Content-Type')!r}")
    try:
        body = json.loads(reply.get("body", ""))
    except (TypeError, ValueError):
        return [*problems, "body is not JSON"]
    if status == 200:
        prediction = body.get("prediction")
        if not isinstance(prediction, float) or not 0.0 <= prediction <= 1.0:
            problems.append(f"prediction {prediction!r}")
        elif reference is not None and abs(prediction - reference) > 1e-12:
            problems.append(f"prediction {prediction!r} != model {reference!r}")
    elif status == 400 and (not body.get("error") or not body.get("details")):
        problems.append("400 without error and details")
    if reference is not None and status != 200:
        problems.append(f"a valid request got {status}")
    return problems


def check_http_answer(case: HttpCase, status: int, content_type: str, body: bytes) -> list[str]:
    """What is wrong with the gateway's answer to ``case`` (empty: nothing)."""
    problems = []
    if status >= 500:
        problems.append(f"status {status}")
    elif not 200 <= status < 500:
        problems.append(f"status {status} is not 2xx/4xx")
    if case.prediction_request and status != 200:
        problems.append(f"a valid prediction request got {status}")
    if case.method == "HEAD":
        return problems
    if not content_type.startswith("application/json"):
        problems.append(f"Content-Type {content_type!r}")
    try:
        document = json.loads(body)
    except ValueError:
        return [*problems, f"body is not JSON: {body[:80]!r}"]
    if not isinstance(document, dict):
        problems.append("body is not a JSON object")
    return problems


def valid_params(event: object) -> dict | None:
    """The query of ``event`` when it is a valid prediction request as the handler sees it."""
    if not isinstance(event, dict):
        return None
    params, multi = event.get("queryStringParameters"), event.get("multiValueQueryStringParameters")
    if not isinstance(params, dict) or sorted(params) != sorted(FEATURES):
        return None
    if not all(isinstance(v, str) and v in CANONICAL for v in params.values()):
        return None
    if isinstance(multi, dict) and any(isinstance(v, list) and len(v) > 1 for v in multi.values()):
        return None
    return params
