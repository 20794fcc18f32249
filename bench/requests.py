"""The requests file: one parser and one converter for every tool that sends a function requests.

A requests file is JSON Lines, one request per line (``docs/requests.md``)::

    {"method": "GET", "query": {"ms": "2"}, "weight": 3}
    {"method": "POST", "body": {"ms": 5}, "headers": {"X-Trace": "a"}, "expected": 0.25}
    {"event": {"detail-type": "tick"}}

- ``method`` (default GET): one of API Gateway's seven (``handler.local.events.HTTP_METHODS``);
- ``query``: an object of strings; ``headers``: an object of strings;
- ``body``: a string (sent as is), or any other JSON value (sent as JSON, with
  ``Content-Type: application/json`` unless the line names a Content-Type);
- ``weight`` (default 1, > 0): how often the line is drawn relative to the others;
- ``expected``: the answer body's ``prediction`` (``--verify`` checks it);
- ``event`` (instead of method/query/headers/body): an object passed as is to a function
  invoked directly (the Lambda Invoke API); the HTTP tools cannot send it.

:func:`read_requests` is the parser (every malformed line raises :class:`RequestsFileError`
naming the file and the line number); :func:`http_request` turns a line into what an HTTP
client sends (Locust, ``bench.endpoint``); :func:`proxy_event` into the API Gateway v1 proxy
event the emulator's gateway builds for that same request (``handler.local.events.rest_event``,
the one builder both use), so a function sees the same event through the gateway and through
Invoke (tests/test_requests_file.py compares them); :func:`invoke_payload` is what the Invoke
API tools send. :class:`Sampler` draws lines by weight from a seeded generator.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

HTTP_KEYS = frozenset({"method", "query", "headers", "body"})
KEYS = HTTP_KEYS | {"weight", "expected", "event"}
# handler.local.events.HTTP_METHODS (not imported: the Locust workers need none of the emulator)
METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})
DEFAULT_TOLERANCE = 1e-9
JSON_SPACE = " \t\r\n"  # RFC 8259 section 2: the whitespace JSON allows around a value
PEER = "127.0.0.1"  # the client's address in a converted event (the tools run on loopback)


class RequestsFileError(ValueError):
    """A requests file that cannot be used; the message is one line naming the file (and line)."""


@dataclass(frozen=True)
class RequestLine:
    """One line of a requests file, checked."""

    number: int  # 1-based line number in its file
    method: str = "GET"
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    weight: float = 1.0
    expected: object = None
    has_expected: bool = False
    event: dict | None = None

    @property
    def is_event(self) -> bool:
        return self.event is not None


@dataclass(frozen=True)
class HttpRequest:
    """What an HTTP client sends for a line: ``path`` includes the query string."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class RequestsFile:
    path: Path
    lines: tuple[RequestLine, ...]
    cumulative: tuple[float, ...] = field(default=(), repr=False)

    @property
    def has_events(self) -> bool:
        return any(line.is_event for line in self.lines)

    @property
    def has_expected(self) -> bool:
        return any(line.has_expected for line in self.lines)

    def require_http(self, tool: str) -> None:
        """``tool`` sends HTTP requests: an ``event`` line is refused (one line naming it)."""
        line = next((line for line in self.lines if line.is_event), None)
        if line is not None:
            raise RequestsFileError(
                f"{self.path}:{line.number}: an 'event' line is for a directly invoked function; "
                f"{tool} sends HTTP requests (method/query/headers/body)"
            )


