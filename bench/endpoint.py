"""``python -m bench.endpoint URL``: latency through an HTTP endpoint, one client, closed loop.

Warm: ``--requests`` sequential GETs on one keep-alive connection after ``--warmup``; the
end-to-end time is from just before the request is written to just after the body is read
(``perf_counter_ns``, client side); *in-handler* is the handler's ``Server-Timing: handler``;
their difference is the gateway + runtime + loopback overhead. Cold (``--cold-trials N``,
against the local emulator or any Lambda Invoke API at ``--lambda-endpoint``): before each
trial, UpdateFunctionConfiguration changes an environment variable (how lambda-perf forces a
cold start), then the first request is timed. ``--pause-ms`` idles before each timed request
(think time): on a VM, waking the client, gateway and environment from idle costs more than
the handler. ``--runs N`` repeats the warm measurement N times, each on a new connection with
its own warm-up (pyperf's habit): the merged histogram gives the percentiles, and the spread of
the runs' p50 says whether the machine was steady enough to trust them. The machine's CPU idle
regime (``handler.local.cpulatency``) is printed and recorded: on a VM it moves these figures 2x.
``--requests FILE`` (a requests file, ``docs/requests.md``): each request is a line drawn by
weight (seeded), sent with its method, query, headers and body to the URL's path (the
function's, e.g. ``/staging/sleepy``); an ``event`` line is refused (this tool speaks HTTP).
``--requests N`` (a whole number) is still the count, as ``--count N``.
Not measured here: throughput under
concurrency (the Locust harness does that); the client's own http.client time is inside the
end-to-end figure and not separated out.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from bench.cli import positive_int
from bench.coldstart.forcing import force_cold_start
from bench.latency import LatencyRecorder
from bench.machine import collect_metadata
from bench.requests import RequestsFileError, Sampler, http_request, read_requests
from bench.results import EndpointRun, cpu_idle_phrase, utc_stamp, write_json_atomic
from bench.results.kinds import EndpointCold, EndpointWarm, EndpointWarmRun
from bench.servertiming import duration_ns, parse_server_timing
from bench.stats import summarize
from bench.target import resource_model


@dataclass(frozen=True)
class EndpointConfig:
    url: str
    requests: int
    warmup: int
    cold_trials: int
    function: str | None
    lambda_endpoint: str | None
    results: str | None
    pause_ms: float = 0.0
    runs: int = 1
    requests_file: str | None = None  # --requests FILE: the lines sent (bench.requests)


def _requests(config: EndpointConfig) -> Callable[[], tuple[str, str, dict, bytes | None]] | None:
    """Each timed request's (method, path, headers, body), drawn from ``--requests FILE``."""
    if config.requests_file is None:
        return None
    requests = read_requests(config.requests_file)
    sampler = Sampler(requests, seed=0)
    function_path = urllib.parse.urlsplit(config.url).path

    def draw() -> tuple[str, str, dict, bytes | None]:
        request = http_request(sampler.draw(), function_path)
        return request.method, request.path, dict(request.headers), request.body or None

    return draw


def _connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return factory(parts.hostname, parts.port, timeout=30), path


def _get(
    connection: http.client.HTTPConnection, path: str, line: tuple[str, str, dict, bytes | None] | None = None
) -> tuple[int, int, str | None]:
    method, headers, body = "GET", {}, None
    if line is not None:
        method, path, headers, body = line
    started = time.perf_counter_ns()
    connection.request(method, path, body, headers)
    response = connection.getresponse()
    response.read()
    return response.status, time.perf_counter_ns() - started, response.getheader("Server-Timing")


def _warm_run(config: EndpointConfig, statuses: dict[str, int]) -> tuple[LatencyRecorder, ...]:
    """One run: a new connection, ``warmup`` untimed requests, then ``requests`` timed ones."""
    connection, path = _connection(config.url)
    draw = _requests(config)
    for _ in range(config.warmup):
        _get(connection, path, draw() if draw else None)
    e2e, in_handler, overhead = LatencyRecorder(), LatencyRecorder(), LatencyRecorder()
    for _ in range(config.requests):
        if config.pause_ms:  # think time: the whole path goes idle between requests
            time.sleep(config.pause_ms / 1_000)
        line = draw() if draw else None  # drawn before the clock starts
        status, elapsed_ns, timing = _get(connection, path, line)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        e2e.record_ns(elapsed_ns)
        handler_ns = duration_ns(parse_server_timing(timing), "handler")
        if handler_ns is not None:
            in_handler.record_ns(handler_ns)
            overhead.record_ns(elapsed_ns - handler_ns)
    connection.close()
    return e2e, in_handler, overhead


