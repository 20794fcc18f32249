"""Endpoint mode: forced cold starts through a Lambda Invoke API (the local emulator, or AWS).

Per trial: :func:`bench.coldstart.forcing.force_cold_start` (UpdateFunctionConfiguration, then
the ``function_updated`` waiter; not timed), then one ``Invoke`` with ``LogType=Tail``, timed
client side from just before the call to the response payload read, and its REPORT line
(Init Duration, Duration, Billed Duration, Max Memory Used: what Lambda measured in the
sandbox); then ``--warm`` plain Invokes, timed the same way, into an HdrHistogram (µs).

The client times include boto3 (signing, botocore parsing) and the network; they are not the
API Gateway path (``bench.endpoint`` and the Locust harness measure that). Init Duration is
summarised over the trials whose REPORT line has one (a cold start the Invoke API did not
report as one is left out, and counted); if none has, it is None. Every Invoke's outcome is
counted (``2xx``; ``function_error`` for an answer with ``X-Amz-Function-Error``; ``4xx``,
``429``, ``5xx`` for an API error; ``connection_error``) and the share of failures is a gate
of its own (``--max-error-rate``): a failed cold Invoke is not a cold start to time. Not
measured: the update itself, and how long Lambda takes to retire the old environments.
Each Invoke's payload: ``--requests FILE``'s lines drawn by weight (``bench.requests``), else
the tutorial's query.
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
from bench.machine import collect_metadata
from bench.reportline import parse_report
from bench.requests import payload_source
from bench.results import Metadata
from bench.results.coldstart import ColdstartEndpointRun, EndpointTrial
from bench.results.gate import Gate, judge
from bench.stats import summarize
from bench.target import resource_model
from bench.verdict import error_gate, floor_gate
from handler.features import TUTORIAL_QUERY

PAYLOAD = json.dumps({"queryStringParameters": dict(TUTORIAL_QUERY)}).encode()


OUTCOMES = ("2xx", "function_error", "4xx", "429", "5xx", "connection_error")


def api_outcome(error: Exception) -> str:
    """The outcome of an Invoke API call that raised: its HTTP status class, or no connection."""
    status = getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if status == 429:
        return "429"
    if 400 <= status < 500:
        return "4xx"
    return "5xx" if status else "connection_error"


def _invoke(
    client, function: str, clock: Callable[[], int], payload: bytes = PAYLOAD, **kwargs
) -> tuple[str, int, dict | None]:
    """One Invoke: (outcome, client ns, response); API errors become outcomes, not exceptions."""
    from botocore.exceptions import BotoCoreError, ClientError

    started = clock()
    try:
        response = client.invoke(FunctionName=function, Payload=payload, **kwargs)
        response["Payload"].read()
    except (BotoCoreError, ClientError) as error:
        return api_outcome(error), clock() - started, None
    outcome = "function_error" if "FunctionError" in response else "2xx"
    return outcome, clock() - started, response


def invoke_trials(
    client, config: ColdstartConfig, clock: Callable[[], int] = time.perf_counter_ns
) -> tuple[list[EndpointTrial], LatencyRecorder, dict[str, int]]:
    """``config.trials`` forced cold starts of ``config.function``, each followed by the warm
    calls; returns the successful cold trials, every warm answer's latency and every outcome."""
    from botocore.exceptions import BotoCoreError, ClientError

    function = config.function or ""
    trials, warm = [], LatencyRecorder("us")
    outcomes = dict.fromkeys(OUTCOMES, 0)
    progress = Progress(config.trials, config.progress)
    payload = payload_source(config.requests, function, PAYLOAD, config.emulator_config)
    for trial in range(config.trials):
        progress.step(function)
        try:
            force_cold_start(client, function, f"{time.time_ns()}-{trial}")
        except (BotoCoreError, ClientError) as error:  # e.g. no such function: a failed trial
            outcomes[api_outcome(error)] += 1
            continue
        outcome, first_request_ns, response = _invoke(client, function, clock, payload(), LogType="Tail")
        outcomes[outcome] += 1
        tail = base64.b64decode((response or {}).get("LogResult", "")).decode("utf-8", "replace")
        report = parse_report(tail)
        if outcome == "2xx" and report is not None:
            trials.append(EndpointTrial(first_request_ns=first_request_ns, report=report))
        for _ in range(config.warm):
            outcome, elapsed_ns, _response = _invoke(client, function, clock, payload())
            outcomes[outcome] += 1
            warm.record_ns(elapsed_ns)
    return trials, warm, outcomes


def floor_round(
    client, function: str, calls: int, clock: Callable[[], int] = time.perf_counter_ns
) -> list[int]:
    """One round of the floor: ``calls`` warm Invokes of the no-op ``function`` (its first call,
    which may be a cold start, left out), timed as the warm calls are; their client ns."""
    timings = []
    for _ in range(calls + 1):
        outcome, elapsed_ns, _response = _invoke(client, function, clock)
        if outcome == "2xx":
            timings.append(elapsed_ns)
    return timings[1:] if len(timings) > calls else timings


