"""Endpoint mode: forced cold starts through a Lambda Invoke API (the local emulator, or AWS).

Per trial: :func:`bench.coldstart.forcing.force_cold_start` (UpdateFunctionConfiguration, then
the ``function_updated`` waiter; not timed), then one ``Invoke`` with ``LogType=Tail``, timed
client side from just before the call to the response payload read, and its REPORT line
(Init Duration, Duration, Billed Duration, Max Memory Used: what Lambda measured in the
sandbox); then ``--warm`` plain Invokes, timed the same way, into an HdrHistogram (µs).

The client times include boto3 (signing, botocore parsing) and the network; they are not the
API Gateway path (``bench.endpoint`` and the Locust harness measure that). Init Duration is
summarised over the trials whose REPORT line has one (a cold start the Invoke API did not
report as one is left out, and counted); if none has, it is None. Not measured: the update
itself, and how long Lambda takes to retire the old environments.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

from bench.coldstart.config import ColdstartConfig, Progress
from bench.coldstart.forcing import force_cold_start
from bench.coldstart.gates import gates_for
from bench.lambdacost import cost_per_million
from bench.latency import LatencyRecorder
from bench.results import Metadata
from bench.results.coldstart import ColdstartEndpointRun, EndpointTrial
from bench.results.gate import judge
from bench.stats import summarize
from handler.features import TUTORIAL_QUERY
from handler.local.reportline import ReportLine

PAYLOAD = json.dumps({"queryStringParameters": dict(TUTORIAL_QUERY)}).encode()


def invoke_trials(
    client, config: ColdstartConfig, clock: Callable[[], int] = time.perf_counter_ns
) -> tuple[list[EndpointTrial], LatencyRecorder]:
    """``config.trials`` forced cold starts of ``config.function``, each followed by the warm calls."""
    function = config.function or ""
    trials, warm = [], LatencyRecorder("us")
    progress = Progress(config.trials, config.progress)
    for trial in range(config.trials):
        force_cold_start(client, function, f"{time.time_ns()}-{trial}")
        started = clock()
        response = client.invoke(FunctionName=function, LogType="Tail", Payload=PAYLOAD)
        response["Payload"].read()
        first_request_ns = clock() - started
        report = ReportLine.parse(base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace"))
        if report is None or "FunctionError" in response:
            raise RuntimeError(f"{function}: trial {trial}: no REPORT line or a function error")
        for _ in range(config.warm):
            started = clock()
            client.invoke(FunctionName=function, Payload=PAYLOAD)["Payload"].read()
            warm.record_ns(clock() - started)
        trials.append(EndpointTrial(first_request_ns=first_request_ns, report=report))
        progress.step(function)
    return trials, warm


def summarize_endpoint(
    trials: list[EndpointTrial], warm: LatencyRecorder, config: ColdstartConfig, metadata: Metadata
) -> ColdstartEndpointRun:
    """The statistics (µs), the cost per million and the gates of a run's trials."""
    function = config.function or ""
    reports = [trial.report for trial in trials]
    inits = [report.init_duration_ms for report in reports if report.init_duration_ms is not None]
    init = summarize([ms * 1_000 for ms in inits], f"{function} init duration") if inits else None
    first = summarize([trial.first_request_ns / 1_000 for trial in trials], f"{function} first request")
    billed = summarize([report.billed_duration_ms * 1_000.0 for report in reports], f"{function} billed")
    memory = reports[0].memory_size_mb
    warm_series = warm.series()
    cost = cost_per_million(warm_series.p50 / 1_000, billed.p50 / 1_000, memory, config.cold_fraction)
    gates = gates_for(
        function, "first_request_us", first, warm, config.target_ms, config.cold_target_ms, config.warm
    )
    return ColdstartEndpointRun(
        metadata=metadata,
        function=function,
        lambda_endpoint=config.lambda_endpoint,
        first_request_us=first,
        init_us=init,
        trials_with_init_duration=len(inits),
        billed_cold_us=billed,
        warm_us=warm_series,
        peak_rss_mb=max(report.max_memory_used_mb for report in reports),
        memory_mb=memory,
        cost_per_million_usd=round(cost, 4),
        trials=trials,
        gates=gates,
        status=judge(gates),
    )


def measure_endpoint(config: ColdstartConfig) -> ColdstartEndpointRun:
    """The whole endpoint-mode run; an API error becomes a RuntimeError naming the function."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from handler.aws.clients import client as aws_client

    client = aws_client("lambda", config.lambda_endpoint, config=Config(retries={"total_max_attempts": 1}))
    try:
        trials, warm = invoke_trials(client, config)
    except (BotoCoreError, ClientError) as exc:
        raise RuntimeError(f"{config.function}: {exc}") from exc
    return summarize_endpoint(trials, warm, config, Metadata.collect(config.options()))