def measure_warm(config: EndpointConfig) -> EndpointWarm:
    statuses: dict[str, int] = {}
    merged = LatencyRecorder(), LatencyRecorder(), LatencyRecorder()
    runs = []
    for _ in range(config.runs):
        recorders = _warm_run(config, statuses)
        for total, run in zip(merged, recorders, strict=True):
            total.merge(run)
        e2e = recorders[0].summary()
        runs.append(EndpointWarmRun(e2e_p50_us=e2e.p50, e2e_p99_us=e2e.p99, count=e2e.count))
    e2e, in_handler, overhead = merged
    return EndpointWarm(
        statuses=statuses,
        e2e_us=e2e.series(),
        in_handler_us=in_handler.series(),
        overhead_us=overhead.series(),
        runs=runs,
        run_e2e_p50_us=summarize([run.e2e_p50_us for run in runs], "e2e p50 across runs", "--runs"),
    )


def measure_cold(config: EndpointConfig) -> EndpointCold:
    from handler.aws.clients import client as aws_client

    client = aws_client("lambda", config.lambda_endpoint)
    cold = LatencyRecorder()
    draw = _requests(config)
    for trial in range(config.cold_trials):
        force_cold_start(client, config.function, f"{time.time_ns()}-{trial}")
        connection, path = _connection(config.url)
        _, elapsed_ns, _ = _get(connection, path, draw() if draw else None)
        connection.close()
        cold.record_ns(elapsed_ns)
    return EndpointCold(first_request_us=cold.series())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.endpoint", description=__doc__)
    parser.add_argument("url", help="e.g. http://127.0.0.1:3000/staging/logit-lean?G1=1&...")
    parser.add_argument(
        "--requests",
        metavar="FILE|N",
        help="a requests file (docs/requests.md), its lines drawn by weight; a whole number: --count",
    )
    parser.add_argument("--count", type=int, default=None, help="timed requests per run (default 10000)")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--cold-trials", type=int, default=0)
    parser.add_argument("--function", help="Lambda function name (cold trials)")
    parser.add_argument("--lambda-endpoint", help="Invoke API endpoint (default: the URL's host)")
    parser.add_argument(
        "--pause-ms", type=float, default=0.0, help="idle time before each timed request (default 0)"
    )
    parser.add_argument(
        "--runs", type=positive_int, default=1, help="warm runs, each with its own connection (default 1)"
    )
    parser.add_argument("--results", help="results JSON path")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    requests_file = None
    if args.requests is not None and args.requests.isdigit():  # the count, as before --requests FILE
        args.count = args.count if args.count is not None else int(args.requests)
    elif args.requests is not None:
        requests_file = args.requests
        try:
            read_requests(requests_file).require_http("python -m bench.endpoint")
        except RequestsFileError as exc:
            print(f"python -m bench.endpoint: {exc}", file=sys.stderr)
            return 2
    args.count = 10_000 if args.count is None else args.count
    if args.count < 1 or args.warmup < 0 or args.cold_trials < 0 or not 0 <= args.pause_ms <= 60_000:
        parser.error("--count must be >= 1, --warmup and --cold-trials >= 0, --pause-ms in [0, 60000]")
    parts = urllib.parse.urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        parser.error(f"not an http(s) URL: {args.url!r}")
    function = args.function or parts.path.rstrip("/").rsplit("/", 1)[-1]
    config = EndpointConfig(
        url=args.url,
        requests=args.count,
        warmup=args.warmup,
        cold_trials=args.cold_trials,
        function=function,
        lambda_endpoint=args.lambda_endpoint or f"{parts.scheme}://{parts.netloc}",
        results=args.results,
        pause_ms=args.pause_ms,
        runs=args.runs,
        requests_file=requests_file,
    )
    try:
        warm = measure_warm(config)
        cold = measure_cold(config) if config.cold_trials else None
    except (OSError, http.client.HTTPException) as exc:
        print(f"error: {config.url}: {exc}", file=sys.stderr)
        return 1
    document = EndpointRun(
        metadata=collect_metadata(vars(args), resource_model=resource_model(config.url)), warm=warm, cold=cold
    )
    path = config.results or f"results/endpoint-{utc_stamp()}.json"
    write_json_atomic(path, document)
    print(f"machine: {cpu_idle_phrase(document.metadata.cpu_idle)}")
    if config.runs > 1:
        for number, run in enumerate(warm.runs, 1):
            print(f"run {number:<10} p50 {run.e2e_p50_us:>9.1f}  p99 {run.e2e_p99_us:>9.1f}")
        spread = warm.run_e2e_p50_us
        print(
            f"e2e p50 across runs: median {spread.p50:.1f}, min {spread.min:.1f}, "
            f"max {spread.max:.1f} (MAD {spread.spread:.0%} of the median)"
        )
        for warning in spread.warnings:
            print(f"warning: {warning}")
    for name in ("e2e_us", "in_handler_us", "overhead_us"):
        summary = getattr(warm, name)
        print(f"{name:<14} p50 {summary.p50:>9.1f}  p99 {summary.p99:>9.1f}  n={summary.count}")
    if cold is not None:
        first = cold.first_request_us
        print(
            f"{'cold first':<14} p50 {first.p50:>9.1f}  min {first.min:>9.1f}  "
            f"max {first.max:>9.1f}  n={first.count}"
        )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
