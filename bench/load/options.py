"""The Locust harness's option parsing and payloads: pure functions, no Locust import.

(The plugin, ``bench.load.plugin``, imports Locust, which monkey-patches the process with
gevent; keeping these apart lets any process, a test runner included, use them.)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from bench.load.arrivals import ARRIVAL_DISTRIBUTIONS, DEFAULT_SPIN_NS
from bench.load.priority import PRIORITIES
from bench.load.scenarios import SCENARIOS
from bench.requests import DEFAULT_TOLERANCE, RequestsFile, RequestsFileError, prediction, read_requests
from bench.results import utc_stamp
from bench.verdict import Limits, Threshold
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
    """The probability in a response body (``{"prediction": p}`` or the tutorial's ``Prediction
    p``, parsed by :func:`bench.requests.prediction`), or None when it is not a number."""
    value = prediction(body)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class HarnessConfig:
    functions: tuple[tuple[str, float], ...]  # (path after the host, weight)
    threshold: Threshold
    open_loop: bool
    rate: float
    arrival_dist: str
    payload: str
    verify: bool
    models: Path
    results: Path
    max_inflight: int
    spin_ns: int
    miss_ns: int
    limits: Limits
    generator_priority: str = "auto"  # bench.load.priority: auto | realtime | normal
    requests: Path | None = None  # --requests FILE (bench.requests): lines drawn by weight
    requests_seed: int = 0
    verify_tolerance: float = DEFAULT_TOLERANCE


def requests_of(config: HarnessConfig) -> RequestsFile | None:
    """``--requests``'s file, parsed and checked for HTTP (raises OptionError naming the line)."""
    if config.requests is None:
        return None
    try:
        requests = read_requests(config.requests)
        requests.require_http("Locust")
    except RequestsFileError as error:
        raise OptionError(f"--requests {error}") from None
    if config.verify and not requests.has_expected:
        raise OptionError(f"--verify: no line of {config.requests} has an 'expected' value to check")
    return requests


def config_from(parsed) -> HarnessConfig:
    """The harness's settings from Locust's parsed options; raises OptionError."""
    try:
        threshold = Threshold(target_us=float(parsed.target_ms) * 1_000, percentile=float(parsed.percentile))
    except ValueError as error:
        raise OptionError(f"--target-ms/--percentile: {error}") from None
    if parsed.arrival not in ("closed", "open"):
        raise OptionError(f"--arrival must be closed or open, not {parsed.arrival!r}")
    if parsed.arrival_dist not in ARRIVAL_DISTRIBUTIONS:
        raise OptionError(f"--arrival-dist must be one of {ARRIVAL_DISTRIBUTIONS}")
    if parsed.payload not in ("random", "tutorial"):
        raise OptionError(f"--payload must be random or tutorial, not {parsed.payload!r}")
    if parsed.scenario not in SCENARIOS:
        raise OptionError(f"--scenario must be one of {SCENARIOS}, not {parsed.scenario!r}")
    rate = float(parsed.rate or 0)
    if parsed.arrival == "open" and not rate > 0:
        raise OptionError("--arrival open needs --rate (total requests per second), e.g. --rate 500")
    if parsed.generator_priority not in PRIORITIES:
        raise OptionError(f"--generator-priority must be one of {', '.join(PRIORITIES)}")
    if int(parsed.max_inflight) < 1:
        raise OptionError(f"--max-inflight must be at least 1, not {parsed.max_inflight}")
    try:
        limits = Limits(
            max_error_rate=float(parsed.max_error_rate),
            throttling_expected=bool(parsed.throttling_expected),
            max_late_share=float(parsed.max_late_share),
            max_lag_us=float(parsed.max_lag_us) if parsed.max_lag_us else None,
            max_contended_share=float(parsed.max_contended_share),
        )
    except ValueError as error:
        raise OptionError(
            f"--max-error-rate/--max-late-share/--max-lag-us/--max-contended-share: {error}"
        ) from None
    tolerance = float(parsed.verify_tolerance)
    if not tolerance >= 0:
        raise OptionError(f"--verify-tolerance must be >= 0, not {parsed.verify_tolerance}")
    results = parsed.results or f"results/locust-{utc_stamp()}.json"
    return HarnessConfig(
        functions=parse_functions(parsed.function),
        threshold=threshold,
        open_loop=parsed.arrival == "open",
        rate=rate,
        arrival_dist=parsed.arrival_dist,
        payload=parsed.payload,
        verify=bool(parsed.verify),
        models=Path(parsed.models),
        results=Path(results),
        max_inflight=int(parsed.max_inflight),
        spin_ns=int(float(parsed.spin_us) * 1_000),
        miss_ns=int(float(parsed.miss_us) * 1_000),
        limits=limits,
        generator_priority=parsed.generator_priority,
        requests=Path(parsed.requests) if parsed.requests else None,
        requests_seed=int(parsed.requests_seed),
        verify_tolerance=tolerance,
    )