def floor_session(client, floor: str | None, function: str):
    """The floor function set to ``function``'s memory size (its session, to restore), or None
    when there is no floor or the Lambda API does not have it (then the run has no floor)."""
    from botocore.exceptions import ClientError

    from bench.powertune.session import FunctionSession

    if not floor:
        return None
    try:
        session = FunctionSession(client, floor).read()
    except ClientError:
        return None
    memory_mb = int(client.get_function_configuration(FunctionName=function)["MemorySize"])
    if memory_mb != session.original_memory_mb:
        session.set_memory(memory_mb)
    return session


def floor_beside(function: str, warm_gate: Gate, floor: str, rounds: list[list[int]]) -> Gate:
    """The floor gate of the warm calls (:func:`bench.verdict.floor_gate`): the no-op's warm
    client time at the same percentile, per round and over every round."""
    percentile = float(warm_gate.details.get("percentile", 99.0))
    recorders = []
    for timings in (values for values in rounds if values):
        recorder = LatencyRecorder("us")
        for elapsed_ns in timings:
            recorder.record_ns(elapsed_ns)
        recorders.append(recorder)
    merged = LatencyRecorder("us")
    for recorder in recorders:
        merged.add_encoded(recorder.encode())
    per_round = [round(recorder.percentile_us(percentile), 1) for recorder in recorders]
    observed = merged.percentile_us(percentile) if merged.count else 0.0
    return floor_gate(f"{function} warm_us", warm_gate, floor, per_round, observed)


def summarize_endpoint(
    trials: list[EndpointTrial],
    warm: LatencyRecorder,
    config: ColdstartConfig,
    metadata: Metadata,
    outcomes: dict[str, int] | None = None,
    floor_rounds: list[list[int]] | None = None,
) -> ColdstartEndpointRun:
    """The statistics (µs), the cost per million and the gates of a run's trials."""
    function = config.function or ""
    outcomes = outcomes if outcomes is not None else {"2xx": len(trials) * (1 + config.warm)}
    reports = [trial.report for trial in trials]
    inits = [report.init_duration_ms for report in reports if report.init_duration_ms is not None]
    init = summarize([ms * 1_000 for ms in inits], f"{function} init duration") if inits else None
    first = billed = memory = cost = None
    if trials:
        first = summarize([trial.first_request_ns / 1_000 for trial in trials], f"{function} first request")
        billed = summarize([report.billed_duration_ms * 1_000.0 for report in reports], f"{function} billed")
        memory = reports[0].memory_size_mb
    warm_series = warm.series()
    if billed is not None and memory is not None:
        cost = cost_per_million(warm_series.p50 / 1_000, billed.p50 / 1_000, memory, config.cold_fraction)
        cost = round(cost, 4)
    latency = gates_for(
        function, "first_request_us", first, warm, config.target_ms, config.cold_target_ms, config.warm
    )
    gates = [error_gate(function, outcomes, config.limits), *latency]
    warm_gates = [gate for gate in latency if gate.name.endswith("warm_us p99")]
    if floor_rounds and config.floor_function and warm_gates:  # the floor beside the warm calls
        gates.append(floor_beside(function, warm_gates[0], config.floor_function, floor_rounds))
    return ColdstartEndpointRun(
        metadata=metadata,
        function=function,
        lambda_endpoint=config.lambda_endpoint,
        outcomes=outcomes,
        first_request_us=first,
        init_duration_us=init,
        trials_with_init_duration=len(inits),
        billed_cold_us=billed,
        warm_us=warm_series,
        peak_rss_mb=max((report.max_memory_used_mb for report in reports), default=None),
        memory_mb=memory,
        cost_per_million_usd=cost,
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
    floor, floor_rounds = config.floor_function, []
    calls = min(config.warm * config.trials, 200)  # a round; the main job runs this twice a function
    try:
        session = floor_session(client, floor, config.function or "")
        try:  # a round before the trials and one after: the floor's run-to-run spread
            if session is not None:
                floor_rounds.append(floor_round(client, session.function, calls))
            trials, warm, outcomes = invoke_trials(client, config)
            if session is not None:
                floor_rounds.append(floor_round(client, session.function, calls))
        finally:
            if session is not None:
                session.restore()
    except (BotoCoreError, ClientError) as exc:
        raise RuntimeError(f"{config.function}: {exc}") from exc
    return summarize_endpoint(
        trials,
        warm,
        config,
        collect_metadata(config.options(), resource_model=resource_model(config.lambda_endpoint)),
        outcomes,
        floor_rounds,
    )