def _strings(value: object, key: str, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise RequestsFileError(f"{where}: {key!r} must be an object of strings, not {type(value).__name__}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise RequestsFileError(f"{where}: {key}[{name!r}] must be a string, not {json.dumps(item)}")
    return tuple(value.items())


# RFC 9110 section 5.1: a field name is a token; 5.5: a field value holds no CR, LF or NUL
# ("a recipient ... MUST either reject the message or replace each of those characters with SP").
TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _header_fields(headers: tuple[tuple[str, str], ...], where: str) -> tuple[tuple[str, str], ...]:
    """Headers an HTTP/1.1 client can send as they are: each name a non-empty token, each value
    without CR, LF or NUL, both encodable as ISO-8859-1 (what HTTP/1.1 clients put on the wire)."""
    for name, value in headers:
        if not name or not set(name) <= TOKEN:
            raise RequestsFileError(
                f"{where}: header name {name!r} must be a non-empty token (letters, digits, !#$%&'*+-.^_`|~)"
            )
        if any(char in value for char in "\r\n\0"):
            raise RequestsFileError(f"{where}: headers[{name!r}] holds CR, LF or NUL: {value!r}")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise RequestsFileError(
                f"{where}: headers[{name!r}] is not ISO-8859-1 (latin-1), as HTTP/1.1 headers are: {value!r}"
            ) from None
    return headers


def _loads(text: str, where: str) -> object:
    """Strict JSON: no NaN, Infinity or a number too large for a float, and no key given twice in
    an object (``json.loads`` takes all of them, keeping the last of a repeated key)."""

    def constant(name: str) -> float:
        raise RequestsFileError(f"{where}: {name} is not a JSON number: use a finite number")

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise RequestsFileError(f"{where}: {text} is too large for a float: use a finite number")
        return value

    def unique(pairs: list[tuple[str, object]]) -> dict:
        document: dict = {}
        for key, value in pairs:
            if key in document:
                raise RequestsFileError(f"{where}: key {key!r} appears twice in one object")
            document[key] = value
        return document

    try:
        return json.loads(text, parse_constant=constant, parse_float=number, object_pairs_hook=unique)
    except RequestsFileError:
        raise
    except ValueError as exc:
        raise RequestsFileError(f"{where}: not JSON: {exc}") from None


def _positive_float(value: object) -> bool:
    """A JSON number (not a boolean) that is a finite float > 0 (an integer past the largest
    float is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value)) and value > 0
    except OverflowError:
        return False


def parse_line(text: str, number: int, path: Path | str = "<requests>") -> RequestLine:
    """One non-blank line; :class:`RequestsFileError` names ``path:number`` and what is wrong."""
    where = f"{path}:{number}"
    document = _loads(text, where)
    if not isinstance(document, dict):
        raise RequestsFileError(f"{where}: a line must be a JSON object, not {type(document).__name__}")
    unknown = sorted(set(document) - KEYS)
    if unknown:
        raise RequestsFileError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known: {sorted(KEYS)}"
        )
    weight = document.get("weight", 1)
    if not _positive_float(weight):
        raise RequestsFileError(f"{where}: 'weight' must be a finite number > 0, not {json.dumps(weight)}")
    common = {"number": number, "weight": float(weight), "expected": document.get("expected")}
    common["has_expected"] = "expected" in document
    if "event" in document:
        both = sorted(HTTP_KEYS & set(document))
        if both:
            raise RequestsFileError(f"{where}: 'event' excludes {', '.join(map(repr, both))}")
        if not isinstance(document["event"], dict):
            raise RequestsFileError(
                f"{where}: 'event' must be an object, not {type(document['event']).__name__}"
            )
        return RequestLine(event=document["event"], **common)
    method = document.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise RequestsFileError(
            f"{where}: 'method' must be one of {', '.join(sorted(METHODS))}, not {json.dumps(method)}"
        )
    query = _strings(document.get("query", {}), "query", where)
    headers = _header_fields(_strings(document.get("headers", {}), "headers", where), where)
    body = document.get("body")
    if isinstance(body, str):
        payload = body.encode()
    elif body is None:
        payload = b""
    else:
        payload = json.dumps(body, separators=(",", ":")).encode()
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers = (*headers, ("Content-Type", "application/json"))
    return RequestLine(method=method.upper(), query=query, headers=headers, body=payload, **common)


def parse_lines(lines: Iterable[str], path: Path | str = "<requests>") -> RequestsFile:
    """Every line of a requests file (blank lines, JSON whitespace alone, are skipped); at least
    one request; the weights' running sum finite."""
    parsed = tuple(
        parse_line(text, number, path) for number, text in enumerate(lines, 1) if text.strip(JSON_SPACE)
    )
    if not parsed:
        raise RequestsFileError(f"{path}: no requests (one JSON object per line)")
    cumulative = tuple(itertools.accumulate(line.weight for line in parsed))
    for line, total in zip(parsed, cumulative, strict=True):
        if not math.isfinite(total):
            raise RequestsFileError(
                f"{path}:{line.number}: the weights up to this line sum past the largest float; "
                "use smaller weights (only their ratios matter)"
            )
    return RequestsFile(Path(path), parsed, cumulative)


def read_requests(path: Path | str) -> RequestsFile:
    """The requests file at ``path``; :class:`RequestsFileError` for an unreadable or bad one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RequestsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RequestsFileError(f"{path}: not UTF-8: {exc}") from None
    # "\n" only: str.splitlines() also breaks at \x0b, \x0c, \x1c-\x1e, \x85, U+2028 and U+2029.
    # A JSON string may hold \x85, U+2028 and U+2029 as they are (RFC 8259 section 7 requires
    # escaping only U+0000-U+001F), so such a line would be cut in two; and any of them would
    # shift the number of every later line in the errors.
    return parse_lines(text.split("\n"), path)


def tutorial_requests(query: Mapping[str, str]) -> RequestsFile:
    """One GET line with ``query``: what ``--payload tutorial`` sends."""
    return RequestsFile(Path("<tutorial>"), (RequestLine(number=1, query=tuple(query.items())),), (1.0,))


class Sampler:
    """Lines drawn by weight (``random.Random(seed)``: the same seed, the same sequence)."""

    def __init__(self, requests: RequestsFile, seed: int | None = 0) -> None:
        self.lines = requests.lines
        self.cumulative = requests.cumulative
        self.total = requests.cumulative[-1]
        self.rng = random.Random(seed)

    def draw(self) -> RequestLine:
        if len(self.lines) == 1:
            return self.lines[0]
        return self.lines[bisect.bisect_right(self.cumulative, self.rng.random() * self.total)]


def http_request(line: RequestLine, function_path: str) -> HttpRequest:
    """The line as an HTTP client sends it to ``/{function_path}`` (e.g. ``staging/sleepy``)."""
    if line.is_event:
        raise RequestsFileError(f"line {line.number}: an 'event' line has no HTTP request")
    query = f"?{urlencode(line.query)}" if line.query else ""
    return HttpRequest(line.method, f"/{function_path.strip('/')}{query}", line.headers, line.body)


def api_settings(config=None):
    """The API whose events the converter builds: the emulator configuration's (its stage, API
    id, region, stage variables, binaryMediaTypes), or the emulator's defaults."""
    from handler.local.config import EmulatorConfig
    from handler.local.environment import ACCOUNT_ID
    from handler.local.events import Api

    return Api.of(config if config is not None else EmulatorConfig(), ACCOUNT_ID)


def client_headers(line: RequestLine) -> list[tuple[str, str]]:
    """The headers a plain HTTP/1.1 client sends for the line: the line's own, then
    ``Content-Length`` when there is a body (the emulator's gateway sees these; its ``Host`` is
    replaced by the API's domain either way)."""
    headers = list(line.headers)
    if line.body and not any(name.lower() == "content-length" for name, _ in headers):
        headers.append(("Content-Length", str(len(line.body))))
    return headers


def proxy_event(
    line: RequestLine, function: str, api=None, request_id: str | None = None, now_s: float | None = None
) -> dict:
    """API Gateway's v1 proxy event for the line sent to ``function`` (the emulator's builder,
    ``handler.local.events.rest_event``); an ``event`` line is returned as is."""
    if line.event is not None:
        return line.event
    from handler.local.events import ClientRequest, rest_event

    client = ClientRequest(
        method=line.method,
        function=function,
        proxy=None,
        headers=client_headers(line),
        raw_query=urlencode(line.query),
        body=line.body,
        peer=PEER,
    )
    return rest_event(
        client, api if api is not None else api_settings(), request_id or str(uuid.uuid4()), now_s
    )


def invoke_payload(line: RequestLine, function: str, api=None) -> bytes:
    """What a tool that calls the Lambda Invoke API sends for the line (a fresh request id)."""
    from handler.local.events import event_bytes

    return event_bytes(proxy_event(line, function, api))


def payload_source(
    requests: Path | None, function: str, default: bytes, emulator_config: Path | None = None, seed: int = 0
) -> Callable[[], bytes]:
    """Each Invoke's payload for the tools that call the Lambda Invoke API: a line of
    ``requests`` drawn by weight (seeded), as :func:`invoke_payload` makes it for the API of
    ``emulator_config`` (default: the emulator's defaults); ``default`` without a file."""
    if requests is None:
        return lambda: default
    from bench.functions import load

    api = api_settings(load(emulator_config) if emulator_config is not None else None)
    sampler = Sampler(read_requests(requests), seed)
    return lambda: invoke_payload(sampler.draw(), function, api)


def prediction(body: str) -> object:
    """The ``prediction`` of a JSON answer body, or the tutorial's ``Prediction p``; None if none."""
    text = body.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return None
        return document.get("prediction") if isinstance(document, dict) else None
    if text.startswith("Prediction "):
        try:
            return float(text.removeprefix("Prediction "))
        except ValueError:
            return None
    return None


def matches(got: object, expected: object, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """``got`` equals ``expected`` within ``tolerance``, absolute and relative
    (``math.isclose(rel_tol=abs_tol=tolerance)``) for numbers; label by label for a mapping of
    class probabilities; exactly for anything else."""
    if isinstance(expected, bool) or isinstance(got, bool):  # True == 1 in Python: not here
        return isinstance(got, bool) and isinstance(expected, bool) and got == expected
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return math.isclose(got, expected, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(
            matches(got[key], expected[key], tolerance) for key in expected
        )
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(
            matches(a, b, tolerance) for a, b in zip(got, expected, strict=True)
        )
    return got == expected


def manifest_tolerance(models: Path, artifact: str) -> float | None:
    """``artifacts[artifact].tolerance`` of ``models/manifest.json`` (v2), or None."""
    try:
        manifest = json.loads((Path(models) / "manifest.json").read_text(encoding="utf-8"))
        value = manifest["artifacts"][Path(artifact).name]["tolerance"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
