"""``python -m bench.hardening.fuzz``: hypothesis fuzzing of the handler and of the emulator's HTTP surface.

Two campaigns, each ``--cases`` generated cases (default 10,000; the strategies and the rules
every answer must follow are in ``bench.hardening.fuzzcases``):

1. *handler*: each case is an event, given in this process to the ``lambda_handler`` of every
   selected variant of ``handler.app`` (``--variants``, default lean,numpy,pandas); the
   tutorial's handler is not fuzzed: it is kept as published, and it raises on bad input.
2. *gateway*: each case is an HTTP request (method, path, query string, headers, body) sent on
   a fresh connection over loopback to a local emulator this command starts with the lean
   function; afterwards the emulator's output and log must hold no traceback and the function's
   environment must be the one that served the first request (no crash, no replacement).

A violated rule stops the campaign; hypothesis shrinks the case and the results record it.
Results JSON (``kind: fuzz``) in ``--results`` (default ``results/fuzz-<UTC>.json``); exit 0
when no rule was broken, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib
import json
import os
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from bench.cli import positive_int
from bench.hardening.fuzzcases import (
    GatewayTarget,
    HttpCase,
    check_handler_reply,
    check_http_answer,
    handler_events,
    http_cases,
    reference_prediction,
    valid_params,
)
from bench.machine import collect_metadata
from bench.results import EXIT_CODES, FuzzRun, utc_stamp, write_json_atomic
from bench.results.gate import goal, judge
from bench.results.hardening import FuzzCampaign
from handler.variants import APP_HANDLER, VARIANTS, applicability

DEFAULT_VARIANTS = "lean,numpy,pandas"
TRACEBACK = "Traceback (most recent call last)"
ENVIRONMENT_DIED = re.compile(r"environment \d+ (exit status|signal)")


class RuleBroken(AssertionError):
    pass


@dataclass
class Campaign:
    """One fuzzing campaign's figures, as stored in the results."""

    surface: str
    variants: list[str] = field(default_factory=list)
    cases: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    failure: str | None = None
    checks: dict[str, object] = field(default_factory=dict)
    refused_by_http_parser: int | None = None  # gateway: requests aiohttp's parser answered itself

    @property
    def passed(self) -> bool:
        return self.failure is None and all(value is True for value in self.checks.values())


