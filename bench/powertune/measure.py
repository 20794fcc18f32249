"""One function at one memory size: forced cold starts, then warm invocations, judged and priced.

What is timed: every Invoke carries ``LogType=Tail``, and its REPORT line gives what the
sandbox measured (Duration, Billed Duration, Init Duration on a cold start, Max Memory Used;
:mod:`bench.reportline`); the emulator's EMULATOR line beside it gives the init CPU
time, the CPU share and whether the host slowed a phase (``Contended``). The client's own time
(``perf_counter_ns`` from just before ``invoke`` to the payload read: boto3, the network and
the Invoke API included) is kept beside it, not judged. A cold start is Init Duration + the
first Duration (what a first caller waits for inside Lambda, not the client's time); each one
is forced as lambda-perf forces it (:func:`bench.coldstart.forcing.force_cold_start`). The warm
invocations follow in the environment the last cold trial left, one at a time.

What is judged (:func:`judge_size`): the failed Invokes against ``--max-error-rate``, running
out of memory (``Runtime.OutOfMemory`` in the REPORT line or the error payload: the size does
not fit, which is a result, and nothing more is measured there), the emulator's contention
flags (``bench.verdict.contention_gate``), and the warm Duration percentile against the
target with the early-stopping bound of :mod:`bench.verdict`. Not measured: the update and
the waiter, API Gateway (``bench.endpoint`` and Locust measure that path), concurrency.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.coldstart.endpoint import OUTCOMES, PAYLOAD, api_outcome
from bench.coldstart.forcing import force_cold_start
from bench.lambdacost import ARCHITECTURES, duration_price, mean_billed_cost_per_million
from bench.latency import LatencyRecorder
from bench.powertune.config import PowertuneConfig
from bench.powertune.session import FunctionSession
from bench.powertune.strategy import trimmed_mean
from bench.reportline import parse_report
from bench.results.gate import Gate, goal, judge
from bench.results.powertune import ColdTrial, Floor, PowerTuningFigures, SizeResult
from bench.results.reportline import ReportLine
from bench.verdict import contention_gate, error_gate, evaluate, floor_gate
from handler.local.reportline import EmulatorLine

OUT_OF_MEMORY = "Runtime.OutOfMemory"
NO_REPORT = "other"  # an answer without a REPORT line cannot be measured: a failed Invoke


@dataclass(frozen=True)
class Invocation:
    outcome: str  # one of bench.coldstart.endpoint.OUTCOMES
    client_ns: int
    report: ReportLine | None
    emulator: EmulatorLine | None
    error_type: str | None  # the REPORT line's Error Type, else the error payload's errorType

    @property
    def out_of_memory(self) -> bool:
        return self.error_type == OUT_OF_MEMORY

    def contended(self, phase: str) -> bool | None:
        if self.emulator is None or self.emulator.contended is None:
            return None
        return any(name == phase for name, _factor in self.emulator.contended)


def payloads(config: PowertuneConfig, function: str) -> Callable[[], bytes]:
    """Each Invoke's payload: a line of ``--requests`` drawn by weight, an HTTP line as the
    proxy event the emulator's gateway builds for it (``bench.requests``); without
    ``--requests``, the tutorial's query."""
    from bench.requests import payload_source

    return payload_source(config.requests, function, PAYLOAD, config.emulator_config)


def invoke(
    client, function: str, clock: Callable[[], int] = time.perf_counter_ns, payload: bytes = PAYLOAD
) -> Invocation:
    """One Invoke with ``LogType=Tail``; an API error is an outcome, not an exception."""
    from botocore.exceptions import BotoCoreError, ClientError

    started = clock()
    try:
        response = client.invoke(FunctionName=function, Payload=payload, LogType="Tail")
        payload = response["Payload"].read()
    except (BotoCoreError, ClientError) as error:
        return Invocation(api_outcome(error), clock() - started, None, None, None)
    elapsed = clock() - started
    tail = base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace")
    report, emulator = parse_report(tail), EmulatorLine.parse(tail)
    error_type = report.error_type if report is not None else None
    if "FunctionError" in response and error_type is None:
        error_type = _payload_error_type(payload)
    outcome = "function_error" if "FunctionError" in response else ("2xx" if report else NO_REPORT)
    return Invocation(outcome, elapsed, report, emulator, error_type)


def _payload_error_type(payload: bytes) -> str | None:
    try:
        body = json.loads(payload or b"{}")
    except ValueError:
        return None
    return body.get("errorType") if isinstance(body, dict) else None


