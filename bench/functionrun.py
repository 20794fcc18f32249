"""The main job's parts for the functions of a ``--config`` file (``python -m bench --config``).

Pure: the process-mode profile command of each function (its handler, code directory and
environment from the configuration), Locust's ``--requests``/``--verify`` options, and the
summary's cold-start lines read from the results. ``bench.pipeline`` runs the commands; nothing
here starts a process or times anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.functions import load, model_artifact
from bench.requests import manifest_tolerance, read_requests
from bench.results import ColdstartRun, Document
from bench.results.coldstart import ColdstartEndpointRun


def profile_commands(config) -> list[tuple[str, list[str], Path]]:
    """(stage name, command, results file) of each function's profile in fresh processes
    (``bench.coldstart --handler``), for a ``bench.pipeline.PipelineConfig`` with a ``--config``."""
    plan, stages = config.plan, []
    for function in load(config.emulator_config).functions:
        if function.name not in config.functions:
            continue
        results = config.run_dir / f"coldstart-{function.name}.json"
        command = [sys.executable, "-m", "bench.coldstart", "--handler", function.handler]
        command += ["--code-dir", str(function.code_dir)]
        command += [arg for key, value in function.env.items() for arg in ("--env", f"{key}={value}")]
        command += ["--trials", str(plan.coldstart_trials), "--warm", str(plan.coldstart_warm)]
        command += ["--no-progress", "--results", str(results), "--target-ms", f"{plan.target_ms:g}"]
        command += ["--requests", str(config.requests)] if config.requests is not None else []
        stages.append((f"cold-start profile (process mode) {function.name}", command, results))
    return stages


def locust_options(config, function: str) -> tuple[str, ...]:
    """Locust's ``--requests``, and ``--verify`` when the file's lines carry ``expected`` (at the
    tolerance ``models/manifest.json`` states for the function's artifact, when it states one)."""
    if config.requests is None:
        return ()
    options: tuple[str, ...] = ("--requests", str(config.requests))
    if not read_requests(config.requests).has_expected:
        return options
    artifact = model_artifact(config.emulator_config, function)
    tolerance = manifest_tolerance(config.models, artifact) if artifact else None
    options += ("--verify",)
    return options + (("--verify-tolerance", repr(tolerance)) if tolerance is not None else ())


def cold_start_lines(functions: tuple[str, ...], documents: dict[str, Document]) -> list[str]:
    """Each function's cold start, in a fresh process and through the emulator (ms, as read)."""
    lines = []
    for function in functions:
        process = documents.get(f"coldstart-{function}.json")
        if isinstance(process, ColdstartRun) and process.variants:
            row = process.variants[0]
            lines.append(
                f"cold start p50 (fresh process): {function} {row.cold_start_us.p50 / 1_000:,.1f} ms "
                f"(load {row.phases_us.load / 1_000:,.1f} ms), warm in-handler p50 {row.warm_us.p50:,.1f} µs"
            )
        endpoint = documents.get(f"coldstart-endpoint-{function}.json")
        if isinstance(endpoint, ColdstartEndpointRun) and endpoint.first_request_us is not None:
            init, with_init = endpoint.init_duration_us, endpoint.trials_with_init_duration
            trials = endpoint.first_request_us.samples
            init_text = (
                f"Init Duration p50 {init.p50 / 1_000:,.1f} ms ({with_init} of {trials} trials had one)"
                if init is not None
                else f"no Init Duration in {trials} trials"
            )
            lines.append(
                f"cold starts through the emulator: {function} first request p50 "
                f"{endpoint.first_request_us.p50 / 1_000:,.1f} ms ({trials} trials), {init_text}"
            )
    return lines