def add_options(parser) -> None:
    group = parser.add_argument_group("Lambda latency harness (bench.load.plugin)")
    group.add_argument(
        "--function",
        action="append",
        help=f"path after the host, optionally :weight; repeatable (default {DEFAULT_FUNCTION})",
    )
    group.add_argument("--target-ms", type=float, default=1.0, help="latency target in ms (default 1)")
    group.add_argument("--percentile", type=float, default=99.0, help="percentile judged (default 99)")
    group.add_argument("--arrival", default="closed", choices=("closed", "open"), help="closed or open loop")
    group.add_argument("--rate", type=float, default=0.0, help="open loop: total req/s with all -u users")
    group.add_argument("--arrival-dist", default="fixed", choices=ARRIVAL_DISTRIBUTIONS)
    group.add_argument("--scenario", default="steady", choices=SCENARIOS)
    group.add_argument("--step-time", type=float, default=10.0, help="step/spike: seconds per stage")
    group.add_argument("--steps", type=int, default=5, help="step: number of steps")
    group.add_argument("--spike-users", type=int, default=0, help="spike: users at the peak (10 × -u)")
    group.add_argument(
        "--payload",
        default="random",
        choices=("random", "tutorial"),
        help="without --requests: the tutorial's G1..G10 drawn at the training rates, or its one query",
    )
    group.add_argument(
        "--requests",
        default="",
        metavar="FILE",
        help="a requests file (JSON Lines, docs/requests.md): each request is a line drawn by weight",
    )
    group.add_argument(
        "--requests-seed", type=int, default=0, help="--requests: the draws' seed (user k: seed + k)"
    )
    group.add_argument(
        "--verify",
        action="store_true",
        default=False,
        help="check each prediction (with --requests: against the lines' 'expected')",
    )
    group.add_argument(
        "--verify-tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"--requests --verify: absolute and relative tolerance (default {DEFAULT_TOLERANCE:g})",
    )
    group.add_argument("--models", default="models", help="models directory (--verify, feature rates)")
    group.add_argument("--results", default="", help="results JSON (default results/locust-<UTC>.json)")
    group.add_argument("--max-inflight", type=int, default=1000, help="open loop: per user; then sends wait")
    group.add_argument("--miss-us", type=float, default=1000.0, help="open loop: a send this late is missed")
    group.add_argument(
        "--spin-us", type=float, default=DEFAULT_SPIN_NS / 1_000, help="open loop: spin window"
    )
    group.add_argument(
        "--generator-priority",
        default="auto",
        choices=PRIORITIES,
        help="open loop: the generator's CPU policy; auto: SCHED_FIFO 1 where allowed and safe "
        "(bench/load/priority.py), else the default policy",
    )
    group.add_argument(
        "--max-error-rate",
        type=float,
        default=0.001,
        help="share of requests that may fail (not 2xx) before the verdict is FAIL (default 0.001; 0: none)",
    )
    group.add_argument(
        "--throttling-expected",
        action="store_true",
        default=False,
        help="429 answers are expected (a throttle test): not counted as failures",
    )
    group.add_argument(
        "--max-late-share",
        type=float,
        default=0.001,
        help="open loop: share of sends later than --miss-us before the run is INVALID (default 0.001)",
    )
    group.add_argument(
        "--max-lag-us",
        type=float,
        default=0.0,
        help="open loop: schedule lag p99 allowed before the run is INVALID (default: target / 10)",
    )
    group.add_argument(
        "--max-contended-share",
        type=float,
        default=0.05,
        help="share of invocations or inits the emulator flags as contended before INVALID (default 0.05)",
    )