@dataclass
class SizeSamples:
    """What one size's invocations gave, before it is summarised (:func:`summarize_size`)."""

    memory_mb: int
    outcomes: dict[str, int]
    cold: list[ColdTrial]
    warm: list[Invocation]  # the successful warm invocations, with their REPORT lines
    error_type: str | None = None
    max_memory_used_mb: int | None = None
    cpu_share_vcpus: float | None = None
    emulator_lines: int = 0
    cold_run: int = 0  # forced cold starts tried; ``cold`` keeps those that reported an Init Duration

    def count(self, invocation: Invocation) -> None:
        self.outcomes[invocation.outcome] = self.outcomes.get(invocation.outcome, 0) + 1
        if invocation.report is not None:
            used = invocation.report.max_memory_used_mb
            self.max_memory_used_mb = max(self.max_memory_used_mb or 0, used)
        if invocation.emulator is not None:
            self.emulator_lines += 1
            if self.cpu_share_vcpus is None:
                self.cpu_share_vcpus = invocation.emulator.cpu_share_vcpus
        if invocation.out_of_memory:
            self.error_type = OUT_OF_MEMORY


def sample_size(
    session: FunctionSession,
    memory_mb: int,
    config: PowertuneConfig,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> SizeSamples:
    """Set ``memory_mb``, then ``config.cold_trials`` forced cold starts and ``config.warm`` warm
    invocations; stops at the first ``Runtime.OutOfMemory`` (the size does not fit)."""
    client, function = session.client, session.function
    samples = SizeSamples(memory_mb, dict.fromkeys(OUTCOMES, 0), [], [])
    payload = payloads(config, function)
    session.set_memory(memory_mb)
    for trial in range(config.cold_trials):
        force_cold_start(client, function, f"{time.time_ns()}-{memory_mb}-{trial}")
        first = invoke(client, function, clock, payload())
        samples.count(first)
        samples.cold_run += 1
        if first.out_of_memory:
            return samples
        report = first.report
        if first.outcome == "2xx" and report is not None and report.init_duration_ms is not None:
            emulator = first.emulator
            init_cpu = emulator.init_cpu_ms if emulator is not None else None
            samples.cold.append(ColdTrial(first.client_ns, report, init_cpu, first.contended("init")))
    for _ in range(config.warm):
        warm = invoke(client, function, clock, payload())
        samples.count(warm)
        if warm.out_of_memory:
            return samples
        if warm.outcome == "2xx" and warm.report is not None:
            samples.warm.append(warm)
    return samples


def floor_round(
    session: FunctionSession, memory_mb: int, warm: int, clock: Callable[[], int] = time.perf_counter_ns
) -> list[float]:
    """One round of the floor at ``memory_mb``: the no-op function set to that size, its first
    (cold) invocation left out, then ``warm`` invocations; returns their REPORT Durations (ms)."""
    session.set_memory(memory_mb)
    durations: list[float] = []
    for _ in range(warm + 1):
        call = invoke(session.client, session.function, clock)
        report = call.report
        if call.outcome == "2xx" and report is not None and report.init_duration_ms is None:
            durations.append(report.duration_ms)
    return durations[-warm:] if warm else []


def floor_figures(function: str, rounds_ms: list[list[float]], percentile: float) -> Floor | None:
    """The floor at one size from its rounds (each a list of Durations, ms); None without any."""
    rounds = [values for values in rounds_ms if values]
    if not rounds:
        return None
    merged = _series([value for values in rounds for value in values])
    per_round = [round(_series(values).percentile_us(percentile), 1) for values in rounds]
    return Floor(function, percentile, per_round, merged.series())


def with_floor(function: str, size: SizeResult, floor: Floor | None) -> SizeResult:
    """``size`` with the floor beside it: its figures and the floor gate
    (:func:`bench.verdict.floor_gate`), and the status judged again."""
    if floor is None or not size.fits:
        return size
    latency = next((gate for gate in size.gates if gate.check == "latency"), None)
    if latency is None or not latency.samples:
        return dataclasses.replace(size, floor=floor)
    observed = floor.warm_duration_us.decode().percentile_us(floor.percentile)
    name = f"{function} {size.memory_mb} MB"
    gate = floor_gate(name, latency, floor.function, floor.rounds_us, observed)
    gates = [*size.gates, gate]
    return dataclasses.replace(size, floor=floor, gates=gates, status=judge(gates))


def _series(values_ms: list[float]):
    recorder = LatencyRecorder("us")
    for value in values_ms:
        recorder.record_ns(round(value * 1_000_000))
    return recorder


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def judge_size(
    function: str, samples: SizeSamples, warm: LatencyRecorder, config: PowertuneConfig
) -> list[Gate]:
    """Errors first, then whether it fits, the host's contention, and the latency percentile."""
    name = f"{function} {samples.memory_mb} MB"
    gates = [error_gate(name, samples.outcomes, config.limits)]
    if samples.error_type == OUT_OF_MEMORY:
        used = f"{OUT_OF_MEMORY} (Max Memory Used {samples.max_memory_used_mb} MB)"
        gates.append(goal(f"{name} fits in memory", False, used, "no Runtime.OutOfMemory", check="memory"))
        return gates
    threshold = config.threshold
    observed = warm.percentile_us(threshold.percentile) if warm.count else 0.0
    field = f"{name} warm Duration p{threshold.percentile:g}"
    latency = evaluate(threshold, warm.count, warm.count_over_us(threshold.target_us), observed, field)
    if samples.emulator_lines:
        contended_warm = sum(1 for call in samples.warm if call.contended("invoke"))
        contended_inits = sum(1 for trial in samples.cold if trial.contended)
        inits = len(samples.cold)
        warm_count = len(samples.warm)
        limits = config.limits
        gates.append(
            contention_gate(name, warm_count, contended_warm, inits, contended_inits, limits, latency)
        )
    gates.append(latency)
    return gates


def summarize_size(
    function: str, samples: SizeSamples, config: PowertuneConfig, architecture: str
) -> SizeResult:
    """The figures (µs), Power Tuning's own statistics, the cost per million and the gates."""
    # Only the trials that reported an Init Duration are cold starts to time (a suppressed init
    # reports none): never a 0 ms init among them. How many of the trials run: cold_trials_run.
    cold_trials = [trial for trial in samples.cold if trial.report.init_duration_ms is not None]
    reports = [trial.report for trial in cold_trials]
    inits_ms = [r.init_duration_ms for r in reports if r.init_duration_ms is not None]  # every one
    cold_ms = [init + r.duration_ms for init, r in zip(inits_ms, reports, strict=True)]
    warm_ms = [call.report.duration_ms for call in samples.warm if call.report is not None]
    warm_billed = [float(call.report.billed_duration_ms) for call in samples.warm if call.report is not None]
    cold_billed = [float(r.billed_duration_ms) for r in reports]
    warm = _series(warm_ms)
    client = LatencyRecorder("us")
    for call in samples.warm:
        client.record_ns(call.client_ns)
    # the Init CPU of the same trials as the Init Duration
    init_cpu = [trial.init_cpu_ms for trial in cold_trials if trial.init_cpu_ms is not None]
    warm_mean, cold_mean = _mean(warm_billed), _mean(cold_billed)
    costs: dict[str, float] = {}
    figures = None
    if warm_mean is not None:
        costs = {
            arch: round(
                mean_billed_cost_per_million(
                    warm_mean, cold_mean if cold_mean is not None else warm_mean, samples.memory_mb,
                    config.cold_fraction, arch,
                ),
                6,
            )
            for arch in ARCHITECTURES
        }  # fmt: skip
        # lambda/executor.js computeStatistics: trimmed means over every invocation of the size
        average_billed = trimmed_mean(cold_billed + warm_billed)
        figures = PowerTuningFigures(
            average_duration_us=round(trimmed_mean(cold_ms + warm_ms) * 1_000, 3),
            average_billed_ms=round(average_billed, 3),
            average_price_usd=duration_price(average_billed, samples.memory_mb, architecture),
        )
    gates = judge_size(function, samples, warm, config)
    return SizeResult(
        memory_mb=samples.memory_mb,
        fits=samples.error_type != OUT_OF_MEMORY,
        error_type=samples.error_type,
        cpu_share_vcpus=samples.cpu_share_vcpus,
        outcomes=samples.outcomes,
        cold_start_us=_series(cold_ms).series() if cold_ms else None,
        init_duration_us=_series(inits_ms).series() if inits_ms else None,
        cold_trials_run=samples.cold_run,
        init_cpu_us=_series(init_cpu).series() if init_cpu else None,
        cold_trials=cold_trials,
        warm_duration_us=warm.series(),
        warm_client_us=client.series(),
        warm_billed_ms_mean=None if warm_mean is None else round(warm_mean, 4),
        cold_billed_ms_mean=None if cold_mean is None else round(cold_mean, 4),
        max_memory_used_mb=samples.max_memory_used_mb,
        contended_invocations=sum(1 for call in samples.warm if call.contended("invoke")),
        cost_per_million_usd=costs,
        powertuning=figures,
        gates=gates,
        status=judge(gates),
    )
