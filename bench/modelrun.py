"""The main job on a user's scikit-learn model (``python -m bench --model FILE --sample CSV``).

Before the emulator starts: ``python -m training --model FILE --sample CSV --out <run>/models``
(every serialization that applies, the manifest, ``requests.jsonl`` with the expected answers
of the user's own object), the cold-start profile of every variant that applies in fresh
processes (``python -m bench.coldstart --variants all``: its results list the others, each with
why), and the emulator configuration generated for those models (``python -m
handler.local.functions``). Then the run is a ``--config`` run on two functions: the reference
variant (the user's own file) and the fastest variant that applies, the one with the lowest
warm in-handler p50 in this run's profile (measured, not assumed). Starts nothing itself: the
pipeline's ``run_stage`` runs each command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench.records import ResultsError
from bench.results import ColdstartRun, read_document
from handler.variants import REFERENCE

VERDICT_OK = (0, 1, 3)  # the profile ran and wrote its results (PASS, FAIL, INVALID)


def function_name(variant: str) -> str:
    """The emulator's function of a user's model's variant (``handler.variants``)."""
    return f"model-{variant}"


def train_command(config, models: Path) -> list[str]:
    command = [sys.executable, "-m", "training", "--model", str(config.model), "--sample", str(config.sample)]
    command += ["--label", config.label] if config.label else []
    command += ["--code-dir", str(config.code_dir)] if config.code_dir is not None else []
    return [*command, "--out", str(models)]


def profile_command(config, models: Path, results: Path) -> list[str]:
    """Every variant that applies, each call sending a line of the model's requests file."""
    plan = config.plan
    command = [sys.executable, "-m", "bench.coldstart", "--variants", "all", "--no-progress"]
    command += ["--trials", str(plan.coldstart_trials), "--warm", str(max(plan.coldstart_warm, 1))]
    command += ["--models", str(models), "--requests", str(models / "requests.jsonl")]
    return [*command, "--results", str(results), "--target-ms", f"{plan.target_ms:g}"]


def fastest(document: ColdstartRun) -> tuple[str | None, str]:
    """The non-reference variant with the lowest warm in-handler p50 in the profile, and a line
    saying which and why (None: no variant but the reference applies)."""
    rows = [row for row in document.variants if row.name != REFERENCE and row.warm_us.p50]
    reference = next((row for row in document.variants if row.name == REFERENCE), None)
    if not rows:
        return None, "fastest variant: none besides the reference applies; measuring the reference alone"
    best = min(rows, key=lambda row: row.warm_us.p50)
    others = ", ".join(f"{row.name} {row.warm_us.p50:,.1f}" for row in rows if row is not best)
    against = f"; reference {reference.warm_us.p50:,.1f} µs" if reference is not None else ""
    return best.name, (
        f"fastest variant: {best.name} (lowest warm in-handler p50 in this run's profile, "
        f"{best.warm_us.p50:,.1f} µs{against}; others µs: {others or 'none'})"
    )


def applied_lines(document: ColdstartRun) -> list[str]:
    """Which variants apply (profiled) and why each other does not (the profile's ``skipped``)."""
    lines = [f"variants that apply: {', '.join(row.name for row in document.variants)}"]
    lines += [f"  not {item.variant}: {item.reason}" for item in document.skipped]
    return lines


def prepare(
    config,
    run_stage: Callable[..., int],
    stage_failed: Callable[[str], Exception],
    out: Callable[[str], None] = print,
):
    """Train, profile and generate the emulator config; the config of the ``--config`` run that
    follows (its functions, requests, models and the profile's results)."""
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    models = run_dir / "models"
    run_stage("train", train_command(config, models), run_dir / "train.log")
    coldstart = run_dir / "coldstart.json"
    command = profile_command(config, models, coldstart)
    stage = "cold-start profile (process mode, every variant that applies)"
    run_stage(stage, command, run_dir / "coldstart.log", VERDICT_OK, writes=coldstart)
    emulator = run_dir / "emulator.toml"
    command = [
        sys.executable,
        "-m",
        "handler.local.functions",
        "--models",
        str(models),
        "--out",
        str(emulator),
    ]
    run_stage("emulator config", command, run_dir / "emulator-config.log", writes=emulator)
    try:
        document = read_document(coldstart)
    except ResultsError as exc:
        raise stage_failed(f"cold-start profile: {exc}") from exc
    if not isinstance(document, ColdstartRun):
        raise stage_failed(f"cold-start profile: {coldstart} is not a process-mode profile")
    for line in applied_lines(document):
        out(f"  {line}")
    best, line = fastest(document)
    out(f"  {line}")
    compared = (REFERENCE, best) if best is not None else (REFERENCE,)
    return replace(
        config,
        models=models,
        emulator_config=emulator,
        requests=models / "requests.jsonl",
        functions=tuple(function_name(variant) for variant in compared),
        compared=compared,
        profile=coldstart,
        plan=config.plan.for_functions(),
    )
