"""``--calibrate``: this machine's cold start beside AWS's, on lambda-perf's own function.

lambda-perf (maxday/lambda-perf) deploys "an ultra simple hello-world function" per runtime
every day, forces 10 cold starts (UpdateFunctionConfiguration with a changed environment
variable, then Invoke) and publishes the plain mean of their Init Durations. Its figure for
python3.12, zip, x86_64 at 128 MB on 2025-12-21 (``data/2025/2025-12-21.json``, entry
``lambda-perf-python312-zip-128-x86_64``, ``"acd": 94.936``; the ten values are below) is
:data:`LAMBDA_PERF`, a constant: no network.

Here the same function (:data:`HELLO_SOURCE`, lambda-perf's ``runtimes/python312/index.py``
as published) runs at 128 MB in the emulator (its own emulator process, started from a
configuration written next to the results), cold-started the same way ``trials`` times; the
ratio is the emulator's mean Init Duration over lambda-perf's. It says how this machine's
cold starts (an interpreter, awslambdaric and the handler's import, on this CPU, with the
init boost of the resource model) relate to AWS's; it is not a correction factor for a
heavier function, whose init is mostly its own imports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.coldstart.forcing import force_cold_start
from bench.latency import LatencyRecorder
from bench.powertune.measure import invoke
from bench.results.powertune import Calibration


@dataclass(frozen=True)
class Reference:
    runtime: str
    memory_mb: int
    init_durations_ms: tuple[float, ...]
    date: str
    source: str

    @property
    def mean_ms(self) -> float:
        return math.fsum(self.init_durations_ms) / len(self.init_durations_ms)


LAMBDA_PERF = Reference(
    runtime="python3.12 zip x86_64",
    memory_mb=128,
    init_durations_ms=(88.36, 91.19, 96.75, 108.53, 89.88, 92.55, 86.3, 102.8, 88.37, 104.63),
    date="2025-12-21",
    source=(
        "https://github.com/maxday/lambda-perf data/2025/2025-12-21.json "
        "(lambda-perf-python312-zip-128-x86_64)"
    ),
)
FUNCTION = "hello-world"
HELLO_SOURCE = """\
def handler(event, context):
    return {
        'statusCode': 200,
    }
"""
CONFIG_TEMPLATE = """\
# Written by python -m bench.powertune --calibrate: lambda-perf's hello-world function at 128 MB.
stage = "staging"
port = 0

[[functions]]
name = "{name}"
handler = "index.handler"
code_dir = "hello"
memory_mb = {memory_mb}
"""


def write_function(folder: Path) -> Path:
    """The hello-world function and an emulator configuration deploying it; returns the config."""
    (folder / "hello").mkdir(parents=True, exist_ok=True)
    (folder / "hello" / "index.py").write_text(HELLO_SOURCE, encoding="utf-8")
    config = folder / "calibration.toml"
    text = CONFIG_TEMPLATE.format(name=FUNCTION, memory_mb=LAMBDA_PERF.memory_mb)
    config.write_text(text, encoding="utf-8")
    return config


def calibrate(
    client, trials: int, reference: Reference = LAMBDA_PERF, clock: Callable[[], int] = time.perf_counter_ns
) -> Calibration:
    """``trials`` forced cold starts of the hello-world function; RuntimeError if none reported
    an Init Duration."""
    inits_ms: list[float] = []
    for trial in range(trials):
        force_cold_start(client, FUNCTION, f"{time.time_ns()}-calibrate-{trial}")
        first = invoke(client, FUNCTION, clock)
        if first.outcome == "2xx" and first.report is not None and first.report.init_duration_ms is not None:
            inits_ms.append(first.report.init_duration_ms)
    if not inits_ms:
        raise RuntimeError(f"{FUNCTION}: no cold start reported an Init Duration in {trials} trials")
    recorder = LatencyRecorder("us")
    for value in inits_ms:
        recorder.record_ns(round(value * 1_000_000))
    mean_us = math.fsum(inits_ms) / len(inits_ms) * 1_000
    return Calibration(
        function=FUNCTION,
        memory_mb=reference.memory_mb,
        trials=len(inits_ms),
        init_duration_us=recorder.series(),
        init_duration_mean_us=round(mean_us, 1),
        reference_mean_ms=round(reference.mean_ms, 3),
        reference_min_ms=min(reference.init_durations_ms),
        reference_max_ms=max(reference.init_durations_ms),
        reference_trials=len(reference.init_durations_ms),
        reference_runtime=reference.runtime,
        reference_date=reference.date,
        reference_source=reference.source,
        ratio=round(mean_us / 1_000 / reference.mean_ms, 3),
    )


def calibration_line(calibration: Calibration) -> str:
    return (
        f"calibration: {calibration.function} at {calibration.memory_mb} MB, Init Duration mean "
        f"{calibration.init_duration_mean_us / 1_000:,.1f} ms "
        f"(p50 {calibration.init_duration_us.p50 / 1_000:,.1f} ms, "
        f"{calibration.trials} cold starts) here vs {calibration.reference_mean_ms:g} ms on AWS "
        f"(lambda-perf, {calibration.reference_runtime}, {calibration.reference_date}, range "
        f"{calibration.reference_min_ms:g}–{calibration.reference_max_ms:g} ms): "
        f"{calibration.ratio:.2f}x"
    )