def _settings(cases: int) -> settings:
    return settings(
        max_examples=cases,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


def _run(campaign: Campaign, test: Callable[[], None]) -> Campaign:
    started = time.perf_counter_ns()
    try:
        test()
    except Exception as exc:  # the rule hypothesis found broken, shrunk
        campaign.failure = "".join(traceback.format_exception_only(exc)).strip()[:4000]
    campaign.seconds = round((time.perf_counter_ns() - started) / 1e9, 3)
    return campaign


@contextlib.contextmanager
def loaded_handler(variant_name: str, models: Path) -> Iterator[Callable]:
    """``handler.app.lambda_handler`` configured as ``variant_name``, imported in this process."""
    variant = VARIANTS[variant_name]
    if variant.handler != APP_HANDLER:
        raise ValueError(f"{variant_name}: only handler.app variants are fuzzed")
    saved = {
        name: os.environ.get(name) for name in ("MODEL_URI", "MODEL_FORMAT", "INPUT_PATH", "MODEL_SHA256")
    }
    os.environ.update(variant.environment(str(models)))
    os.environ.pop("MODEL_SHA256", None)
    sys.modules.pop("handler.app", None)
    try:
        yield importlib.import_module("handler.app").lambda_handler
    finally:
        sys.modules.pop("handler.app", None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def fuzz_handlers(
    handlers: dict[str, Callable], coefficients: dict, cases: int, seed: int | None
) -> Campaign:
    campaign = Campaign("handler", variants=sorted(handlers))
    outcomes: Counter[str] = Counter()

    @_settings(cases)
    @given(handler_events())
    def test(event: object) -> None:
        campaign.cases += 1
        params = valid_params(event)
        reference = reference_prediction(coefficients, params) if params is not None else None
        _ask(handlers, event, outcomes, lambda _name, reply: check_handler_reply(event, reply, reference))

    return _finish(campaign, test, seed, outcomes)


def _ask(handlers: dict[str, Callable], event: object, outcomes: Counter[str], rules: Callable) -> None:
    """Every handler answers ``event``; RuleBroken names the first whose reply breaks ``rules``."""
    for name, handler in handlers.items():
        reply = handler(event, None)
        outcomes[str(reply.get("statusCode")) if isinstance(reply, dict) else "not a dict"] += 1
        problems = rules(name, reply)
        if problems:
            raise RuleBroken(f"{name}: {'; '.join(problems)} for event {event!r:.500}")


def _finish(
    campaign: Campaign, test: Callable[[], None], seed: int | None, outcomes: Counter[str]
) -> Campaign:
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    _run(campaign, test)
    campaign.checks["every reply well-formed"] = campaign.failure is None
    campaign.outcomes = dict(sorted(outcomes.items()))
    return campaign


def fuzz_model_handlers(
    handlers: dict[str, Callable], models: Path, cases: int, seed: int | None
) -> Campaign:
    """A user's model (:mod:`bench.hardening.fuzzmodel`): events from its own requests."""
    from bench.hardening.fuzzmodel import check_model_reply, model_events, model_lines, tolerances

    lines = model_lines(models)
    if not lines:
        raise ValueError(f"{models}: requests.jsonl has no GET line with an expected prediction")
    allowed = tolerances(models, {name: VARIANTS[name].artifact_in(models) for name in handlers})
    campaign = Campaign("handler", variants=sorted(handlers))
    outcomes: Counter[str] = Counter()

    @_settings(cases)
    @given(model_events(lines))
    def test(case: tuple[dict, object, bool]) -> None:
        event, expected, recorded = case
        campaign.cases += 1
        _ask(
            handlers,
            event,
            outcomes,
            lambda name, reply: check_model_reply(reply, expected, recorded, allowed[name]),
        )

    return _finish(campaign, test, seed, outcomes)


def send(base_url: str, case: HttpCase, timeout_s: float = 35.0) -> tuple[int, str, bytes]:
    """One request on a fresh connection: (status, Content-Type, body)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        connection.putrequest(case.method, case.path, skip_accept_encoding=True)
        for name, value in case.headers:
            connection.putheader(name, value.encode("latin-1"))
        if case.body or case.method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(case.body)))
        connection.endheaders(case.body or None)
        response = connection.getresponse()
        body = response.read()
        return response.status, response.getheader("Content-Type") or "", body
    finally:
        connection.close()


def fuzz_gateway(base_url: str, target: GatewayTarget, cases: int, seed: int | None) -> Campaign:
    campaign = Campaign("gateway")
    outcomes: Counter[str] = Counter()

    @_settings(cases)
    @given(http_cases(target))
    def test(case: HttpCase) -> None:
        campaign.cases += 1
        status, content_type, body = send(base_url, case)
        outcomes[str(status)] += 1
        problems = check_http_answer(case, status, content_type, body)
        if problems:
            raise RuleBroken(f"{'; '.join(problems)} for {case.describe()}")

    if seed is not None:
        test = hypothesis_seed(seed)(test)
    _run(campaign, test)
    campaign.outcomes = dict(sorted(outcomes.items()))
    campaign.checks["every answer 2xx/4xx JSON"] = campaign.failure is None
    return campaign


def log_problems(paths: list[Path]) -> list[str]:
    """Tracebacks and environment deaths in the emulator's output and log files."""
    problems = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        if TRACEBACK in text:
            problems.append(f"{path.name}: {text.count(TRACEBACK)} traceback(s)")
        deaths = ENVIRONMENT_DIED.findall(text)
        if deaths:
            problems.append(f"{path.name}: {len(deaths)} environment death(s)")
    return problems


def run_gateway_campaign(models: Path, cases: int, seed: int | None, work: Path) -> Campaign:
    from bench.process import running_emulator

    target = GatewayTarget(
        function="logit-lean",
        other_paths=(
            "/2015-03-31/functions/logit-lean/invocations",
            "/2015-03-31/functions/logit-lean",
            "/2015-03-31/functions/no-such-function/invocations",
            "/staging/no-such-function",
        ),
    )
    with running_emulator(models, work, "--functions", "logit-lean", "--throttle-rate", "100000") as emulator:
        warm = HttpCase(
            "GET", "/staging/logit-lean?" + "&".join(f"G{i}=0" for i in range(1, 11)), (), b"", True
        )
        first = send(emulator.base_url, warm)
        if first[0] != 200:
            raise RuntimeError(
                f"the lean function did not answer its first request: {first[0]} {first[2][:200]!r}"
            )
        before = {process.pid for process in emulator.children()}
        campaign = fuzz_gateway(emulator.base_url, target, cases, seed)
        after = {process.pid for process in emulator.children()}
    problems = log_problems([work / "emulator.out", work / "emulator.log"])
    output = (work / "emulator.out").read_text(encoding="utf-8", errors="replace")
    campaign.refused_by_http_parser = output.count("refused a request from")
    campaign.checks["no traceback or environment death in the logs"] = not problems
    campaign.checks["the first environment served to the end"] = bool(before) and before <= after
    if problems:
        campaign.checks["log problems"] = problems
    return campaign


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hardening.fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--cases", type=positive_int, default=10_000, help="cases per campaign (default 10000)"
    )
    parser.add_argument(
        "--variants", default=DEFAULT_VARIANTS, help=f"handler.app variants (default {DEFAULT_VARIANTS})"
    )
    parser.add_argument("--surfaces", default="handler,gateway", help="handler, gateway or both (default)")
    parser.add_argument(
        "--models", type=Path, default=Path("models"), help="trained models (python -m training)"
    )
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    parser.add_argument("--results", type=Path, default=None, help="default results/fuzz-<UTC>.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    surfaces = [part.strip() for part in args.surfaces.split(",") if part.strip()]
    if not surfaces or set(surfaces) - {"handler", "gateway"}:
        parser.error(f"--surfaces: expected handler and/or gateway, not {args.surfaces!r}")
    user_model = _user_model(args.models)
    if user_model and args.variants == DEFAULT_VARIANTS:  # every handler.app variant that applies
        names = available_app_variants(args.models)
    else:
        names = [part.strip() for part in args.variants.split(",") if part.strip()]
    if user_model and "gateway" in surfaces:
        print("gateway: not fuzzed for a user's model (its cases are the tutorial's ten features)")
        surfaces.remove("gateway")
    if not surfaces:
        parser.error("--surfaces: nothing left to fuzz for a user's model (use handler)")
    for name in names:
        if name not in VARIANTS or VARIANTS[name].handler != APP_HANDLER or not VARIANTS[name].available():
            parser.error(f"--variants: {name!r} is not an available handler.app variant")
    manifest = args.models / "manifest.json"
    if not manifest.is_file():
        parser.error(f"--models {str(args.models)!r}: no manifest.json (run python -m training)")
    coefficients = {} if user_model else json.loads((args.models / "logit.json").read_text(encoding="utf-8"))
    campaigns: list[Campaign] = []
    if "handler" in surfaces:
        with contextlib.ExitStack() as stack:
            handlers = {
                name: stack.enter_context(loaded_handler(name, args.models.resolve())) for name in names
            }
            if user_model:
                campaign = fuzz_model_handlers(handlers, args.models.resolve(), args.cases, args.seed)
            else:
                campaign = fuzz_handlers(handlers, coefficients, args.cases, args.seed)
        campaigns.append(campaign)
        _print(campaign)
    if "gateway" in surfaces:
        with tempfile.TemporaryDirectory(prefix="fuzz-emulator-") as work:
            campaign = run_gateway_campaign(args.models.resolve(), args.cases, args.seed, Path(work))
        campaigns.append(campaign)
        _print(campaign)
    gates = [
        goal(
            f"{campaign.surface} rules",
            campaign.passed,
            campaign.failure or f"every rule held over {campaign.cases:,} cases",
            "every rule holds for every case",
            samples=campaign.cases,
        )
        for campaign in campaigns
    ]
    document = FuzzRun(
        metadata=collect_metadata({k: str(v) for k, v in vars(args).items()}),
        campaigns=[FuzzCampaign.from_dict(asdict(campaign)) for campaign in campaigns],
        gates=gates,
        status=judge(gates),
    )
    path = args.results or Path("results") / f"fuzz-{utc_stamp()}.json"
    write_json_atomic(path, document)
    print(f"{document.status}: results in {path}")
    return EXIT_CODES[document.status]


def _user_model(models: Path) -> bool:
    """The models directory holds a user's model, not the tutorial's (its manifest says)."""
    from handler.manifest import ManifestError
    from handler.manifest import read as read_manifest
    from handler.tutorial import is_tutorial

    try:
        return not is_tutorial(read_manifest(models / "manifest.json").features)
    except ManifestError:
        return False


def available_app_variants(models: Path) -> list[str]:
    """The handler.app variants that apply to the model in ``models``."""
    return [
        entry.variant.name
        for entry in applicability(models)
        if entry.reason is None and entry.variant.handler == APP_HANDLER and entry.variant.available()
    ]


def _print(campaign: Campaign) -> None:
    outcomes = ", ".join(f"{status}: {count:,}" for status, count in campaign.outcomes.items())
    print(f"{campaign.surface}: {campaign.cases:,} cases in {campaign.seconds:.1f} s ({outcomes})")
    if campaign.variants:
        print(f"  variants: {', '.join(campaign.variants)}")
    if campaign.refused_by_http_parser is not None:
        print(f"  refused by the HTTP parser (JSON 400, one log line): {campaign.refused_by_http_parser:,}")
    for name, value in campaign.checks.items():
        print(f"  {name}: {value}")
    if campaign.failure:
        print(f"  FAILED: {campaign.failure}")


if __name__ == "__main__":
    sys.exit(main())
