"""The measurements behind the fidelity table, each through the emulator's Invoke API.

Every figure is what the REPORT line (``LogType=Tail``) or the function itself measured inside
the execution environment: Duration and Init Duration from REPORT, the loop's iteration walls
(``perf_counter_ns``) and CPU time (``process_time_ns``) from its payload.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.coldstart.forcing import force_cold_start
from bench.fidelity import reference as ref
from bench.fidelity.functions import name
from bench.latency import LatencyRecorder
from bench.reportline import parse_report
from bench.results.fidelity import ColdStartTrial, ScalingSize, StabilityRound, ThrottleRun
from bench.results.reportline import ReportLine
from handler.local.reportline import EmulatorLine


class FunctionFailed(RuntimeError):
    """An invocation answered an error or no REPORT line; the message names the function."""


@dataclass(frozen=True)
class Answer:
    report: ReportLine
    payload: dict | int | None
    contended: bool  # the emulator's EMULATOR line: the host's other work slowed a phase

    @property
    def duration_us(self) -> float:
        return round(self.report.duration_ms * 1e3, 1)


def invoke(client, function: str, event: dict) -> Answer:
    """One Invoke with ``LogType=Tail``: its REPORT line, payload and contention flag."""
    response = client.invoke(FunctionName=function, Payload=json.dumps(event).encode(), LogType="Tail")
    payload = response["Payload"].read()
    tail = base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace")
    report, line = parse_report(tail), EmulatorLine.parse(tail)
    if "FunctionError" in response or report is None:
        raise FunctionFailed(f"{function}: {payload[:300].decode('utf-8', 'replace')}")
    contended = line is not None and bool(line.contended)
    return Answer(report, json.loads(payload or b"null"), contended)


def near_mode_fraction(walls_ns: list[int]) -> float:
    """Iterations within ``MODE_WINDOW_MS`` of a non-zero multiple of ``MODE_PERIOD_MS``."""
    if not walls_ns:
        return 0.0
    near = 0
    for wall in walls_ns:
        ms = wall / 1e6
        multiple = max(1, round(ms / ref.MODE_PERIOD_MS))
        near += abs(ms - multiple * ref.MODE_PERIOD_MS) <= ref.MODE_WINDOW_MS
    return near / len(walls_ns)


def throttle_run(
    client, memory_mb: int, work: int, seconds: float, reference: Callable[[], float]
) -> ThrottleRun:
    """The loop for ``seconds`` at ``memory_mb``, in a warm environment (one short call first),
    between two measurements of the unthrottled iteration (``reference()``, ns of CPU): the
    ratio is over their geometric mean, and the two are kept (a drift between them is the host's
    speed changing during the loop)."""
    function = name("loop", memory_mb)
    invoke(client, function, {"work": work, "iterations": 1})
    before = reference()
    answer = invoke(client, function, {"work": work, "seconds": seconds})
    after = reference()
    unthrottled_ns = ref.unthrottled(before, after)
    result = answer.payload
    if not isinstance(result, dict):
        raise FunctionFailed(f"{function}: answered {result!r}")
    walls = [int(wall) for wall in result["walls_ns"]]
    if not walls:
        raise FunctionFailed(f"{function}: no iteration finished in {seconds} s")
    recorder = LatencyRecorder("us")
    for wall in walls:
        recorder.record_ns(wall)
    mean_ns = math.fsum(walls) / len(walls)
    return ThrottleRun(
        memory_mb=memory_mb,
        seconds=seconds,
        iterations=len(walls),
        iteration_us=recorder.series(),
        mean_iteration_us=round(mean_ns / 1e3, 1),
        cpu_share=round(result["cpu_ns"] / result["wall_ns"], 4),
        near_20ms_fraction=round(near_mode_fraction(walls), 4),
        unthrottled_us=round(before / 1e3, 1),
        wall_ratio=round(mean_ns / unthrottled_ns, 3),
        contended=answer.contended,
        unthrottled_after_us=round(after / 1e3, 1),
    )


def stability_rounds(
    client,
    emulator: int,
    rounds: int,
    invocations: int,
    work: int,
    iterations: int,
    reference: Callable[[], float] | None = None,
) -> list[StabilityRound]:
    """The same job (``iterations`` loop iterations) at 128 and 1,769 MB, taking turns; with
    ``reference``, the unthrottled iteration measured before and after each round."""
    small, large = (name("loop", size) for size in ref.STABILITY_SIZES)
    job = {"work": work, "iterations": iterations}
    for function in (small, large):  # the cold start, and the first warm call
        invoke(client, function, job)
    results = []
    for number in range(1, rounds + 1):
        durations: dict[str, list[float]] = {small: [], large: []}
        contended = 0
        references = [reference()] if reference is not None else []
        for _ in range(invocations):
            for function in (small, large):
                answer = invoke(client, function, job)
                durations[function].append(answer.duration_us)
                contended += answer.contended
        references += [reference()] if reference is not None else []
        mean_small = math.fsum(durations[small]) / invocations
        mean_large = math.fsum(durations[large]) / invocations
        results.append(
            StabilityRound(
                emulator=emulator,
                round=number,
                invocations=invocations,
                duration_128_us=round(mean_small, 1),
                duration_1769_us=round(mean_large, 1),
                ratio=round(mean_small / mean_large, 3),
                contended=contended,
                reference_us=[round(ns / 1e3, 1) for ns in references],
            )
        )
    return results


def cold_starts(client, trials: int) -> list[ColdStartTrial]:
    """lambda-perf's way: change the configuration (a new environment), invoke; the REPORT's
    Init Duration and Duration of that first invocation."""
    function = name("hello", ref.LAMBDA_PERF_MEMORY_MB)
    found = []
    for trial in range(trials):
        force_cold_start(client, function, f"{time.time_ns()}-fidelity-{trial}")
        answer = invoke(client, function, {})
        if answer.report.init_duration_ms is not None:
            init_us = round(answer.report.init_duration_ms * 1e3, 1)
            found.append(ColdStartTrial(init_us, answer.duration_us, answer.contended))
    if not found:
        raise FunctionFailed(f"{function}: no cold start reported an Init Duration in {trials} trials")
    return found


def scaling_size(
    client, memory_mb: int, index: int, invocations: int = ref.SCALING_WARM_INVOCATIONS
) -> ScalingSize:
    """epsagon's way: one warm-up, then ``invocations`` invocations; their mean REPORT Duration."""
    function, event = name("fib", memory_mb), {"index": index}
    invoke(client, function, event)
    answers = [invoke(client, function, event) for _ in range(invocations)]
    durations = [answer.duration_us for answer in answers]
    contended = sum(answer.contended for answer in answers)
    return ScalingSize(memory_mb, durations, round(math.fsum(durations) / len(durations), 1), contended)
